// A background loop of the server (schedules, polling): runs a turn, sleeps as long as the turn
// says, again, until stopped; stop() waits for a turn under way. A turn must not throw.
export abstract class BackgroundLoop {
  private timer: NodeJS.Timeout | undefined;
  protected stopped = false;
  private running: Promise<void> | null = null;

  /** One turn; resolves to how long to sleep before the next. */
  protected abstract turn(): Promise<number>;

  start(): void {
    this.after(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private after(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.turn().then((wait) => {
        this.running = null;
        this.after(wait);
      });
    }, ms);
    // A server stopping does not wait for the next turn.
    this.timer.unref();
  }
}
