// Sends a job's log chunks to the server in numbered batches, as soon as it can: what a job
// writes while a request slot is free goes after a few milliseconds (a burst of lines travels
// together); what it writes while every slot is busy goes in the next batch, as soon as a slot
// frees. So a quiet job's lines reach live viewers at once, and a noisy job's output travels in
// large batches (up to maxBatchBytes) without a fixed interval limiting either.
//
// Two requests are in flight by default, so that the runner encodes and sends a batch while the
// server records the one before. The server records a job attempt's batches in the order of
// their numbers, whatever order they arrive in, and records a number once: a batch whose request
// failed is sent again with its number, and a repeat is not recorded twice
// (src/server/job-logs.ts).
import type { LogChunkWire, LogsAnswerWire } from './protocol.js';

export interface LogSenderOptions {
  /** Sends one batch with its number (1, 2, ...): the runner transport's `logs`. */
  send: (batch: LogChunkWire[], number: number) => Promise<LogsAnswerWire>;
  /** A batch given up on (a fatal error, or every try failed): a LeaseLostError ends the job. */
  onError: (err: unknown) => void;
  /** Errors not worth another try (the lease is gone). */
  isFatal?: (err: unknown) => boolean;
  /** How long a write waits for company while a slot is free (default 5 ms). */
  gatherMs?: number;
  /**
   * The most text (UTF-16 code units) one request carries: default 4 MiB, at most 12 MiB of UTF-8,
   * under the logs route's body limit (LOG_BATCH_BODY_LIMIT). Bigger batches mean fewer requests,
   * each with its fixed cost (authentication, the attempt's row, a transaction): measured, 1 MiB
   * batches ingested ~35 MB/s and 4 MiB ones ~42-53.
   */
  maxBatchBytes?: number;
  /** Requests in flight at once (default 2). */
  maxInFlight?: number;
  /** Tries of one batch (default 4), the pause between them doubling from retryDelayMs (default 250). */
  tries?: number;
  retryDelayMs?: number;
}

const MAX_BATCH_CHUNKS = 5000;

export class LogSender {
  private pending: LogChunkWire[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private number = 0;
  /** The server said this attempt's log is full: nothing more is worth sending. */
  cut = false;
  private readonly gatherMs: number;
  private readonly maxBatchBytes: number;
  private readonly maxInFlight: number;

  constructor(private readonly opts: LogSenderOptions) {
    this.gatherMs = opts.gatherMs ?? 5;
    this.maxBatchBytes = opts.maxBatchBytes ?? 4 * 1024 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 2;
  }

  push(chunk: LogChunkWire): void {
    if (this.cut) return;
    this.pending.push(chunk);
    if (this.inFlight.size < this.maxInFlight) this.timer ??= setTimeout(() => this.next(), this.gatherMs);
  }

  /** Resolves when everything pushed so far has been sent (or given up on). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.inFlight.size || this.pending.length) {
      if (this.pending.length && this.inFlight.size < this.maxInFlight) this.next();
      else await Promise.race(this.inFlight);
    }
  }

  /** Sends the next batch when a slot is free; when it is answered, the one after, while there is one. */
  private next(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight.size >= this.maxInFlight || this.pending.length === 0) return;
    let bytes = 0;
    let n = 0;
    // At least one chunk; a single chunk is at most a pipe read (64 KiB), well under the cap.
    // The chunk count stays under what the server takes in one request (10,000).
    while (n < this.pending.length && n < MAX_BATCH_CHUNKS && (n === 0 || bytes + this.pending[n]!.text.length <= this.maxBatchBytes)) bytes += this.pending[n++]!.text.length;
    const batch = this.pending.splice(0, n);
    const sent: Promise<void> = this.deliver(batch, ++this.number).then(() => {
      this.inFlight.delete(sent);
      if (this.pending.length) this.next();
    });
    this.inFlight.add(sent);
  }

  private async deliver(batch: LogChunkWire[], number: number): Promise<void> {
    const tries = this.opts.tries ?? 4;
    let delay = this.opts.retryDelayMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await this.opts.send(batch, number);
        if (answer.truncated) {
          this.cut = true;
          this.pending = [];
        }
        return;
      } catch (err) {
        if (attempt >= tries || this.opts.isFatal?.(err)) return this.opts.onError(err);
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
  }
}
