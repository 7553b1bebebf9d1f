// What an analysis source is given and what it gives back. A source measures; it never judges:
// the controller evaluates the metric's condition over `values` (src/config/condition.ts).

export interface MeasureContext {
  environment: string;
  /** The new version's label (FERRY_VERSION), and stable's. */
  version: string;
  stableVersion?: string;
  /** The analysis interval: $FERRY_INTERVAL in queries, and the default timeout. */
  intervalMs: number;
  /** Where the new version answers (base for `web` URLs that are paths). */
  newVersionUrl?: string;
  /** Abort the measurement (the release was aborted, the server is stopping). */
  signal?: AbortSignal;
  /** How long one measurement may take (default: the interval, between 1 s and 30 s). */
  timeoutMs?: number;
}

export interface Measurement {
  /** The figures the condition sees; a missing one makes the condition unknown. */
  values: Record<string, number | undefined>;
  /** Why there is no verdict this time (no data yet, source unreachable, timed out): counts
   * against `inconclusive_limit`, never as a failure by itself. */
  inconclusive?: string;
  /** The metric cannot be measured as configured (a query Prometheus refuses, a relative URL
   * with no address to resolve it against): it will not get better by waiting. */
  error?: string;
}

/** The timeout of one measurement. */
export function measureTimeoutMs(ctx: MeasureContext): number {
  return ctx.timeoutMs ?? Math.min(30_000, Math.max(1_000, ctx.intervalMs));
}

/** An AbortSignal that fires on the context's signal or after the timeout. */
export function measureSignal(ctx: Pick<MeasureContext, 'signal'>, timeoutMs: number): AbortSignal {
  const t = AbortSignal.timeout(timeoutMs);
  return ctx.signal ? AbortSignal.any([ctx.signal, t]) : t;
}

/** "5s", "1500ms", "2m": a duration as PromQL writes it, in whole units where possible. */
export function promDuration(ms: number): string {
  const n = Math.max(1, Math.round(ms));
  if (n % 3_600_000 === 0) return `${n / 3_600_000}h`;
  if (n % 60_000 === 0) return `${n / 60_000}m`;
  if (n % 1000 === 0) return `${n / 1000}s`;
  return `${n}ms`;
}

/** Error text of a failed fetch: undici hides the useful part (ECONNREFUSED, ...) in `cause`. */
export function fetchErrorMessage(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `timed out after ${timeoutMs} ms`;
  if (e?.name === 'AbortError') return 'aborted';
  const cause = e?.cause;
  if (cause && (cause.code || cause.message)) return [cause.code, cause.message].filter(Boolean).join(': ');
  return e?.message ?? String(err);
}
