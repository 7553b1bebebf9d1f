// Per-version request figures of a route, kept as plain numbers so the router's hot path is a
// few additions (no label lookups, no allocation), and rendered on demand as the RouteMetrics
// JSON of the contract or as Prometheus text.
import type { RouteMetrics, VersionMetrics } from './api.js';

/** Bucket upper bounds (ms) of every latency histogram: fine at the low end, where a router's
 * and a healthy service's figures are, so a canary's p99 can be compared to the stable's. */
export const BUCKETS_MS: readonly number[] = [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000, 10000, 30000, Infinity];
const LAST = BUCKETS_MS.length - 1;

export class VersionStats {
  requests = 0;
  /** Index 0..4: 1xx..5xx. */
  readonly classes = [0, 0, 0, 0, 0];
  proxyErrors = 0;
  readonly buckets: number[] = new Array(BUCKETS_MS.length).fill(0);
  sumMs = 0;
  /** Requests of this version (a canary) answered by stable instead: after a 5xx answer... */
  retries5xx = 0;
  /** ...and after a connection error or a timeout (see RouteSpec.retryCanaryErrors). */
  retriesError = 0;

  /** One answered request: its status and the time from its arrival to its response head. */
  record(status: number, ms: number): void {
    this.requests++;
    const c = (status / 100) | 0;
    if (c >= 1 && c <= 5) this.classes[c - 1]++;
    // Linear: most requests land in the first few buckets.
    let i = 0;
    while (i < LAST && ms > BUCKETS_MS[i]) i++;
    this.buckets[i]++;
    this.sumMs += ms;
  }

  snapshot(): VersionMetrics {
    const statusClasses: Record<string, number> = {};
    for (let i = 0; i < 5; i++) statusClasses[`${i + 1}xx`] = this.classes[i];
    return { requests: this.requests, statusClasses, proxyErrors: this.proxyErrors, latencyBuckets: [...this.buckets], latencySumMs: this.sumMs, retries: this.retries5xx + this.retriesError };
  }
}

export function routeMetrics(name: string, versions: Map<string, VersionStats>): RouteMetrics {
  const out: Record<string, VersionMetrics> = {};
  for (const [v, s] of versions) out[v] = s.snapshot();
  return { name, at: Date.now(), bucketsMs: BUCKETS_MS.map((b) => (b === Infinity ? null : b)), versions: out };
}

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export interface PromRoute {
  name: string;
  versions: Map<string, VersionStats>;
  inFlight: Record<string, number>;
}

export interface PromInstance {
  id: string;
  state: string;
  restarts: number;
}

/** Prometheus text exposition (format 0.0.4) of every route and instance. */
export function prometheusText(routes: PromRoute[], instances: PromInstance[]): string {
  const L: string[] = [];
  L.push('# HELP ferry_edge_requests_total Requests answered by the edge router, by route, version and status class.');
  L.push('# TYPE ferry_edge_requests_total counter');
  for (const r of routes) {
    for (const [v, s] of r.versions) {
      for (let i = 0; i < 5; i++) L.push(`ferry_edge_requests_total{route="${esc(r.name)}",version="${esc(v)}",code="${i + 1}xx"} ${s.classes[i]}`);
    }
  }
  L.push('# HELP ferry_edge_proxy_errors_total Requests the router could not deliver (or finish) to an upstream.');
  L.push('# TYPE ferry_edge_proxy_errors_total counter');
  for (const r of routes) for (const [v, s] of r.versions) L.push(`ferry_edge_proxy_errors_total{route="${esc(r.name)}",version="${esc(v)}"} ${s.proxyErrors}`);
  L.push('# HELP ferry_edge_retries_total Requests the canary failed that the router retried on the stable track, by route and reason (canary-5xx: a 5xx answer; canary-error: a connection error or timeout).');
  L.push('# TYPE ferry_edge_retries_total counter');
  for (const r of routes) {
    let answered = 0;
    let failed = 0;
    for (const s of r.versions.values()) {
      answered += s.retries5xx;
      failed += s.retriesError;
    }
    L.push(`ferry_edge_retries_total{route="${esc(r.name)}",reason="canary-5xx"} ${answered}`);
    L.push(`ferry_edge_retries_total{route="${esc(r.name)}",reason="canary-error"} ${failed}`);
  }
  L.push('# HELP ferry_edge_request_duration_seconds Time from a request\'s arrival to its response head, by route and version.');
  L.push('# TYPE ferry_edge_request_duration_seconds histogram');
  for (const r of routes) {
    for (const [v, s] of r.versions) {
      const labels = `route="${esc(r.name)}",version="${esc(v)}"`;
      let cum = 0;
      for (let i = 0; i < BUCKETS_MS.length; i++) {
        cum += s.buckets[i];
        const le = BUCKETS_MS[i] === Infinity ? '+Inf' : String(BUCKETS_MS[i] / 1000);
        L.push(`ferry_edge_request_duration_seconds_bucket{${labels},le="${le}"} ${cum}`);
      }
      L.push(`ferry_edge_request_duration_seconds_sum{${labels}} ${s.sumMs / 1000}`);
      L.push(`ferry_edge_request_duration_seconds_count{${labels}} ${cum}`);
    }
  }
  L.push('# HELP ferry_edge_in_flight_requests Requests in flight per route and upstream.');
  L.push('# TYPE ferry_edge_in_flight_requests gauge');
  for (const r of routes) for (const [u, n] of Object.entries(r.inFlight)) L.push(`ferry_edge_in_flight_requests{route="${esc(r.name)}",upstream="${esc(u)}"} ${n}`);
  L.push('# HELP ferry_edge_instance_ready 1 when the instance is ready (routable).');
  L.push('# TYPE ferry_edge_instance_ready gauge');
  for (const i of instances) L.push(`ferry_edge_instance_ready{instance="${esc(i.id)}",state="${i.state}"} ${i.state === 'ready' ? 1 : 0}`);
  L.push('# HELP ferry_edge_instance_restarts_total Restarts of each instance (kept across edge restarts).');
  L.push('# TYPE ferry_edge_instance_restarts_total counter');
  for (const i of instances) L.push(`ferry_edge_instance_restarts_total{instance="${esc(i.id)}"} ${i.restarts}`);
  return L.join('\n') + '\n';
}
