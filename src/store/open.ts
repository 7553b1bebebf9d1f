// Opening the store: PostgreSQL when a URL is given, else the embedded PGlite under <home>/db.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Db } from './db.js';
import { acquireLock } from './lock.js';
import { migrate } from './migrate.js';
// The engines are loaded when a store is opened, not when this module is: most commands that
// import it (`ferry run`) never open a store, and pg + PGlite cost ~100 ms to load.
import type { PgliteDb } from './pglite.js';

export interface OpenDbOptions {
  /** Ferry's home folder (embedded store in <home>/db). Default $FERRY_HOME or ~/.ferry. */
  home?: string;
  /** A PostgreSQL connection URL; when set, the server is used and `home` is ignored. */
  url?: string;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /** How long to wait for another process holding the embedded store. Default 30 s. */
  lockTimeoutMs?: number;
  /** Called when another live process holds the embedded store and we start waiting. */
  onLockWait?: (pid: number) => void;
  /** Snapshot to start a NEW embedded folder from; false to always run initdb.
   * Default <package root>/dist/pglite-snapshot.tar.gz when that file exists. */
  snapshot?: string | false;
  /** Reports how the store was opened, for diagnostics and benchmarks. */
  onOpened?: (info: OpenInfo) => void;
}

export interface OpenInfo {
  /** existing: reopened a folder; snapshot: new folder from the snapshot; initdb: new folder from
   * scratch (no snapshot, or it failed to load: see snapshotError). */
  how: 'postgres' | 'existing' | 'snapshot' | 'initdb';
  /** Time to a usable engine, before migrations. */
  openMs: number;
  migrateMs: number;
  applied: number[];
  snapshotError?: string;
}

export function defaultHome(): string {
  return process.env.FERRY_HOME || join(homedir(), '.ferry');
}

export function storePaths(home: string): { dataDir: string; lock: string; marker: string } {
  return { dataDir: join(home, 'db'), lock: join(home, 'db.lock'), marker: join(home, 'db.initialized') };
}

export async function openDb(opts: OpenDbOptions = {}): Promise<Db> {
  if (opts.url) {
    const t0 = performance.now();
    const { PostgresDb } = await import('./postgres.js');
    const db = await PostgresDb.open(opts.url);
    try {
      return await finish(db, opts, { how: 'postgres', openMs: performance.now() - t0 });
    } catch (err) {
      await db.close().catch(() => {});
      throw err;
    }
  }
  const home = opts.home ?? defaultHome();
  const paths = storePaths(home);
  await mkdir(home, { recursive: true });
  const lock = await acquireLock(paths.lock, { timeoutMs: opts.lockTimeoutMs, onWait: opts.onLockWait });
  let db: PgliteDb | undefined;
  try {
    const [{ PgliteDb }, { defaultSnapshotPath, readSnapshot }] = await Promise.all([import('./pglite.js'), import('./snapshot.js')]);
    const t0 = performance.now();
    const onClose = () => lock.release();
    // A folder is only trusted once a first open + migration completed (the marker file); a
    // folder left half-made by a crash during initdb or unpacking is started over.
    const isNew = !existsSync(paths.marker) || !existsSync(join(paths.dataDir, 'PG_VERSION'));
    let how: OpenInfo['how'] = 'existing';
    let snapshotError: string | undefined;
    if (isNew) {
      await rm(paths.dataDir, { recursive: true, force: true });
      const snapshotPath = opts.snapshot === false ? null : (opts.snapshot ?? defaultSnapshotPath());
      const blob = snapshotPath ? await readSnapshot(snapshotPath) : null;
      if (blob) {
        try {
          db = await PgliteDb.open(paths.dataDir, { loadDataDir: blob, onClose });
          how = 'snapshot';
        } catch (err) {
          snapshotError = `${snapshotPath}: ${(err as Error).message}`;
          await rm(paths.dataDir, { recursive: true, force: true });
        }
      }
      if (!db) how = 'initdb';
    }
    db ??= await PgliteDb.open(paths.dataDir, { onClose });
    const result = await finish(db, opts, { how, openMs: performance.now() - t0, snapshotError });
    if (isNew) await writeFile(paths.marker, `${new Date().toISOString()}\n`);
    return result;
  } catch (err) {
    if (db) await db.close().catch(() => {});
    else await lock.release().catch(() => {});
    throw err;
  }
}

async function finish(db: Db, opts: OpenDbOptions, info: Omit<OpenInfo, 'migrateMs' | 'applied'>): Promise<Db> {
  const t1 = performance.now();
  const applied = opts.migrate === false ? [] : (await migrate(db)).applied;
  opts.onOpened?.({ ...info, migrateMs: performance.now() - t1, applied });
  return db;
}
