// The edge's admin API: the contract between the control plane (the server's delivery
// controller, through src/edge/client.ts) and the data plane (`ferry edge`: router + supervisor).
//
// The edge is one long-lived process per host. It listens for admin calls on 127.0.0.1 only,
// requires `Authorization: Bearer <token>` (the token is in FERRY_HOME/edge/token, mode 0600,
// created by the edge on first start), writes where it listens to FERRY_HOME/edge/admin.json,
// and persists everything it was told in FERRY_HOME/edge/state.json (written atomically) so that a
// restarted edge serves the same routes and restarts the same instances. While the server is
// away the edge keeps serving with its last configuration: nothing here depends on the server.
//
// Every call is idempotent: PUT the same thing twice, nothing changes the second time.

/** Written by the edge to FERRY_HOME/edge/admin.json once it listens. */
export interface EdgeAdminInfo {
  url: string;
  pid: number;
  startedAt: string;
}

// ---- supervisor: application instances ------------------------------------------------------

export interface ProbeConfig {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
}

/** PUT /instances/:id — start (or keep) one instance of an application. */
export interface InstanceSpec {
  /** Shell command (run by bash -c) in its own process group. */
  command: string;
  cwd: string;
  /** The environment of the process, on top of a minimal base (PATH, HOME, LANG); PORT is added. */
  env: Record<string, string>;
  /** 0: the edge picks a free port on 127.0.0.1. */
  port: number;
  /** Readiness probe: the instance is `ready` (and routable) after one 2xx answer. */
  readiness: ProbeConfig;
  /** Liveness probe: the instance is restarted after failureThreshold failures in a row. */
  liveness: ProbeConfig | null;
  /** stdout and stderr are appended here, each line prefixed with an ISO timestamp and the stream. */
  logFile: string;
  /** Restart with exponential backoff after a crash, from initial to max (defaults 200 ms, 10 s). */
  restartBackoffMs?: { initial: number; max: number };
  /** Free-form labels the controller uses to find its instances again (environment, release, role). */
  labels: Record<string, string>;
}

export type InstanceState =
  | 'starting' // spawned, not ready yet
  | 'ready' // readiness passed; routable
  | 'unready' // was ready, a probe is failing (not routed until it passes again)
  | 'backoff' // exited; waiting to restart
  | 'stopping'
  | 'stopped';

export interface InstanceStatus {
  id: string;
  spec: InstanceSpec;
  state: InstanceState;
  /** The port actually used (spec.port, or the one the edge picked). */
  port: number;
  pid: number | null;
  restarts: number;
  /** How the last process ended: exit code or signal, and when. */
  lastExit: { code: number | null; signal: string | null; at: string } | null;
  startedAt: string | null;
  readyAt: string | null;
}

/** DELETE /instances/:id?graceMs=N — stop routing to it is the caller's job (PUT the route
 * first); the edge then waits until the router has no request in flight to it (at most graceMs,
 * default 10 s), sends SIGTERM to its process group, SIGKILL 5 s later. Answers when it is gone. */

// ---- router: one weighted reverse proxy per environment --------------------------------------

/** Where a track's requests go: instances of this edge (by id) and/or fixed addresses. */
export interface Upstream {
  instance?: string;
  /** e.g. http://127.0.0.1:9000 (used when `instance` is absent). */
  url?: string;
}

export interface Track {
  /** The version label metrics are kept under (the release id, usually). */
  version: string;
  upstreams: Upstream[];
}

/** PUT /routes/:name — create or change a router. Applied atomically: each request is routed by
 * exactly one configuration; requests in flight finish where they started. */
export interface RouteSpec {
  host: string;
  /** 0: the edge picks a free port the first time and keeps it (persisted). */
  port: number;
  stable: Track;
  /** The new version and its share of requests (0..100), chosen per request. */
  canary?: Track & { weight: number };
  /** Keep a client on the track it first got (cookie `ferry_track_<name>`). */
  sticky: boolean;
  /**
   * Retry on the stable track a request the canary failed (default true when absent), like
   * Envoy's `retry_on: 5xx,connect-failure`: the canary's 5xx answer, or a connection error or
   * timeout before any answer, is not passed on; the request is sent once to stable, whose answer
   * (whatever it is) goes to the client with `X-Ferry-Retried: canary-5xx` (or `canary-error`).
   * Only when it is safe and wanted:
   * - GET, HEAD or OPTIONS without a body (no Content-Length other than 0, no Transfer-Encoding);
   * - the canary was chosen by the weight, or by a sticky cookie the router set (the client did
   *   not ask for the canary) — not when the client forced it (`X-Ferry-Track: canary`, or a
   *   tester's cookie `ferry_track_<name>=canary`): a tester sees the canary's real answers;
   * - stable has a ready upstream (else the canary's answer goes through).
   * The canary's failure is still counted in its metrics (5xx; a connection error as a 502/504
   * and a proxy error), and stable's answer in stable's: the analysis sees the canary's errors,
   * users do not. Retries are counted per version retried from (VersionMetrics.retries) and per
   * route and reason (`ferry_edge_retries_total{route,reason}`).
   */
  retryCanaryErrors?: boolean;
}

export interface RouteStatus {
  name: string;
  spec: RouteSpec;
  /** The port actually listened on. */
  port: number;
  /** Requests in flight per upstream address (http://127.0.0.1:PORT). */
  inFlight: Record<string, number>;
}

/**
 * GET /routes/:name/metrics — cumulative figures per version since the edge started (like
 * Prometheus counters: the controller takes two snapshots and subtracts). A request that the
 * router could not deliver (connection refused, reset, timeout) counts as a 5xx (502/504) and as
 * a proxy error of the version it was sent to. A canary request retried on stable is counted in
 * both versions (the canary's failure in the canary's, the stable answer in stable's): the sum of
 * the versions' requests is then the clients' requests plus the retries.
 */
export interface RouteMetrics {
  name: string;
  /** Epoch ms when the snapshot was taken. */
  at: number;
  /** Bucket upper bounds in milliseconds, shared by every histogram; the last one is Infinity
   * (serialised as null in JSON). */
  bucketsMs: (number | null)[];
  versions: Record<string, VersionMetrics>;
}

export interface VersionMetrics {
  requests: number;
  /** Counts by status class: '1xx'..'5xx'. */
  statusClasses: Record<string, number>;
  proxyErrors: number;
  /** Non-cumulative count per bucket (same length as bucketsMs). */
  latencyBuckets: number[];
  latencySumMs: number;
  /** Requests of this version (a canary) that failed and were answered by stable instead (see
   * RouteSpec.retryCanaryErrors); each is counted in `requests` here and again in stable's.
   * Absent from edges that predate retries. */
  retries?: number;
}
