// Validation of the admin API's bodies: every mistake of a body is reported at once, by field,
// and the value returned is a fresh object with only the known fields (defaults filled in).
import { existsSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { InstanceSpec, ProbeConfig, RouteSpec, Track, Upstream } from './api.js';

export class ValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

export const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// Route names end up in a cookie name (ferry_track_<name>) and in metric labels.
export const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Checker {
  readonly problems: string[] = [];

  fail(msg: string): void {
    this.problems.push(msg);
  }

  object(v: unknown, at: string): Obj | null {
    if (!isObj(v)) {
      this.fail(`${at} must be an object`);
      return null;
    }
    return v;
  }

  known(o: Obj, at: string, keys: string[]): void {
    for (const k of Object.keys(o)) if (!keys.includes(k)) this.fail(`${at ? `${at}.` : ''}${k} is not a known field (expected one of: ${keys.join(', ')})`);
  }

  string(v: unknown, at: string, { empty = false } = {}): string {
    if (typeof v !== 'string') {
      this.fail(`${at} must be a string`);
      return '';
    }
    if (!empty && v.trim() === '') this.fail(`${at} must not be empty`);
    return v;
  }

  int(v: unknown, at: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(`${at} must be an integer from ${min} to ${max}`);
      return min;
    }
    return v;
  }

  number(v: unknown, at: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.fail(`${at} must be a number from ${min} to ${max}`);
      return min;
    }
    return v;
  }

  strings(v: unknown, at: string): Record<string, string> {
    if (v === undefined) return {};
    const o = this.object(v, at);
    if (!o) return {};
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(o)) {
      if (typeof x !== 'string') this.fail(`${at}.${k} must be a string (got ${x === null ? 'null' : typeof x})`);
      else out[k] = x;
    }
    return out;
  }

  probe(v: unknown, at: string): ProbeConfig {
    const o = this.object(v, at);
    if (!o) return { path: '/', intervalMs: 1000, timeoutMs: 1000, failureThreshold: 1 };
    this.known(o, at, ['path', 'intervalMs', 'timeoutMs', 'failureThreshold']);
    const path = this.string(o.path, `${at}.path`);
    if (path && !path.startsWith('/')) this.fail(`${at}.path must start with / (got ${JSON.stringify(path)})`);
    return {
      path,
      intervalMs: this.int(o.intervalMs, `${at}.intervalMs`, 10, 3_600_000),
      timeoutMs: this.int(o.timeoutMs, `${at}.timeoutMs`, 1, 600_000),
      failureThreshold: this.int(o.failureThreshold, `${at}.failureThreshold`, 1, 1000),
    };
  }

  done<T>(v: T): T {
    if (this.problems.length) throw new ValidationError(this.problems);
    return v;
  }
}

export function validateInstanceSpec(body: unknown): InstanceSpec {
  const c = new Checker();
  const o = c.object(body, 'the body');
  if (!o) return c.done(null as never);
  c.known(o, '', ['command', 'cwd', 'env', 'port', 'readiness', 'liveness', 'logFile', 'restartBackoffMs', 'labels']);
  const cwd = c.string(o.cwd, 'cwd');
  if (cwd && !isAbsolute(cwd)) c.fail(`cwd must be an absolute path (got ${JSON.stringify(cwd)})`);
  else if (cwd && !(existsSync(cwd) && statSync(cwd).isDirectory())) c.fail(`cwd ${cwd} is not a directory on the edge's machine`);
  const env = c.strings(o.env, 'env');
  for (const k of Object.keys(env)) if (!k || k.includes('=') || k.includes('\0')) c.fail(`env has an invalid variable name ${JSON.stringify(k)}`);
  const logFile = c.string(o.logFile, 'logFile');
  if (logFile && !isAbsolute(logFile)) c.fail(`logFile must be an absolute path (got ${JSON.stringify(logFile)})`);
  let restartBackoffMs: InstanceSpec['restartBackoffMs'];
  if (o.restartBackoffMs !== undefined && o.restartBackoffMs !== null) {
    const b = c.object(o.restartBackoffMs, 'restartBackoffMs');
    if (b) {
      c.known(b, 'restartBackoffMs', ['initial', 'max']);
      const initial = c.int(b.initial, 'restartBackoffMs.initial', 1, 3_600_000);
      const max = c.int(b.max, 'restartBackoffMs.max', 1, 3_600_000);
      if (max < initial) c.fail('restartBackoffMs.max must be at least restartBackoffMs.initial');
      restartBackoffMs = { initial, max };
    }
  }
  const spec: InstanceSpec = {
    command: c.string(o.command, 'command'),
    cwd,
    env,
    port: o.port === undefined ? 0 : c.int(o.port, 'port', 0, 65535),
    readiness: c.probe(o.readiness, 'readiness'),
    liveness: o.liveness === undefined || o.liveness === null ? null : c.probe(o.liveness, 'liveness'),
    logFile,
    ...(restartBackoffMs ? { restartBackoffMs } : {}),
    labels: c.strings(o.labels, 'labels'),
  };
  return c.done(spec);
}

