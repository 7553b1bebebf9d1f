// People, their tokens, and runners' registration.
import type { FastifyInstance } from 'fastify';
import { createUserToken, listRunners, registerRunner, ROLES, type Role } from '../../store/access.js';
import type { ServerContext } from '../context.js';

export function accessRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/users', { config: { access: 'admin' }, schema: { summary: 'List users and their roles', tags: ['access'] } }, async () =>
    ctx.db.query('SELECT id, name, role, email, created_at AS "createdAt" FROM users ORDER BY id'),
  );

  app.post<{ Body: { name: string; role: Role; email?: string } }>(
    '/api/users',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a user (or change its role) and issue it a new API token, shown once',
        tags: ['access'],
        body: { type: 'object', required: ['name', 'role'], additionalProperties: false, properties: { name: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,64}$' }, role: { type: 'string', enum: [...ROLES] }, email: { type: 'string', maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+$' } } },
      },
    },
    async (req, reply) => {
      const { userId, token } = await createUserToken(ctx.db, req.body.name, req.body.role, 'default', req.body.email);
      return reply.code(201).send({ userId, name: req.body.name, role: req.body.role, email: req.body.email ?? null, token });
    },
  );

  app.get('/api/runners', { config: { access: 'viewer' }, schema: { summary: 'Runners and when each was last seen', tags: ['runners'] } }, async () => listRunners(ctx.db));

  app.post<{ Body: { name: string; tags?: string[] } }>(
    '/api/runners',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Register a runner; its token is shown once',
        tags: ['runners'],
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' }, tags: { type: 'array', maxItems: 50, items: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } } } },
      },
    },
    async (req, reply) => {
      const { id, token } = await registerRunner(ctx.db, req.body.name, req.body.tags ?? []);
      return reply.code(201).send({ id, name: req.body.name, tags: req.body.tags ?? [], token });
    },
  );
}
