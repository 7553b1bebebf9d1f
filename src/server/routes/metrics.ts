// GET /metrics: Prometheus text exposition of this server's registry (src/server/metrics.ts).
// Public by default, so a Prometheus scraper needs no token; FERRY_METRICS_AUTH=1 (or the
// `auth` option) makes it need an API token of the viewer role or above, which Prometheus sends
// with `authorization: { credentials: <token> }` in its scrape config.
import type { FastifyInstance } from 'fastify';
import { createMetrics, metricsAccess, type MetricsOptions } from '../metrics.js';
import type { ServerContext } from '../context.js';

export function metricsRoutes(app: FastifyInstance, ctx: ServerContext, opts: MetricsOptions = {}): void {
  const metrics = createMetrics(ctx);
  // The server's close() closes the app, which stops the metrics listening to the bus.
  app.addHook('onClose', async () => metrics.close());
  app.get(
    '/metrics',
    {
      config: { access: metricsAccess(opts) },
      schema: { summary: 'Metrics in the Prometheus text format: pipelines, jobs, queue, runners, logs, webhooks, process', tags: ['meta'] },
    },
    async (_req, reply) => {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}
