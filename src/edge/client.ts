// A typed client of the edge's admin API (src/edge/api.ts), for the server's delivery controller.
// The edge is on the same machine: where it listens and its token are read from FERRY_HOME/edge.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { EdgeAdminInfo, InstanceSpec, InstanceStatus, RouteMetrics, RouteSpec, RouteStatus } from './api.js';
import { edgeDir, paths } from './state.js';

export class EdgeError extends Error {
  constructor(
    /** The HTTP status, or 0 when the edge could not be reached. */
    readonly status: number,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
    this.name = 'EdgeError';
  }
}

/** waitReady gave up: the instance kept exiting, was stopped, or was not ready in time. */
export class InstanceNotReadyError extends Error {
  constructor(
    message: string,
    /** Its status when the wait gave up. */
    readonly instance: InstanceStatus,
    /** The last lines of its log file. */
    readonly logTail: string,
  ) {
    super(message);
    this.name = 'InstanceNotReadyError';
  }
}

export interface EdgeHealth {
  ok: boolean;
  pid: number;
  startedAt: string;
  instances: number;
  routes: number;
}

export interface WaitReadyOptions {
  /** How often to ask (default 100 ms). */
  pollMs?: number;
  /** Give up once the instance has exited this many times since the wait began (default 3). */
  maxExits?: number;
}

/** The last `maxBytes` of a file, as whole lines ('' when it cannot be read). */
export function tailOf(file: string, maxBytes = 4096, maxLines = 20): string {
  try {
    const size = statSync(file).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, start);
    } finally {
      closeSync(fd);
    }
    let lines = buf.toString('utf8').split('\n');
    if (start > 0) lines = lines.slice(1);
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-maxLines).join('\n');
  } catch {
    return '';
  }
}

function describeExit(s: InstanceStatus): string {
  const e = s.lastExit;
  if (!e) return 'it has not exited';
  return `last exit: ${e.signal ? `signal ${e.signal}` : `code ${e.code}`} at ${e.at}`;
}

/** How many times an instance has exited (restarts, plus the exit it is backing off from). */
const exitsOf = (s: InstanceStatus) => s.restarts + (s.state === 'backoff' ? 1 : 0);

export class EdgeClient {
  /** Set by fromHome: where to look again when the edge moved (restarted on another port). */
  private home: string | null = null;

  constructor(
    public url: string,
    private token: string,
  ) {}

  /** Reads FERRY_HOME/edge/admin.json and the token; throws a clear error when the edge never started. */
  static fromHome(ferryHome: string): EdgeClient {
    const p = paths(edgeDir(ferryHome));
    let info: EdgeAdminInfo;
    try {
      info = JSON.parse(readFileSync(p.admin, 'utf8')) as EdgeAdminInfo;
    } catch {
      throw new EdgeError(0, `no edge is running for ${ferryHome} (${p.admin} is missing; start one with \`ferry edge\`)`);
    }
    let token: string;
    try {
      token = readFileSync(p.token, 'utf8').trim();
    } catch (err) {
      throw new EdgeError(0, `cannot read the edge's token ${p.token}: ${(err as Error).message}`);
    }
    const client = new EdgeClient(info.url, token);
    client.home = ferryHome;
    return client;
  }

  /** Re-reads admin.json and the token; true when the edge now listens elsewhere. */
  private relocate(): boolean {
    if (this.home === null) return false;
    try {
      const fresh = EdgeClient.fromHome(this.home);
      const moved = fresh.url !== this.url || fresh.token !== this.token;
      this.url = fresh.url;
      this.token = fresh.token;
      return moved;
    } catch {
      return false;
    }
  }

