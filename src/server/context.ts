// What every route and background loop of the server shares.
import type { EventBus } from '../events/bus.js';
import type { RunEvent } from '../pipeline/events.js';
import type { Db } from '../store/db.js';

export interface ServerContext {
  db: Db;
  /** Ferry's home: repositories mirrored, artifacts and caches. */
  home: string;
  /** Everything that happens to pipelines, for live streams and metrics (this replica). */
  bus: EventBus<RunEvent>;
  /** A runner that does not heart-beat for this long loses its job (default 30 s). */
  leaseMs: number;
}

export function publish(ctx: ServerContext, events: RunEvent[]): void {
  for (const e of events) ctx.bus.emit(e);
}
