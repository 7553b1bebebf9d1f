// The edge's files under FERRY_HOME/edge: token (0600), admin.json (where the admin API listens)
// and state.json (every instance and route it was told about), each written atomically.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EdgeAdminInfo, RouteSpec } from './api.js';
import type { InstanceRecord } from './supervisor.js';

export interface RouteRecord {
  name: string;
  spec: RouteSpec;
  /** The port listened on (spec.port, or the one picked when it was 0). */
  port: number;
}

export interface EdgeState {
  version: 1;
  instances: InstanceRecord[];
  routes: RouteRecord[];
}

export function edgeDir(home: string): string {
  return join(home, 'edge');
}

export const paths = (dir: string) => ({
  token: join(dir, 'token'),
  admin: join(dir, 'admin.json'),
  state: join(dir, 'state.json'),
  lock: join(dir, 'edge.pid'),
});

function edgeAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('edge');
  } catch {
    return false;
  }
}

/**
 * One edge per home: edge.pid is created exclusively and holds the owner's pid. A file left by
 * an edge that is gone (kill -9) is taken over. Throws when another live edge holds it.
 */
export function takeLock(dir: string): void {
  const file = paths(dir).lock;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid && pid !== process.pid && edgeAlive(pid)) throw new Error(`another edge (pid ${pid}) is running on ${dir}`);
    // Stale (or ours from an edge of this process that stopped): remove, then create exclusively
    // again, so that of two edges taking it over at once only one wins.
    rmSync(file, { force: true });
  }
  throw new Error(`cannot take ${file}`);
}

export function releaseLock(dir: string): void {
  try {
    if (Number(readFileSync(paths(dir).lock, 'utf8').trim()) === process.pid) rmSync(paths(dir).lock);
  } catch {
    // Gone already.
  }
}

/** The admin token, created (32 random bytes, hex, mode 0600) on first start. */
export function readOrCreateToken(dir: string): string {
  const file = paths(dir).token;
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 32) return t;
  }
  const token = randomBytes(32).toString('hex');
  // wx: two edges starting at once on one home do not overwrite each other's token.
  try {
    const fd = openSync(file + '.tmp', 'w', 0o600);
    writeSync(fd, token + '\n');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(file + '.tmp', file);
  } finally {
    try {
      chmodSync(file, 0o600);
    } catch {
      // Not written.
    }
  }
  return token;
}

export function readState(dir: string): EdgeState {
  const file = paths(dir).state;
  if (!existsSync(file)) return { version: 1, instances: [], routes: [] };
  let parsed: EdgeState;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as EdgeState;
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}); move it aside to start an empty edge`);
  }
  return { version: 1, instances: parsed.instances ?? [], routes: parsed.routes ?? [] };
}

export function writeJsonSync(file: string, value: unknown, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode });
  renameSync(tmp, file);
}

export function writeAdminInfo(dir: string, info: EdgeAdminInfo): void {
  writeJsonSync(paths(dir).admin, info);
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes state.json off the event loop's critical path (the router shares the thread): one write
 * at a time, the latest state wins, identical states are not written again. Each write goes to a
 * temporary file, is fsync'd, and renamed over the old one.
 */
export class StateWriter {
  private last = '';
  /** The latest state asked for: what the file holds once the loop is idle. */
  private queued = '';
  private pending: string | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly file: string) {}

  /** Saves this state; resolves once it (or a later one) is on disk. */
  save(state: EdgeState): Promise<void> {
    const text = JSON.stringify(state, null, 2) + '\n';
    if (text === this.queued) return this.running ?? Promise.resolve();
    this.queued = text;
    this.pending = text;
    if (!this.running) this.running = this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    try {
      while (this.pending !== null) {
        const text = this.pending;
        this.pending = null;
        if (text === this.last) continue;
        const tmp = `${this.file}.${process.pid}.tmp`;
        const fh = await open(tmp, 'w', 0o600);
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.file);
        this.last = text;
      }
    } catch (err) {
      // Not on disk: the next change tries again.
      this.queued = this.last;
      this.pending = null;
      process.stderr.write(`ferry edge: cannot write ${this.file}: ${(err as Error).message}\n`);
    } finally {
      this.running = null;
    }
  }
}
