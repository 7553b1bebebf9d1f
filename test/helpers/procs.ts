// Looking at real processes from tests: is anything with this marker in its command line alive?
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** PIDs of live processes whose command line contains `marker`. */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Zombies are dead already; they only wait for their parent to reap them.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmd.includes(marker) && state !== 'Z') found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** PIDs of live processes that mention `dir` in their command line, working directory or
 * environment: what a program working in `dir` started (an edge has it as FERRY_HOME, an
 * application instance as its working directory). */
export function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmd.includes(dir) || cwd.startsWith(dir) || env.includes(dir)) found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A port that was free on 127.0.0.1 a moment ago (for a child process that must be told one). */
export { freePort } from '../../src/process/free-port.js';

/** A binary from a Debian package, installed when missing and we may (root, apt); null if not. */
export function debianBinary(bin: string, pkg: string): string | null {
  if (existsSync(bin)) return bin;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) return null;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], { env, stdio: 'ignore', timeout: 600_000 });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 600_000 });
    r = spawnSync('apt-get', ['install', '-y', '-qq', pkg], { env, stdio: 'ignore', timeout: 600_000 });
  }
  return existsSync(bin) ? bin : null;
}

/**
 * Kills `child` if this test process ends without its own cleanup having run: a test runner's
 * timeout or a Ctrl-C sends SIGTERM or SIGINT, which skips `after` hooks and would leave a
 * daemon the test started (HAProxy, Prometheus) running. Returns what removes the guard.
 */
export function killWithThisProcess(child: ChildProcess): () => void {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onSignal = (signal: NodeJS.Signals) => {
    kill();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', kill);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return () => {
    process.off('exit', kill);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}

const FERRY_MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

/**
 * Runs the built `ferry` with `args` to its end, asynchronously: the tests that call it often
 * serve its API from their own process, which spawnSync would stall.
 */
export function ferryCli(args: string[], o: { env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_MAIN, ...args], { cwd: o.cwd, env: { ...process.env, NO_COLOR: '1', ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
  });
}

/** Stops child processes with SIGTERM and waits until each has exited. */
export async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('close', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
}
