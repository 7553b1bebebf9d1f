import type { Db } from './db.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';

export interface MigrateResult {
  /** Versions applied by this call (empty when the schema was already current). */
  applied: number[];
  version: number;
}

/**
 * Applies the pending migrations in one transaction. The transaction first takes a transaction-
 * scoped advisory lock (keyed by the current schema), so several servers starting at once on one
 * PostgreSQL database apply each migration exactly once: the others wait, then find nothing to do.
 * (On PGlite the lock is trivially granted; the same SQL runs on both.)
 */
export async function migrate(db: Db, migrations: readonly Migration[] = allMigrations): Promise<MigrateResult> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('ferry.migrations:' || current_schema()))`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      try {
        await tx.exec(m.sql);
      } catch (err) {
        throw new Error(`migration ${String(m.version).padStart(3, '0')}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    const version = Math.max(0, ...done, ...applied);
    return { applied, version };
  });
}
