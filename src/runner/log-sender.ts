// Sends a job's log chunks to the server in order, one request at a time, as soon as it can:
// what a job writes while nothing is in flight goes after a few milliseconds (a burst of lines
// travels together); what it writes while a request is in flight goes in the next one, as soon
// as that request is answered. So a quiet job's lines reach live viewers at once, and a noisy
// job's output travels in large batches (up to maxBatchBytes) without a fixed interval
// limiting either.
import type { LogChunkWire, LogsAnswerWire } from './protocol.js';

export interface LogSenderOptions {
  /** Sends one batch (the runner transport's `logs`). */
  send: (batch: LogChunkWire[]) => Promise<LogsAnswerWire>;
  /** A failed send: a LeaseLostError ends the job; anything else loses that batch only. */
  onError: (err: unknown) => void;
  /** How long a write waits for company while nothing is in flight (default 5 ms). */
  gatherMs?: number;
  /** The most text one request carries (default 1 MiB; JSON escaping stays under the server's 8 MiB body limit). */
  maxBatchBytes?: number;
}

export class LogSender {
  private pending: LogChunkWire[] = [];
  private inFlight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** The server said this attempt's log is full: nothing more is worth sending. */
  cut = false;
  private readonly gatherMs: number;
  private readonly maxBatchBytes: number;

  constructor(private readonly opts: LogSenderOptions) {
    this.gatherMs = opts.gatherMs ?? 5;
    this.maxBatchBytes = opts.maxBatchBytes ?? 1024 * 1024;
  }

  push(chunk: LogChunkWire): void {
    if (this.cut) return;
    this.pending.push(chunk);
    if (!this.inFlight) this.timer ??= setTimeout(() => this.next(), this.gatherMs);
  }

  /** Resolves when everything pushed so far has been sent (or has failed to be). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight || this.pending.length) await (this.inFlight ?? this.next());
  }

  /** Sends the next batch; when it is answered, the one after, while there is one. */
  private next(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) return this.inFlight;
    if (this.pending.length === 0) return Promise.resolve();
    let bytes = 0;
    let n = 0;
    // At least one chunk; a single chunk is at most a pipe read (64 KiB), well under the cap.
    while (n < this.pending.length && (n === 0 || bytes + this.pending[n]!.text.length <= this.maxBatchBytes)) bytes += this.pending[n++]!.text.length;
    const batch = this.pending.splice(0, n);
    const sent = this.opts.send(batch).then(
      (answer) => {
        if (answer.truncated) {
          this.cut = true;
          this.pending = [];
        }
      },
      (err) => this.opts.onError(err),
    );
    this.inFlight = sent.then(() => {
      this.inFlight = null;
      if (this.pending.length) void this.next();
    });
    return this.inFlight;
  }
}