  private async call<T>(method: string, path: string, body?: unknown, again = true): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      // A restarted edge may listen on another port (--admin-port 0): look once more.
      if (again && this.relocate()) return this.call(method, path, body, false);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new EdgeError(0, `cannot reach the edge at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: reported as text below.
    }
    if (res.status === 401 && again && this.relocate()) return this.call(method, path, body, false);
    if (!res.ok) {
      const e = parsed as { error?: string; problems?: string[] } | undefined;
      throw new EdgeError(res.status, `edge ${method} ${path}: ${res.status} ${e?.error ?? text}`, e?.problems ?? []);
    }
    return parsed as T;
  }

  health(): Promise<EdgeHealth> {
    return this.call('GET', '/healthz');
  }

  putInstance(id: string, spec: InstanceSpec): Promise<InstanceStatus> {
    return this.call('PUT', `/instances/${encodeURIComponent(id)}`, spec);
  }

  /** null when there is no such instance. */
  async getInstance(id: string): Promise<InstanceStatus | null> {
    try {
      return await this.call<InstanceStatus>('GET', `/instances/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof EdgeError && err.status === 404) return null;
      throw err;
    }
  }

  /** Every instance, or those whose labels include all of `labels`. */
  listInstances(labels: Record<string, string> = {}): Promise<InstanceStatus[]> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(labels)) q.append('label', `${k}=${v}`);
    const qs = q.toString();
    return this.call('GET', `/instances${qs ? `?${qs}` : ''}`);
  }

  /** Drains (≤ graceMs) and stops an instance; answers once it is gone. null when there was none. */
  async deleteInstance(id: string, graceMs = 10_000): Promise<InstanceStatus | null> {
    try {
      return await this.call<InstanceStatus>('DELETE', `/instances/${encodeURIComponent(id)}?graceMs=${graceMs}`);
    } catch (err) {
      if (err instanceof EdgeError && err.status === 404) return null;
      throw err;
    }
  }

  putRoute(name: string, spec: RouteSpec): Promise<RouteStatus> {
    return this.call('PUT', `/routes/${encodeURIComponent(name)}`, spec);
  }

  async getRoute(name: string): Promise<RouteStatus | null> {
    try {
      return await this.call<RouteStatus>('GET', `/routes/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err instanceof EdgeError && err.status === 404) return null;
      throw err;
    }
  }

  listRoutes(): Promise<RouteStatus[]> {
    return this.call('GET', '/routes');
  }

  /** Stops listening once the route's requests in flight are done. null when there was none. */
  async deleteRoute(name: string): Promise<RouteStatus | null> {
    try {
      return await this.call<RouteStatus>('DELETE', `/routes/${encodeURIComponent(name)}`);
    } catch (err) {
      if (err instanceof EdgeError && err.status === 404) return null;
      throw err;
    }
  }

  /** Cumulative figures per version (bucketsMs' last bound comes back as null: Infinity). */
  routeMetrics(name: string): Promise<RouteMetrics> {
    return this.call('GET', `/routes/${encodeURIComponent(name)}/metrics`);
  }

  /**
   * Waits until the instance is ready. Throws an InstanceNotReadyError holding its last exit and the tail of
   * its log when it keeps exiting (options.maxExits), is stopped, disappears, or the time is up.
   */
  async waitReady(id: string, timeoutMs: number, options: WaitReadyOptions = {}): Promise<InstanceStatus> {
    const pollMs = options.pollMs ?? 100;
    const maxExits = options.maxExits ?? 3;
    const end = Date.now() + timeoutMs;
    let exits0: number | null = null;
    const fail = (s: InstanceStatus, why: string): never => {
      const tail = tailOf(s.spec.logFile);
      throw new InstanceNotReadyError(
        `instance ${id} ${why} (state ${s.state}, ${s.restarts} restart(s); ${describeExit(s)})` + (tail ? `\nlast lines of ${s.spec.logFile}:\n${tail}` : `\n(${s.spec.logFile} is empty)`),
        s,
        tail,
      );
    };
    for (;;) {
      const s = await this.getInstance(id);
      if (!s) throw new EdgeError(404, `instance ${id} does not exist on the edge`);
      if (s.state === 'ready') return s;
      if (s.state === 'stopping' || s.state === 'stopped') fail(s, 'was stopped while waiting for it to be ready');
      exits0 ??= exitsOf(s) - (s.state === 'backoff' ? 1 : 0);
      if (exitsOf(s) - exits0 >= maxExits) fail(s, `exited ${exitsOf(s) - exits0} times without becoming ready`);
      if (Date.now() >= end) fail(s, `was not ready after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, end - Date.now()))));
    }
  }
}
