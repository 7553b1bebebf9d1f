// A PGlite data folder made once (initdb + all migrations) and dumped as a gzip tarball, so a
// new store starts by unpacking it (~1 s) instead of running initdb in WASM (3-5 s).
// Built at install time by scripts/build-snapshot.mjs into <package root>/dist/.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { packageRoot } from '../package-root.js';
import { migrate } from './migrate.js';
import { digestsMatch, migrationDigests, type Migration } from './migrations/index.js';
import { PgliteDb } from './pglite.js';

export const SNAPSHOT_FILE = 'pglite-snapshot.tar.gz';

/** <package root>/dist/pglite-snapshot.tar.gz */
export function defaultSnapshotPath(): string {
  return join(packageRoot(), 'dist', SNAPSHOT_FILE);
}

export interface SnapshotInfo {
  path: string;
  bytes: number;
  /** Latest migration version inside the snapshot. */
  version: number;
  ms: number;
}

/** Creates a fresh in-memory PGlite, migrates it, and writes its dump (gzip) to `path` atomically. */
export async function buildSnapshot(path: string = defaultSnapshotPath(), opts: { migrations?: readonly Migration[] } = {}): Promise<SnapshotInfo> {
  const t0 = performance.now();
  const db = await PgliteDb.open(undefined);
  try {
    const { version } = await migrate(db, opts.migrations);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(`${path}.migrations`, migrationDigests(opts.migrations));
    const dump = await db.pg.dumpDataDir('gzip');
    const bytes = new Uint8Array(await dump.arrayBuffer());
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    return { path, bytes: bytes.byteLength, version, ms: performance.now() - t0 };
  } finally {
    await db.close();
  }
}

/** The snapshot as a Blob for PGlite's loadDataDir, or null when there is no such file or it
 * was built from other migrations than these. */
export async function readSnapshot(path: string): Promise<Blob | null> {
  const built = await readFile(`${path}.migrations`, 'utf8').catch(() => null);
  if (built !== null && !digestsMatch(built)) return null;
  try {
    return new Blob([await readFile(path)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
