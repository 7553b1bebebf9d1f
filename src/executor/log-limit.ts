// The per-job log limit: a job attempt's log keeps at most this many bytes (UTF-8, every stream
// counted), then one line that says it was cut, and nothing more. The job itself keeps running:
// a chatty test suite should not fail for being chatty, only stop filling the store.
//
// The limiter works on text that is already masked: cutting first and masking after would
// hand the masker half a secret at the cut, which it can no longer recognise. It is applied
// where output is captured (`ferry run`, the runner) to save the bandwidth, and again by the
// server on what runners send (src/server/job-logs.ts), so a runner cannot get past it.

/** The default limit: 100 MiB, like GitLab's default for a job log. */
export const DEFAULT_LOG_LIMIT = 100 * 1024 * 1024;

/** The environment variable (and, for `ferry server`, the --log-limit flag) that sets it. */
export const LOG_LIMIT_ENV = 'FERRY_LOG_LIMIT';

export class LogLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogLimitError';
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3 };

/** Bytes of a size written like 100MiB, 512 KiB, 1.5GB or 65536; null when it is not one. */
export function parseByteSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return null;
  const bytes = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** A log limit from text (a flag or FERRY_LOG_LIMIT); throws LogLimitError saying how to write it. */
export function parseLogLimit(text: string, from: string = LOG_LIMIT_ENV): number {
  const bytes = parseByteSize(text);
  if (bytes === null || bytes < 1024) {
    throw new LogLimitError(`${from}=\`${text}\` is not a log size: write it like 100MiB, 512KiB or 1GiB (at least 1KiB)`);
  }
  return bytes;
}

/** FERRY_LOG_LIMIT, or the default when it is not set. */
export function logLimitFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env[LOG_LIMIT_ENV];
  return v === undefined || v.trim() === '' ? DEFAULT_LOG_LIMIT : parseLogLimit(v);
}

/** 104857600 -> "100 MiB", 65536 -> "64 KiB", 1000 -> "1000 bytes". */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size) return `${Number.isInteger(n / size) ? n / size : (n / size).toFixed(1)} ${unit}`;
  }
  return `${n} bytes`;
}

/** The line that ends a truncated log. */
export function truncationLine(limit: number): string {
  return `ferry: log truncated at ${formatBytes(limit)} (limit: ${LOG_LIMIT_ENV}); the job kept running, its further output was dropped\n`;
}

export type LimitedStream = 'stdout' | 'stderr' | 'system';

/** Receives what passes the limit; `truncated` is set on the truncation line alone. */
export type LimitedEmit = (stream: LimitedStream, text: string, truncated: boolean) => void;

/**
 * Passes a job attempt's output through until `limit` bytes, cuts the chunk that crosses it at
 * a character boundary, adds the truncation line, and drops everything after.
 */
export class LogLimiter {
  private usedBytes: number;
  private cut = false;
  /** The stream of the last text let through, and whether it ended its line. */
  private lastStream: LimitedStream = 'system';
  private atLineStart = true;

  constructor(
    readonly limit: number,
    private readonly emit: LimitedEmit,
    /** What an earlier part of the same attempt used (the server continues from the store). */
    state: { usedBytes?: number; truncated?: boolean } = {},
  ) {
    this.usedBytes = state.usedBytes ?? 0;
    this.cut = state.truncated ?? false;
  }

  get truncated(): boolean {
    return this.cut;
  }

  /** Bytes let through (not counting the truncation line). */
  get used(): number {
    return this.usedBytes;
  }

  write(stream: LimitedStream, text: string): void {
    if (this.cut || text.length === 0) return;
    const bytes = Buffer.byteLength(text);
    if (this.usedBytes + bytes <= this.limit) {
      this.usedBytes += bytes;
      this.pass(stream, text);
      return;
    }
    const head = utf8Prefix(text, this.limit - this.usedBytes);
    this.usedBytes += Buffer.byteLength(head);
    if (head) this.pass(stream, head);
    this.truncate();
  }

  /** Ends the log now (the limit was reached, or a runner said it cut here). */
  truncate(): void {
    if (this.cut) return;
    this.cut = true;
    // A line cut in the middle is ended on its own stream, so that views that keep streams
    // apart show it whole before the truncation line.
    if (!this.atLineStart) this.emit(this.lastStream, '\n', false);
    this.emit('system', truncationLine(this.limit), true);
  }

  private pass(stream: LimitedStream, text: string): void {
    this.lastStream = stream;
    this.atLineStart = text.endsWith('\n');
    this.emit(stream, text, false);
  }
}

/** The longest prefix of `text` that is at most `maxBytes` in UTF-8, never splitting a character. */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) to the start of the character the cut falls in.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}
