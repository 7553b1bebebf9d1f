// A real Ferry server for tests: started in this process on a free loopback port (or as a child
// process, for crash tests), on PGlite in a temp folder or, with FERRY_TEST_DATABASE_URL, on a
// fresh PostgreSQL schema.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/server.js';
import { createSchema } from '../store/helpers.js';

export interface TestServer extends RunningServer {
  token: string;
  call<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>;
  /** Polls a pipeline until it is no longer running. */
  waitPipeline(id: string, timeoutMs?: number): Promise<{ status: string; jobs: { id: string; name: string; status: string; exitCode: number | null; failureReason: string | null }[] }>;
  home: string;
}

export async function testServer(opts: Partial<ServerOptions> & { postgres?: boolean } = {}): Promise<TestServer> {
  const home = opts.home ?? mkdtempSync(join(tmpdir(), 'ferry-server-'));
  const schema = opts.postgres ? await createSchema() : undefined;
  // Delivery only when a test asks: it starts an edge process that outlives the server.
  const server = await startServer({ home, host: '127.0.0.1', port: 0, runner: true, runnerConcurrency: 2, delivery: false, ...opts, databaseUrl: schema?.url ?? opts.databaseUrl });
  const token = server.adminToken!;
  const call = async <T>(method: string, path: string, body?: unknown, tok: string | null = token) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // plain text (logs)
    }
    return { status: res.status, body: parsed as T };
  };
  return {
    ...server,
    home,
    token,
    call: call as TestServer['call'],
    async waitPipeline(id, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const r = await call<{ status: string; jobs: never[] }>('GET', `/api/pipelines/${id}`);
        if (r.status === 200 && !['running', 'created'].includes(r.body.status)) return r.body;
        if (Date.now() > end) throw new Error(`pipeline ${id} still ${r.body.status} after ${timeoutMs} ms: ${JSON.stringify(r.body)}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    async close() {
      await server.close();
      await schema?.drop();
    },
  };
}
