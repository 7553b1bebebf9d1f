// What every route and background loop of the server shares.
import type { EventBus } from '../events/bus.js';
import type { RunEvent } from '../pipeline/events.js';
import type { Db } from '../store/db.js';
import type { EdgeClient } from '../edge/client.js';

export interface ServerContext {
  db: Db;
  /** Ferry's home: repositories mirrored, artifacts and caches. */
  home: string;
  /** Everything that happens to pipelines, for live streams and metrics (this replica). */
  bus: EventBus<RunEvent>;
  /** Jobs were queued by another replica (PostgreSQL's NOTIFY ferry_jobs): waiting runners look again. */
  queued?: EventBus<{ type: 'jobs.queued' }>;
  /** A runner that does not heart-beat for this long loses its job (default 30 s). */
  leaseMs: number;
  /** Bytes of log a job attempt keeps (--log-limit, FERRY_LOG_LIMIT; default 100 MiB). */
  logLimit?: number;
  /** This server's own URL, once it listens (the push hooks of local projects call it). */
  url?: string;
  /**
   * Seals and opens project secrets (FERRY_MASTER_KEY or `<home>/master.key`). Absent only when
   * the app is built without a server (route tests): secret writes then answer 503, and a job
   * whose project has secrets fails rather than run without them.
   */
  masterKey?: Buffer;
  /** The edge (data plane) of this host, started on first use; absent when delivery is off. */
  edge?: () => Promise<EdgeClient>;
}

export function publish(ctx: ServerContext, events: RunEvent[]): void {
  for (const e of events) ctx.bus.emit(e);
}
