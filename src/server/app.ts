// The HTTP API of `ferry server`: JSON over HTTP, an OpenAPI document at /api/openapi.json, every
// route behind the access hook (src/server/access.ts).
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { version } from '../cli/version.js';
import { installAccess, type RouteAccess } from './access.js';
import type { ServerContext } from './context.js';
import { metaRoutes } from './routes/meta.js';
import { projectRoutes } from './routes/projects.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { logRoutes } from './routes/logs.js';
import { accessRoutes } from './routes/access.js';
import { runnerRoutes } from './routes/runner.js';
import { secretRoutes } from './routes/secrets.js';
import { metricsRoutes } from './routes/metrics.js';
import { webhookRoutes } from './routes/webhooks.js';
import { localHookRoutes } from './routes/local-hooks.js';
import { releaseRoutes } from './routes/releases.js';
import { auditRoutes } from './routes/audit.js';
import { scheduleRoutes } from './routes/schedules.js';

export interface AppOptions {
  /** Log requests (pino, through fastify); off in tests. Tokens never appear in what is logged. */
  logger?: boolean;
}

export async function buildApp(ctx: ServerContext, opts: AppOptions = {}): Promise<{ app: FastifyInstance; routes: RouteAccess[] }> {
  const app = Fastify({
    logger: opts.logger
      ? { level: 'info', redact: { paths: ['req.headers.authorization', 'req.headers["x-gitlab-token"]'], censor: '[redacted]' } }
      : false,
    // Artifacts and caches are streamed, not parsed; JSON bodies stay small.
    bodyLimit: 8 * 1024 * 1024,
    forceCloseConnections: true,
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Ferry API', version: version(), description: 'Pipelines, jobs, runners. Send `Authorization: Bearer <token>`.' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer' } } },
      security: [{ token: [] }],
    },
  });
  const routes = installAccess(app, ctx.db);
  metaRoutes(app);
  projectRoutes(app, ctx);
  pipelineRoutes(app, ctx);
  logRoutes(app, ctx);
  accessRoutes(app, ctx);
  runnerRoutes(app, ctx);
  secretRoutes(app, ctx);
  metricsRoutes(app, ctx);
  webhookRoutes(app, ctx);
  localHookRoutes(app, ctx);
  releaseRoutes(app, ctx);
  auditRoutes(app, ctx);
  scheduleRoutes(app, ctx);
  await app.ready();
  return { app, routes };
}
