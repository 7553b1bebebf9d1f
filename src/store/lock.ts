// A lock file that lets only one process at a time open an embedded (PGlite) data folder.
// Created with O_EXCL and holding the owner's pid; a lock whose pid is no longer alive is stale
// and taken over. The takeover itself is serialised by a short-lived second lock file so two
// processes that find the same stale lock cannot both win.
import { open, readFile, unlink, stat, writeFile } from 'node:fs/promises';

export interface FileLock {
  readonly path: string;
  release(): Promise<void>;
}

export interface LockOptions {
  /** How long to wait for a live holder to let go. Default 30 s. */
  timeoutMs?: number;
  /** Polling interval while waiting. Default 100 ms. */
  pollMs?: number;
  /** Called once when the lock is held by another live process and we start waiting. */
  onWait?: (holderPid: number) => void;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holderPid: number | null,
    timeoutMs: number,
  ) {
    super(
      `the Ferry store is in use: ${lockPath} is held by ${holderPid === null ? 'another process' : `process ${holderPid}`}` +
        ` (waited ${Math.round(timeoutMs / 1000)} s). Stop that process or wait for it to finish.`,
    );
    this.name = 'LockTimeoutError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryCreate(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'wx');
    try {
      await fh.writeFile(`${process.pid}\n`);
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** The pid in the lock file; null when the file is gone; NaN when it is unreadable/being written. */
async function readHolder(path: string): Promise<number | null> {
  try {
    const text = await readFile(path, 'utf8');
    const pid = Number.parseInt(text.trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : NaN;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

/** Removes `path` if it still names the same dead pid. Returns true if the caller may retry creating. */
async function takeOverStale(path: string, stalePid: number): Promise<boolean> {
  const guard = `${path}.takeover`;
  if (!(await tryCreate(guard))) {
    // Someone else is taking over; a guard left by a crash mid-takeover expires after 10 s.
    if ((await ageMs(guard)) > 10_000) await unlink(guard).catch(() => {});
    return false;
  }
  try {
    const again = await readHolder(path);
    if (again === stalePid || (Number.isNaN(again) && (await ageMs(path)) > 5_000)) {
      await unlink(path).catch(() => {});
    }
    return true;
  } finally {
    await unlink(guard).catch(() => {});
  }
}

export async function acquireLock(path: string, opts: LockOptions = {}): Promise<FileLock> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pollMs = opts.pollMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let waitedFor: number | null | undefined;
  for (;;) {
    if (await tryCreate(path)) {
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          // Only remove the file if it is still ours.
          if ((await readHolder(path)) === process.pid) await unlink(path).catch(() => {});
        },
      };
    }
    const holder = await readHolder(path);
    if (holder === null) continue; // released between our create and read: try again at once
    if (Number.isNaN(holder)) {
      // Just created by someone who has not written the pid yet, or garbage left by a crash.
      if ((await ageMs(path)) > 5_000 && (await takeOverStale(path, NaN))) continue;
    } else if (holder !== process.pid && !pidAlive(holder)) {
      if (await takeOverStale(path, holder)) continue;
    } else if (waitedFor === undefined) {
      waitedFor = holder;
      opts.onWait?.(holder);
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(path, Number.isNaN(holder) ? null : holder, timeoutMs);
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}

/** For tests and tools: write a lock file naming `pid` (e.g. a dead pid to simulate a crash). */
export async function writeLockFile(path: string, pid: number): Promise<void> {
  await writeFile(path, `${pid}\n`);
}
