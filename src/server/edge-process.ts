// The server's link to the edge (the data plane) on its host. The edge is a separate, long-lived
// process that must outlive the server (a server crash or upgrade must not drop a request), so
// the server starts it detached when none answers and otherwise just connects to the running
// one, found through FERRY_HOME/edge/admin.json.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeClient } from '../edge/client.js';
import { selfCommand } from '../self-command.js';

async function alive(home: string): Promise<EdgeClient | null> {
  try {
    const client = EdgeClient.fromHome(home);
    await client.health();
    return client;
  } catch {
    return null;
  }
}

/** Connects to this home's edge, starting one (detached, logging to edge/edge.log) if none answers. */
export async function ensureEdge(home: string, opts: { adminPort?: number; timeoutMs?: number } = {}): Promise<EdgeClient> {
  const running = await alive(home);
  if (running) return running;
  const dir = join(home, 'edge');
  mkdirSync(dir, { recursive: true });
  const log = openSync(join(dir, 'edge.log'), 'a');
  const { command, args } = selfCommand(['edge', ...(opts.adminPort !== undefined ? ['--admin-port', String(opts.adminPort)] : [])]);
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, FERRY_HOME: home } });
  closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`the edge exited at start (code ${exited}); see ${join(dir, 'edge.log')}`);
    const c = await alive(home);
    if (c) return c;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the edge did not answer within ${(opts.timeoutMs ?? 15_000) / 1000}s; see ${join(dir, 'edge.log')}`);
}

/**
 * Stops this home's edge (and so every application instance it runs) and waits until it has
 * exited. The edge outlives the server by design; this is for whoever owns the whole set-up and
 * is done with it (`ferry demo`, tests). Returns false when no edge was running.
 */
export async function stopEdge(home: string, timeoutMs = 15_000): Promise<boolean> {
  const info = join(home, 'edge', 'admin.json');
  if (!existsSync(info)) return false;
  const { pid } = JSON.parse(readFileSync(info, 'utf8')) as { pid: number };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false; // already gone
  }
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // It did not stop in time: a hung edge must not outlive its owner's "stopped" message.
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  return true;
}
