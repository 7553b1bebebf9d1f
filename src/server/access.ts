// Who may call what. Every route declares its access in its `config`: 'public' (health,
// metrics when so configured, OpenAPI), 'webhook' (public but verified by signature inside the
// route), 'runner' (a runner token), or the least role of a person's API token. One hook
// enforces it for every route, so a route without a declaration cannot be registered at all.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../store/db.js';
import { principalForToken, roleAtLeast, runnerForToken, type Principal, type Role, type RunnerRow } from '../store/access.js';

export type Access = 'public' | 'webhook' | 'runner' | Role;

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal?: Principal;
    runner?: RunnerRow;
  }
}

export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m ? m[1] : null;
}

function deny(reply: FastifyReply, status: 401 | 403, message: string): FastifyReply {
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(status).send({ error: status === 401 ? 'unauthorized' : 'forbidden', message });
}

/** Installs the access hook and returns the table of routes with their access, filled as routes register. */
export function installAccess(app: FastifyInstance, db: Db): RouteAccess[] {
  const table: RouteAccess[] = [];
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (!access) throw new Error(`route ${route.method} ${route.url} declares no access: add config.access`);
    for (const method of [route.method].flat()) if (method !== 'HEAD') table.push({ method, url: route.url, access });
  });
  app.addHook('onRequest', async (req, reply) => {
    const access = req.routeOptions.config?.access;
    if (access === undefined) return; // 404s: no route, nothing to protect
    if (access === 'public' || access === 'webhook') return;
    const token = bearer(req);
    if (!token) return deny(reply, 401, 'send an API token: Authorization: Bearer <token>');
    if (access === 'runner') {
      const runner = await runnerForToken(db, token);
      if (!runner) return deny(reply, 401, 'not a runner token (register one with `ferry runner register`)');
      req.runner = runner;
      return;
    }
    const principal = await principalForToken(db, token);
    if (!principal) return deny(reply, 401, 'unknown or revoked API token');
    if (!roleAtLeast(principal.role, access)) return deny(reply, 403, `this needs the ${access} role; ${principal.name} is ${principal.role}`);
    req.principal = principal;
  });
  return table;
}
