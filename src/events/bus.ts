// One in-process event bus for everything that happens in Ferry. Listeners are called
// synchronously in order of subscription; a listener that throws is reported, never allowed to
// break the producer (a broken terminal view must not stop a deploy).

export type Listener<E> = (event: E) => void;

export class EventBus<E extends { type: string }> {
  private listeners: Listener<E>[] = [];

  subscribe(listener: Listener<E>): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(event: E): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        process.emitWarning(`event listener failed on ${event.type}: ${(err as Error).stack ?? err}`);
      }
    }
  }
}
