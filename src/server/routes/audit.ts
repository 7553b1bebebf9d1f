// The audit log of changes to environments: listed for developers, verified (the whole hash
// chain recomputed) for admins.
import type { FastifyInstance } from 'fastify';
import { listAudit, verifyAudit } from '../../store/audit.js';
import type { ServerContext } from '../context.js';

export function auditRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Querystring: { environment?: string; project?: number; limit?: number; before?: number } }>(
    '/api/audit',
    {
      config: { access: 'developer' },
      schema: {
        summary: 'Audit log entries, newest first',
        tags: ['audit'],
        querystring: { type: 'object', additionalProperties: false, properties: { environment: { type: 'string' }, project: { type: 'integer' }, limit: { type: 'integer', minimum: 1, maximum: 1000 }, before: { type: 'integer' } } },
      },
    },
    async (req) => listAudit(ctx.db, { environment: req.query.environment, projectId: req.query.project, limit: req.query.limit ?? 100, beforeSeq: req.query.before }),
  );

  app.get('/api/audit/verify', { config: { access: 'admin' }, schema: { summary: 'Recompute the hash chain; names the first entry that does not match', tags: ['audit'] } }, async () => verifyAudit(ctx.db));
}
