// Prometheus metrics of `ferry server` (prom-client), served at GET /metrics
// (src/server/routes/metrics.ts).
//
// One Registry per server, never prom-client's global one: tests (and embedders) start several
// servers in one process. Two kinds of series:
//
// - Read from the store at scrape time, so every replica reports the shared truth and a restart
//   loses nothing: ferry_pipelines{status}, ferry_jobs{status}, ferry_queue_depth,
//   ferry_queue_oldest_seconds, ferry_runners{state}. One small query each, run once per scrape.
// - Counted from the run events this replica publishes on ctx.bus: durations and queue waits
//   (histograms), log bytes, pipelines started, jobs finished, webhook deliveries. Like every
//   Prometheus counter they are per process: sum them over replicas in PromQL. A job queued by
//   one replica and leased through another has no queue-wait observation (neither saw both ends).
//
// Process metrics (CPU, memory, event loop, GC: prom-client's collectDefaultMetrics) are
// collected once per process and shared by every server's registry.
import { Buffer } from 'node:buffer';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { version } from '../cli/version.js';
import { FINAL_JOB_STATUSES, type JobStatus, type PipelineStatus, type RunEvent } from '../pipeline/events.js';
import type { ServerContext } from './context.js';

/** Who may read /metrics: anyone (the default, for Prometheus scrapers) or viewer and above. */
export type MetricsAccess = 'public' | 'viewer';

export interface MetricsOptions {
  /** Require an API token (viewer role) on GET /metrics. Default: FERRY_METRICS_AUTH in the environment. */
  auth?: boolean;
}

/** FERRY_METRICS_AUTH=1 (or true, yes, on) makes /metrics need a token; unset or anything else leaves it public. */
export function metricsAuthFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes|on)$/i.test(env.FERRY_METRICS_AUTH?.trim() ?? '');
}

export function metricsAccess(opts: MetricsOptions = {}): MetricsAccess {
  return (opts.auth ?? metricsAuthFromEnv()) ? 'viewer' : 'public';
}

/** A runner seen (any authenticated call, e.g. its lease long-poll) within this long is online. */
export const RUNNER_ONLINE_SECONDS = 60;

const PIPELINE_STATUSES: PipelineStatus[] = ['created', 'running', 'success', 'failed', 'canceled', 'manual', 'skipped'];
const JOB_STATUSES: JobStatus[] = ['created', 'pending', 'running', 'manual', 'success', 'failed', 'canceled', 'skipped'];
const RUNNER_STATES = ['online', 'offline'] as const;

// From a quick unit-test job to a long release pipeline.
const DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
// A healthy queue hands a job out in well under a second.
const WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * Start times remembered per job or pipeline. Bounded: an entry whose end another replica saw
 * would otherwise stay forever; past the bound the oldest entries go (Maps keep insertion order).
 */
const MAX_TRACKED = 50_000;

function remember(map: Map<string, number>, key: string, at: number): void {
  map.delete(key);
  map.set(key, at);
  if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
}

function take(map: Map<string, number>, key: string): number | undefined {
  const v = map.get(key);
  if (v !== undefined) map.delete(key);
  return v;
}

let processRegistry: Registry | undefined;

/** Default process metrics, collected once per process (their GC observer and event-loop monitor cannot be stopped). */
function processMetrics(): Metric[] {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  // The typings say MetricObject[]; what it returns are the metric instances registerMetric takes.
  return processRegistry.getMetricsAsArray() as unknown as Metric[];
}

interface StoreSnapshot {
  pipelines: Map<string, number>;
  jobs: Map<string, number>;
  queueDepth: number;
  queueOldestSeconds: number;
  runners: { online: number; offline: number };
}

const byContext = new WeakMap<ServerContext, FerryMetrics>();

