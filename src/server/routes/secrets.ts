// Project secrets: written by admins, listed (names and dates only) by developers, never read
// back. Values reach jobs only through the runner protocol's lease (routes/runner.ts).
import type { FastifyInstance } from 'fastify';
import { SecretError } from '../../secrets/crypto.js';
import { deleteSecret, EVERY_JOB, listSecrets, setSecret, validateEnvironment } from '../../store/secrets.js';
import type { ServerContext } from '../context.js';
import { projectById } from './projects.js';
import { appendAudit } from '../../store/audit.js';

const projectParam = { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } as const;
const nameParams = { type: 'object', required: ['project', 'name'], properties: { project: { type: 'integer' }, name: { type: 'string', maxLength: 256 } } } as const;
const environment = { type: 'string', maxLength: 64, description: "A deploy environment: only deploy jobs to it get the secret. Omitted or '': every job." } as const;

function badRequest(err: unknown): { error: string; message: string } | null {
  return err instanceof SecretError ? { error: 'bad_request', message: err.message } : null;
}

export function secretRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { project: number } }>(
    '/api/projects/:project/secrets',
    {
      config: { access: 'developer' },
      schema: { summary: "A project's secrets: names, environments and who changed them when; never their values", tags: ['secrets'], params: projectParam },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      return listSecrets(ctx.db, project.id);
    },
  );

  app.put<{ Params: { project: number; name: string }; Body: { value: string; environment?: string } }>(
    '/api/projects/:project/secrets/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create or replace a secret (sealed with the master key; the value is never returned)',
        tags: ['secrets'],
        params: nameParams,
        body: { type: 'object', required: ['value'], additionalProperties: false, properties: { value: { type: 'string' }, environment } },
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      if (!ctx.masterKey) return reply.code(503).send({ error: 'unavailable', message: 'this server has no master key: secrets cannot be stored' });
      const env = req.body.environment ?? EVERY_JOB;
      try {
        const r = await setSecret(ctx.db, ctx.masterKey, { projectId: project.id, environment: env, name: req.params.name, value: req.body.value, updatedBy: req.principal?.name });
        // The name and scope only: the value never reaches the audit log.
        await appendAudit(ctx.db, { actor: req.principal!.name, action: 'secret.set', projectId: project.id, environment: env || null, subject: req.params.name, detail: { created: r.created } });
        return reply.code(r.created ? 201 : 200).send({ name: req.params.name, environment: env, created: r.created, updatedAt: r.updatedAt });
      } catch (err) {
        const bad = badRequest(err);
        if (bad) return reply.code(400).send(bad);
        throw err;
      }
    },
  );

  app.delete<{ Params: { project: number; name: string }; Querystring: { environment?: string } }>(
    '/api/projects/:project/secrets/:name',
    {
      config: { access: 'admin' },
      schema: { summary: 'Delete a secret (of one environment; default: the one for every job)', tags: ['secrets'], params: nameParams, querystring: { type: 'object', properties: { environment } } },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      const env = req.query.environment ?? EVERY_JOB;
      try {
        validateEnvironment(env);
      } catch (err) {
        return reply.code(400).send(badRequest(err));
      }
      if (!(await deleteSecret(ctx.db, project.id, req.params.name, env))) {
        return reply.code(404).send({ error: 'not_found', message: `project ${project.id} has no secret ${req.params.name}${env ? ` for ${env}` : ''}` });
      }
      await appendAudit(ctx.db, { actor: req.principal!.name, action: 'secret.deleted', projectId: project.id, environment: env || null, subject: req.params.name });
      return { deleted: true };
    },
  );
}
