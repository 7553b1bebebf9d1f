// Pipelines: list, show, start by hand (with variables), cancel; jobs: play.
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../../config/types.js';
import { NoPipelineError, PlanError } from '../../pipeline/plan.js';
import { getPipeline, listPipelines } from '../../store/pipelines.js';
import { cancelPipeline, play } from '../../store/queue.js';
import { publish, type ServerContext } from '../context.js';
import { startPipeline } from '../trigger.js';
import { projectById } from './projects.js';

const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;
const projectParam = { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } as const;
/** Variables a pipeline is started with (by hand, or by a schedule). */
export const variablesSchema = { type: 'object', maxProperties: 200, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, additionalProperties: { type: 'string', maxLength: 65536 } } as const;

export function pipelineRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { project: number }; Querystring: { limit?: number; branch?: string; before?: number } }>(
    '/api/projects/:project/pipelines',
    {
      config: { access: 'viewer' },
      schema: {
        summary: "A project's pipelines, newest first (`before=N`: numbered below N, for paging back or finding one by number)",
        tags: ['pipelines'],
        params: projectParam,
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 200 }, branch: { type: 'string' }, before: { type: 'integer', minimum: 1 } } },
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      return listPipelines(ctx.db, { project: project.path, limit: req.query.limit, branch: req.query.branch, beforeNumber: req.query.before });
    },
  );

  app.post<{ Params: { project: number }; Body: { ref?: string; variables?: Record<string, string> } }>(
    '/api/projects/:project/pipelines',
    {
      config: { access: 'developer' },
      schema: {
        summary: 'Start a pipeline by hand, optionally with variables',
        tags: ['pipelines'],
        params: projectParam,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ref: { type: 'string', maxLength: 255 },
            variables: variablesSchema,
          },
        },
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      try {
        const started = await startPipeline(ctx, project, { rev: req.body?.ref, source: 'api', variables: req.body?.variables, trusted: true, triggeredBy: req.principal?.name });
        return reply.code(201).send(started);
      } catch (err) {
        if (err instanceof ConfigError) return reply.code(422).send({ error: 'invalid_config', issues: err.issues });
        // Workflow rules that make no pipeline for this trigger, or a plan that cannot be made.
        if (err instanceof NoPipelineError || err instanceof PlanError) return reply.code(422).send({ error: 'no_pipeline', message: err.message });
        throw err;
      }
    },
  );

  app.get<{ Params: { id: string } }>('/api/pipelines/:id', { config: { access: 'viewer' }, schema: { summary: 'A pipeline with its jobs', tags: ['pipelines'], params: idParam } }, async (req, reply) => {
    const p = await getPipeline(ctx.db, { id: req.params.id });
    return p ?? reply.code(404).send({ error: 'not_found', message: `no pipeline ${req.params.id}` });
  });

  app.post<{ Params: { id: string } }>('/api/pipelines/:id/cancel', { config: { access: 'developer' }, schema: { summary: 'Cancel a pipeline: waiting jobs at once, running ones within a second', tags: ['pipelines'], params: idParam } }, async (req, reply) => {
    if (!(await getPipeline(ctx.db, { id: req.params.id }))) return reply.code(404).send({ error: 'not_found', message: `no pipeline ${req.params.id}` });
    publish(ctx, await cancelPipeline(ctx.db, req.params.id));
    return { canceled: true };
  });

  app.post<{ Params: { id: string } }>('/api/jobs/:id/play', { config: { access: 'developer' }, schema: { summary: 'Play a manual job', tags: ['pipelines'], params: idParam } }, async (req, reply) => {
    const { played, events } = await play(ctx.db, req.params.id);
    if (!played) return reply.code(409).send({ error: 'conflict', message: 'no manual job waiting with that id' });
    publish(ctx, events);
    return { played: true };
  });
}
