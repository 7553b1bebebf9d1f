// The edge's admin API over node:http (a dozen routes do not need a framework, and the edge
// process stays small: its memory is paid again at every fork of an application instance).
// 127.0.0.1 only; `Authorization: Bearer <token>` on everything but /healthz and /metrics.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Edge } from './edge.js';
import { ConflictError, NotFoundError } from './errors.js';
import { INSTANCE_ID, ROUTE_NAME, ValidationError, validateInstanceSpec, validateRouteSpec } from './validate.js';

const MAX_BODY = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, `the body is larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return reject(new HttpError(400, 'a JSON body is required'));
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new HttpError(400, `the body is not valid JSON: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

/** Constant-time comparison of the bearer token (hashing first makes the lengths equal). */
function authorized(header: string | undefined, digest: Buffer): boolean {
  if (!header || !header.startsWith('Bearer ')) return false;
  const given = createHash('sha256').update(header.slice(7).trim()).digest();
  return timingSafeEqual(given, digest);
}

function allow(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) throw new HttpError(405, `${method} is not allowed here (allowed: ${allowed.join(', ')})`, { allow: allowed.join(', ') });
}

function graceOf(q: URLSearchParams): number {
  const g = q.get('graceMs');
  if (g === null) return 10_000;
  const n = Number(g);
  if (!/^\d+$/.test(g) || n > 600_000) throw new HttpError(400, `graceMs must be an integer from 0 to 600000 (got ${JSON.stringify(g)})`);
  return n;
}

/** ?label=key=value (repeatable): instances whose labels have all of them. */
function labelsOf(q: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of q.getAll('label')) {
    const i = l.indexOf('=');
    if (i <= 0) throw new HttpError(400, `label must be KEY=VALUE (got ${JSON.stringify(l)})`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

export function createAdminServer(edge: Edge): http.Server {
  const digest = createHash('sha256').update(edge.token).digest();

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://edge');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);

    if (url.pathname === '/healthz') {
      allow(method, ['GET']);
      return send(res, 200, { ok: true, pid: process.pid, startedAt: edge.startedAt, instances: edge.supervisor.list().length, routes: edge.routes.size });
    }
    if (url.pathname === '/metrics') {
      allow(method, ['GET']);
      const text = edge.prometheus();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      return void res.end(text);
    }
    if (!authorized(req.headers.authorization, digest)) {
      throw new HttpError(401, 'missing or wrong bearer token (see FERRY_HOME/edge/token)', { 'www-authenticate': 'Bearer realm="ferry-edge"' });
    }

    if (parts[0] === 'instances' && parts.length <= 2) {
      if (parts.length === 1) {
        allow(method, ['GET']);
        return send(res, 200, edge.listInstances(labelsOf(url.searchParams)));
      }
      const id = parts[1];
      if (!INSTANCE_ID.test(id)) throw new HttpError(400, `instance id ${JSON.stringify(id)} must match ${INSTANCE_ID.source}`);
      allow(method, ['GET', 'PUT', 'DELETE']);
      if (method === 'GET') return send(res, 200, edge.getInstance(id));
      if (method === 'DELETE') return send(res, 200, await edge.deleteInstance(id, graceOf(url.searchParams)));
      const spec = validateInstanceSpec(await readJson(req));
      const { status, created } = await edge.putInstance(id, spec);
      return send(res, created ? 201 : 200, status);
    }

    if (parts[0] === 'routes' && parts.length <= 3) {
      if (parts.length === 1) {
        allow(method, ['GET']);
        return send(res, 200, edge.listRoutes());
      }
      const name = parts[1];
      if (!ROUTE_NAME.test(name)) throw new HttpError(400, `route name ${JSON.stringify(name)} must match ${ROUTE_NAME.source}`);
      if (parts.length === 3) {
        if (parts[2] !== 'metrics') throw new HttpError(404, `no such path ${url.pathname}`);
        allow(method, ['GET']);
        return send(res, 200, edge.routeMetrics(name));
      }
      allow(method, ['GET', 'PUT', 'DELETE']);
      if (method === 'GET') return send(res, 200, edge.getRoute(name));
      if (method === 'DELETE') return send(res, 200, await edge.deleteRoute(name));
      const spec = validateRouteSpec(await readJson(req), (id) => edge.supervisor.get(id) !== undefined);
      const { status, created } = await edge.putRoute(name, spec);
      return send(res, created ? 201 : 200, status);
    }

    throw new HttpError(404, `no such path ${url.pathname} (see src/edge/api.ts)`);
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) return send(res, err.status, { error: err.message }, err.headers);
      if (err instanceof ValidationError) return send(res, 400, { error: err.message, problems: err.problems });
      if (err instanceof NotFoundError) return send(res, 404, { error: err.message });
      if (err instanceof ConflictError) return send(res, 409, { error: err.message });
      process.stderr.write(`ferry edge: ${req.method} ${req.url}: ${(err as Error).stack ?? err}\n`);
      send(res, 500, { error: `internal error: ${(err as Error).message}` });
    });
  });
  return server;
}
