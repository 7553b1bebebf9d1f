// Health, version and the OpenAPI document: public, so load balancers and tools can use them.
import type { FastifyInstance } from 'fastify';
import { version } from '../../cli/version.js';

export function metaRoutes(app: FastifyInstance): void {
  app.get('/api/health', { config: { access: 'public' }, schema: { summary: 'Liveness: answers while the server runs', tags: ['meta'] } }, async () => ({ status: 'ok', version: version() }));
  app.get('/api/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());
}
