import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { siblingScript } from '../helpers/paths.js';
import { acquireLock, LockTimeoutError, writeLockFile } from '../../src/store/lock.js';
import { openDb, storePaths } from '../../src/store/open.js';
import { tempHome, testSnapshot } from './helpers.js';

const child = siblingScript(import.meta.url, 'lock-child');

function startHolder(home: string, snapshot: string): Promise<{ proc: ChildProcess; pid: number; closed: Promise<void> }> {
  const proc = spawn(process.execPath, [...child.execArgv, child.path, home, snapshot], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const closed = new Promise<void>((resolve) => proc.stdout!.on('data', (d: Buffer) => (out += d) && /closed/.test(out) && resolve()));
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
    proc.stdout!.on('data', () => {
      const m = /open (\d+)/.exec(out);
      if (m) resolve({ proc, pid: Number(m[1]), closed });
    });
  });
}

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

test('only one process opens an embedded store; others wait, then fail naming the holder', { timeout: 90_000 }, async () => {
  const home = await tempHome();
  const snapshot = await testSnapshot();
  const holder = await startHolder(home, snapshot);
  try {
    assert.equal((await readFile(storePaths(home).lock, 'utf8')).trim(), String(holder.pid));

    // A second process gives up after its timeout, naming the pid that holds the store.
    await assert.rejects(openDb({ home, snapshot, lockTimeoutMs: 300 }), (err: Error) => {
      assert.ok(err instanceof LockTimeoutError);
      assert.equal(err.holderPid, holder.pid);
      assert.match(err.message, new RegExp(`held by process ${holder.pid}`));
      return true;
    });

    // With time to wait, it gets the store as soon as the holder lets go.
    const waitedFor: number[] = [];
    const opening = openDb({ home, snapshot, lockTimeoutMs: 60_000, onLockWait: (pid) => waitedFor.push(pid) });
    await new Promise((r) => setTimeout(r, 300));
    holder.proc.stdin!.write('close\n');
    const db = await opening;
    assert.deepEqual(waitedFor, [holder.pid]);
    await holder.closed;
    assert.equal((await readFile(storePaths(home).lock, 'utf8')).trim(), String(process.pid));
    await db.close();
    assert.equal(existsSync(storePaths(home).lock), false, 'close removes the lock');
  } finally {
    holder.proc.kill('SIGKILL');
    await exited(holder.proc);
    await rm(home, { recursive: true, force: true });
  }
});

test('the lock of a killed process is taken over', { timeout: 90_000 }, async () => {
  const home = await tempHome();
  const snapshot = await testSnapshot();
  const holder = await startHolder(home, snapshot);
  try {
    holder.proc.kill('SIGKILL');
    await exited(holder.proc);
    assert.equal((await readFile(storePaths(home).lock, 'utf8')).trim(), String(holder.pid), 'a crash leaves the lock behind');
    const db = await openDb({ home, snapshot, lockTimeoutMs: 2_000 });
    try {
      // The store a crashed process left behind is still usable.
      assert.equal((await db.query<{ n: number }>('SELECT count(*) AS n FROM schema_migrations'))[0]!.n > 0, true);
    } finally {
      await db.close();
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('lock files: a stale pid is taken over; a second acquirer in the same process waits', async () => {
  const home = await tempHome();
  const path = join(home, 'x.lock');
  try {
    await writeLockFile(path, 2 ** 22 + 12345); // above the default pid_max: not a live process
    const a = await acquireLock(path, { timeoutMs: 1_000 });
    assert.equal((await readFile(path, 'utf8')).trim(), String(process.pid));
    // The same process asking again waits like anyone else (two writers in one process).
    await assert.rejects(acquireLock(path, { timeoutMs: 100, pollMs: 20 }), LockTimeoutError);
    const waiting = acquireLock(path, { timeoutMs: 5_000, pollMs: 20 });
    await a.release();
    const b = await waiting;
    await b.release();
    await b.release(); // idempotent
    assert.equal(existsSync(path), false);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