function track(c: Checker, v: unknown, at: string, withWeight: boolean): (Track & { weight?: number }) | null {
  const o = c.object(v, at);
  if (!o) return null;
  c.known(o, at, withWeight ? ['version', 'upstreams', 'weight'] : ['version', 'upstreams']);
  const version = c.string(o.version, `${at}.version`);
  const upstreams: Upstream[] = [];
  if (!Array.isArray(o.upstreams)) c.fail(`${at}.upstreams must be an array`);
  else {
    if (o.upstreams.length === 0) c.fail(`${at}.upstreams must have at least one upstream`);
    o.upstreams.forEach((u, i) => {
      const uo = c.object(u, `${at}.upstreams[${i}]`);
      if (!uo) return;
      c.known(uo, `${at}.upstreams[${i}]`, ['instance', 'url']);
      if ((uo.instance === undefined) === (uo.url === undefined)) {
        c.fail(`${at}.upstreams[${i}] must have exactly one of instance, url`);
        return;
      }
      if (uo.instance !== undefined) upstreams.push({ instance: c.string(uo.instance, `${at}.upstreams[${i}].instance`) });
      else {
        const url = c.string(uo.url, `${at}.upstreams[${i}].url`);
        let ok = false;
        try {
          const p = new URL(url);
          ok = p.protocol === 'http:' && (p.pathname === '/' || p.pathname === '') && !p.search;
        } catch {
          // Reported below.
        }
        if (!ok) c.fail(`${at}.upstreams[${i}].url must be http://HOST:PORT (got ${JSON.stringify(url)})`);
        upstreams.push({ url });
      }
    });
  }
  const t: Track & { weight?: number } = { version, upstreams };
  if (withWeight) t.weight = c.number(o.weight, `${at}.weight`, 0, 100);
  return t;
}

/** `knownInstance` says whether an instance id exists on this edge. */
export function validateRouteSpec(body: unknown, knownInstance: (id: string) => boolean): RouteSpec {
  const c = new Checker();
  const o = c.object(body, 'the body');
  if (!o) return c.done(null as never);
  c.known(o, '', ['host', 'port', 'stable', 'canary', 'sticky', 'retryCanaryErrors']);
  const host = o.host === undefined ? '127.0.0.1' : c.string(o.host, 'host');
  const stable = track(c, o.stable, 'stable', false);
  const canary = o.canary === undefined || o.canary === null ? null : track(c, o.canary, 'canary', true);
  for (const t of [stable, canary]) {
    for (const u of t?.upstreams ?? []) {
      if (u.instance && !knownInstance(u.instance)) c.fail(`unknown instance ${JSON.stringify(u.instance)} (PUT /instances/${u.instance} first)`);
    }
  }
  const spec: RouteSpec = {
    host,
    port: o.port === undefined ? 0 : c.int(o.port, 'port', 0, 65535),
    stable: stable as Track,
    ...(canary ? { canary: canary as Track & { weight: number } } : {}),
    sticky: o.sticky === undefined ? false : typeof o.sticky === 'boolean' ? o.sticky : (c.fail('sticky must be true or false'), false),
  };
  // Absent stays absent (the default, true), so that specs from older callers are unchanged.
  if (o.retryCanaryErrors !== undefined) {
    if (typeof o.retryCanaryErrors === 'boolean') spec.retryCanaryErrors = o.retryCanaryErrors;
    else c.fail('retryCanaryErrors must be true or false');
  }
  return c.done(spec);
}
