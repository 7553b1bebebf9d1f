// What the edge tests share: a temporary FERRY_HOME, an edge in this process, specs of the sample
// app (test/fixtures/apps/sample-app.mjs) with quick probes, and small HTTP helpers.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { InstanceSpec, RouteSpec } from '../../src/edge/api.js';
import { EdgeClient } from '../../src/edge/client.js';
import { startEdge, type Edge } from '../../src/edge/edge.js';
import { fixture } from '../helpers/paths.js';

export const SAMPLE_APP = fixture('apps', 'sample-app.mjs');

export function tempHome(): { home: string; cleanup(): void } {
  const home = mkdtempSync(join(tmpdir(), 'ferry-edge-test-'));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export interface TestEdge {
  home: string;
  edge: Edge;
  client: EdgeClient;
  /** Put in every command line of this edge's instances: find their processes with processesWith(marker). */
  marker: string;
  app(version: string, env?: Record<string, string>, more?: Partial<InstanceSpec>): InstanceSpec;
  close(): Promise<void>;
}

export async function testEdge(): Promise<TestEdge> {
  const { home, cleanup } = tempHome();
  const edge = await startEdge({ home, adminPort: 0, log: () => {} });
  const client = EdgeClient.fromHome(home);
  const marker = `ferry-edge-test-${randomUUID()}`;
  return {
    home,
    edge,
    client,
    marker,
    app: (version, env = {}, more = {}) => appSpec(home, marker, version, env, more),
    async close() {
      await edge.stop();
      cleanup();
    },
  };
}

/** The sample app as an instance: probes every 25 ms, its log in the home folder. */
export function appSpec(home: string, marker: string, version: string, env: Record<string, string> = {}, more: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    // The marker is an argument the app ignores: it makes the process findable in /proc.
    command: `exec ${process.execPath} ${SAMPLE_APP} ${marker}`,
    cwd: home,
    env: { VERSION: version, ...env },
    port: 0,
    readiness: { path: '/healthz', intervalMs: 25, timeoutMs: 1000, failureThreshold: 1 },
    liveness: null,
    logFile: join(home, 'logs', `${version}.log`),
    restartBackoffMs: { initial: 50, max: 400 },
    labels: { version },
    ...more,
  };
}

export function route(stable: { version: string; instances?: string[]; urls?: string[] }, canary?: { version: string; instances?: string[]; urls?: string[]; weight: number }, sticky = false): RouteSpec {
  const ups = (t: { instances?: string[]; urls?: string[] }) => [...(t.instances ?? []).map((instance) => ({ instance })), ...(t.urls ?? []).map((url) => ({ url }))];
  return {
    host: '127.0.0.1',
    port: 0,
    stable: { version: stable.version, upstreams: ups(stable) },
    ...(canary ? { canary: { version: canary.version, weight: canary.weight, upstreams: ups(canary) } } : {}),
    sticky,
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

/** One request over a shared keep-alive agent. */
export function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `n` GETs, `parallel` at a time. */
export async function requests(url: string, n: number, parallel = 16, headers?: Record<string, string>): Promise<Answer[]> {
  const out: Answer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        out.push(await request(url, { headers }));
      }
    }),
  );
  return out;
}

/** An upstream in this process answering `version` (or what `handler` does). */
export async function upstream(version: string, handler?: http.RequestListener): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const server = http.createServer(
    handler ??
      ((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain', 'x-app-version': version });
          res.end(`hello from ${version}\n`);
        });
      }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export function count<T>(xs: T[], key: (x: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) {
    const k = key(x) ?? 'none';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** A port nothing listens on (bound, read and closed: refused until someone takes it). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
