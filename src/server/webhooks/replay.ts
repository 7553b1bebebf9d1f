// Replay protection by delivery id. The signature proves a body came from the forge, not that it
// came once: anyone who captured a delivery could send it again. Only verified deliveries may be
// recorded (or unauthenticated requests could pre-empt real ids), so the route checks after verify.
//
// Recording happens before the pipeline is created, so a delivery whose processing then failed is
// dropped when the forge retries it. The store-backed guard the server will add can record the id
// in the same transaction as the pipeline instead; this in-memory one is for a single process.

export interface ReplayGuard {
  /** Records `id` and says whether it had been seen already. */
  check(id: string): Promise<'new' | 'replayed'>;
}

export interface MemoryReplayGuardOptions {
  /** How long an id is remembered. Forges retry within hours; a day covers that. */
  ttlMs?: number;
  /** Bound on memory; the least recently seen id is forgotten first. */
  maxEntries?: number;
  now?: () => number;
}

export class MemoryReplayGuard implements ReplayGuard {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  // id -> expiry. Map keeps insertion order and every touch re-inserts with the same TTL, so the
  // first entries are both the least recently seen and the first to expire.
  private readonly ids = new Map<string, number>();

  constructor(opts: MemoryReplayGuardOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 24 * 60 * 60 * 1000;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
    this.now = opts.now ?? Date.now;
  }

  /** True if `id` was seen within the TTL. Either way it is remembered afresh, so a replay keeps being refused. */
  seen(id: string): boolean {
    const now = this.now();
    for (const [old, expiry] of this.ids) {
      if (expiry > now) break;
      this.ids.delete(old);
    }
    const known = this.ids.delete(id);
    this.ids.set(id, now + this.ttlMs);
    if (this.ids.size > this.maxEntries) this.ids.delete(this.ids.keys().next().value!);
    return known;
  }

  async check(id: string): Promise<'new' | 'replayed'> {
    return this.seen(id) ? 'replayed' : 'new';
  }

  get size(): number {
    return this.ids.size;
  }
}
