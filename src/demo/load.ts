// Steady HTTP load: GETs at a fixed rate over keep-alive connections on loopback, each answer
// recorded (status, version header, latency) and each error by its code. `ferry demo` uses it as
// production's users; tests and benches assert on its summary, e.g. "zero failed requests while
// the release was switched".
import http from 'node:http';

export interface LoadOptions {
  url: string;
  /** Requests per second, spread evenly. */
  rps: number;
  /** At most this many requests in flight (and connections); a request due while all are busy waits. */
  concurrency: number;
  headers?: Record<string, string>;
  /** Paths (with query) to ask in turn, instead of the URL's own: users do not all ask the same thing. */
  paths?: string[];
  /** A request not answered in this time counts as failed with ETIMEDOUT (default 10 s). */
  timeoutMs?: number;
}

export interface LoadFailure {
  /** Epoch ms when the failure was seen. */
  at: number;
  status: number | null;
  code: string | null;
  version: string | null;
}

export interface LoadSummary {
  sent: number;
  /** 2xx answers. */
  ok: number;
  /** Non-2xx answers and errors. */
  failed: number;
  /** Answers per version (X-Ferry-Version, else X-App-Version, else "unknown"). */
  byVersion: Record<string, number>;
  /** Answers the router served from stable after the canary failed them (X-Ferry-Retried). */
  retried: number;
  /** Answers per status code. */
  statuses: Record<string, number>;
  /** Errors per code (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...). */
  errors: Record<string, number>;
  /** Epoch ms of the first failure, null when none. */
  firstFailureAt: number | null;
  /** The first 50 failures. */
  failures: LoadFailure[];
  latencyMs: { p50: number; p99: number; max: number };
  durationMs: number;
}

export interface Load {
  /** Figures so far (requests in flight are not counted yet). */
  snapshot(): LoadSummary;
  /** Stops sending, waits for the requests in flight, returns the figures. */
  stop(): Promise<LoadSummary>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function startLoad(opts: LoadOptions): Load {
  const u = new URL(opts.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency, scheduling: 'fifo' });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = performance.now();
  const startedAt = Date.now();
  let issued = 0;
  let inFlight = 0;
  let stopping = false;
  let ok = 0;
  let failed = 0;
  let retried = 0;
  let firstFailureAt: number | null = null;
  const byVersion: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const failures: LoadFailure[] = [];
  const latencies: number[] = [];
  let drained: (() => void) | null = null;

  const fail = (f: Omit<LoadFailure, 'at'>) => {
    failed++;
    const at = Date.now();
    firstFailureAt ??= at;
    if (failures.length < 50) failures.push({ at, ...f });
  };

  const finished = () => {
    inFlight--;
    if (stopping && inFlight === 0 && drained) drained();
    else pump();
  };

  const one = () => {
    issued++;
    inFlight++;
    const t0 = performance.now();
    let done = false;
    const path = opts.paths?.length ? opts.paths[issued % opts.paths.length] : u.pathname + u.search;
    const req = http.request({ host: u.hostname, port: u.port || 80, path, method: 'GET', agent, headers: opts.headers }, (res) => {
      if (res.headers['x-ferry-retried']) retried++;
      const version = (res.headers['x-ferry-version'] as string | undefined) ?? (res.headers['x-app-version'] as string | undefined) ?? 'unknown';
      res.on('data', () => {});
      res.on('end', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        latencies.push(performance.now() - t0);
        byVersion[version] = (byVersion[version] ?? 0) + 1;
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status >= 200 && status < 300) ok++;
        else fail({ status, code: null, version });
        finished();
      });
      res.on('error', () => {}); // Reported by the request's 'error'.
    });
    const timer = setTimeout(() => {
      const err = Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' });
      req.destroy(err);
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const code = err.code ?? err.message;
      errors[code] = (errors[code] ?? 0) + 1;
      fail({ status: null, code, version: null });
      finished();
    });
    req.end();
  };

  // Sends what is due by now at the steady rate, as far as the concurrency allows.
  const pump = () => {
    if (stopping) return;
    const due = Math.floor(((performance.now() - started) * opts.rps) / 1000) + 1;
    while (issued < due && inFlight < opts.concurrency) one();
  };
  const tick = setInterval(pump, Math.max(1, Math.min(10, 1000 / opts.rps)));
  pump();

  const summary = (): LoadSummary => {
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      sent: issued,
      ok,
      failed,
      retried,
      byVersion: { ...byVersion },
      statuses: { ...statuses },
      errors: { ...errors },
      firstFailureAt,
      failures: [...failures],
      latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 },
      durationMs: Date.now() - startedAt,
    };
  };

  return {
    snapshot: summary,
    async stop() {
      stopping = true;
      clearInterval(tick);
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
      agent.destroy();
      return summary();
    },
  };
}