export class FerryMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: () => void;
  private readonly pendingSince = new Map<string, number>();
  private readonly runningSince = new Map<string, number>();
  private readonly pipelineSince = new Map<string, number>();
  private snapshotInFlight: Promise<StoreSnapshot> | undefined;

  private readonly jobWait: Histogram<never>;
  private readonly jobDuration: Histogram<'status'>;
  private readonly pipelineDuration: Histogram<'status'>;
  private readonly logBytes: Counter<never>;
  private readonly pipelinesStarted: Counter<never>;
  private readonly jobsFinished: Counter<'status'>;
  private readonly webhooks: Counter<'forge' | 'result'>;

  constructor(private readonly ctx: ServerContext) {
    const registers = [this.registry];
    const snapshot = () => this.snapshot();

    new Gauge({
      name: 'ferry_pipelines',
      help: 'Pipelines in the store, by status.',
      labelNames: ['status'] as const,
      registers,
      async collect() {
        const s = await snapshot();
        this.reset();
        for (const [status, n] of s.pipelines) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'ferry_jobs',
      help: 'Jobs in the store, by status.',
      labelNames: ['status'] as const,
      registers,
      async collect() {
        const s = await snapshot();
        this.reset();
        for (const [status, n] of s.jobs) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'ferry_queue_depth',
      help: 'Jobs waiting for a runner (status pending).',
      registers,
      async collect() {
        this.set((await snapshot()).queueDepth);
      },
    });
    new Gauge({
      name: 'ferry_queue_oldest_seconds',
      help: 'How long the oldest waiting job has waited for a runner; 0 when none waits.',
      registers,
      async collect() {
        this.set((await snapshot()).queueOldestSeconds);
      },
    });
    new Gauge({
      name: 'ferry_runners',
      help: `Registered runners by state: online when seen in the last ${RUNNER_ONLINE_SECONDS} s, else offline.`,
      labelNames: ['state'] as const,
      registers,
      async collect() {
        const s = await snapshot();
        for (const state of RUNNER_STATES) this.set({ state }, s.runners[state]);
      },
    });

    this.jobWait = new Histogram({
      name: 'ferry_job_queue_wait_seconds',
      help: 'Time from a job (attempt) becoming pending to a runner starting it.',
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.jobDuration = new Histogram({
      name: 'ferry_job_duration_seconds',
      help: 'Time a job attempt ran (running to its final status), by final status.',
      labelNames: ['status'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.pipelineDuration = new Histogram({
      name: 'ferry_pipeline_duration_seconds',
      help: 'Time from a pipeline starting to finishing, by final status.',
      labelNames: ['status'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.logBytes = new Counter({ name: 'ferry_log_bytes_total', help: 'Bytes of job log (UTF-8) received.', registers });
    this.pipelinesStarted = new Counter({ name: 'ferry_pipelines_started_total', help: 'Pipelines started.', registers });
    this.jobsFinished = new Counter({
      name: 'ferry_jobs_finished_total',
      help: 'Jobs (attempts) that reached a final status, by that status; a retried attempt counts as failed.',
      labelNames: ['status'] as const,
      registers,
    });
    this.webhooks = new Counter({
      name: 'ferry_webhook_deliveries_total',
      help: 'Webhook deliveries received, by forge and result.',
      labelNames: ['forge', 'result'] as const,
      registers,
    });
    const buildInfo = new Gauge({ name: 'ferry_build_info', help: 'The running Ferry version; always 1.', labelNames: ['version'] as const, registers });
    buildInfo.set({ version: version() }, 1);

    // Known label values start at 0, so rate() and absent() behave from the first scrape.
    for (const status of FINAL_JOB_STATUSES) this.jobsFinished.inc({ status }, 0);

    for (const m of processMetrics()) this.registry.registerMetric(m);

    // A context built without a bus (the route table, listed without a store) has nothing to count.
    const bus = ctx.bus as ServerContext['bus'] | null | undefined;
    this.unsubscribe = bus ? bus.subscribe((e) => this.onEvent(e)) : () => undefined;
  }

  /** Counts one webhook delivery. `result` should come from a small fixed set (e.g. accepted, ignored, duplicate, bad_signature, error). */
  countWebhook(forge: string, result: string): void {
    this.webhooks.inc({ forge, result });
  }

  /** Stops listening to the bus; the registry stays readable. */
  close(): void {
    this.unsubscribe();
    if (byContext.get(this.ctx) === this) byContext.delete(this.ctx);
  }

  private onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'pipeline.started':
        this.pipelinesStarted.inc();
        remember(this.pipelineSince, e.pipelineId, e.at);
        break;
      case 'pipeline.finished': {
        const since = take(this.pipelineSince, e.pipelineId);
        if (since !== undefined) this.pipelineDuration.observe({ status: e.status }, seconds(e.at - since));
        break;
      }
      case 'job.log':
        this.logBytes.inc(Buffer.byteLength(e.text, 'utf8'));
        break;
      case 'job.state':
        if (e.status === 'pending') {
          remember(this.pendingSince, e.jobId, e.at);
        } else if (e.status === 'running') {
          const since = take(this.pendingSince, e.jobId);
          if (since !== undefined) this.jobWait.observe(seconds(e.at - since));
          remember(this.runningSince, e.jobId, e.at);
        } else if (FINAL_JOB_STATUSES.has(e.status)) {
          this.pendingSince.delete(e.jobId);
          const since = take(this.runningSince, e.jobId);
          if (since !== undefined) this.jobDuration.observe({ status: e.status }, seconds(e.at - since));
          this.jobsFinished.inc({ status: e.status });
        }
        break;
      default:
        break;
    }
  }

  /** The store's side of a scrape: every collector of one scrape shares one set of queries. */
  private snapshot(): Promise<StoreSnapshot> {
    if (!this.snapshotInFlight) {
      this.snapshotInFlight = this.readStore().finally(() => {
        this.snapshotInFlight = undefined;
      });
    }
    return this.snapshotInFlight;
  }

  private async readStore(): Promise<StoreSnapshot> {
    const db = this.ctx.db;
    const [pipelines, jobs, queue, runners] = await Promise.all([
      db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM pipelines GROUP BY status'),
      db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM jobs GROUP BY status'),
      db.query<{ n: number; oldest: Date | string | null }>("SELECT count(*)::int AS n, min(queued_at) AS oldest FROM jobs WHERE status = 'pending'"),
      db.query<{ online: number; total: number }>(
        `SELECT count(*) FILTER (WHERE last_seen_at >= now() - make_interval(secs => $1::double precision))::int AS online, count(*)::int AS total FROM runners`,
        [RUNNER_ONLINE_SECONDS],
      ),
    ]);
    const oldest = queue[0]?.oldest ? new Date(queue[0].oldest).getTime() : null;
    const online = runners[0]?.online ?? 0;
    return {
      pipelines: counts(PIPELINE_STATUSES, pipelines),
      jobs: counts(JOB_STATUSES, jobs),
      queueDepth: queue[0]?.n ?? 0,
      // queued_at is written from the server's clock (not the database's), so compare with it.
      queueOldestSeconds: oldest === null ? 0 : seconds(Date.now() - oldest),
      runners: { online, offline: (runners[0]?.total ?? 0) - online },
    };
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}

/** Every known status (0 when absent, so series do not vanish), plus any other the store holds. */
function counts(known: readonly string[], rows: { status: string; n: number }[]): Map<string, number> {
  const m = new Map<string, number>(known.map((s) => [s, 0]));
  for (const r of rows) m.set(r.status, Number(r.n));
  return m;
}

/**
 * The metrics of a server: subscribes to ctx.bus and builds its registry. Call close() when the
 * server stops. One per context; a second call returns the first while it is open.
 */
export function createMetrics(ctx: ServerContext): FerryMetrics {
  let m = byContext.get(ctx);
  if (!m) {
    m = new FerryMetrics(ctx);
    byContext.set(ctx, m);
  }
  return m;
}

/** The open metrics of a server, if it has any. */
export function metricsOf(ctx: ServerContext): FerryMetrics | undefined {
  return byContext.get(ctx);
}

/**
 * Counts a webhook delivery, for the webhook route: `countWebhook(ctx, 'github', 'accepted')`.
 * A no-op when the server has no metrics (e.g. a test app built without them).
 */
export function countWebhook(target: ServerContext | FerryMetrics, forge: string, result: string): void {
  const m = target instanceof FerryMetrics ? target : byContext.get(target);
  m?.countWebhook(forge, result);
}
