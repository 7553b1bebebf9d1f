// Pipeline schedules of a project (like GitLab's): a cron, its time zone, the branch to run and
// variables. Made and deleted by developers (who can start the same pipelines by hand), listed
// by viewers. The loop that fires them is src/server/schedules.ts.
import type { FastifyInstance } from 'fastify';
import { git } from '../../pipeline/git.js';
import { createSchedule, deleteSchedule, listSchedules } from '../../store/schedules.js';
import type { ServerContext } from '../context.js';
import { checkSchedule, ScheduleError } from '../schedules.js';
import { projectRepo } from '../trigger.js';
import { variablesSchema } from './pipelines.js';
import { projectById } from './projects.js';

const projectParam = { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } as const;

interface NewScheduleBody {
  cron: string;
  timezone?: string;
  branch?: string;
  variables?: Record<string, string>;
  description?: string;
}

export function scheduleRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { project: number } }>(
    '/api/projects/:project/schedules',
    { config: { access: 'viewer' }, schema: { summary: "A project's pipeline schedules, with their next run and how the last one went", tags: ['schedules'], params: projectParam } },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      return listSchedules(ctx.db, project.id);
    },
  );

  app.post<{ Params: { project: number }; Body: NewScheduleBody }>(
    '/api/projects/:project/schedules',
    {
      config: { access: 'developer' },
      schema: {
        summary: 'Schedule pipelines of a branch by cron (source `schedule`)',
        tags: ['schedules'],
        params: projectParam,
        body: {
          type: 'object',
          required: ['cron'],
          additionalProperties: false,
          properties: {
            cron: { type: 'string', minLength: 1, maxLength: 200, description: '5 fields, or 6 with seconds first (croner syntax)' },
            timezone: { type: 'string', maxLength: 64, description: "IANA time zone (default: the server's)" },
            // Never an option to git: no leading '-', nothing git refuses in a ref name.
            branch: { type: 'string', maxLength: 255, pattern: '^(?!-)[^\\s~^:?*\\[\\\\]+$', description: "branch or tag to run (default: the repository's HEAD)" },
            variables: variablesSchema,
            description: { type: 'string', maxLength: 500 },
          },
        },
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      let checked: ReturnType<typeof checkSchedule>;
      try {
        checked = checkSchedule(req.body.cron, req.body.timezone);
      } catch (err) {
        if (err instanceof ScheduleError) return reply.code(400).send({ error: 'bad_request', message: err.message });
        throw err;
      }
      const branch = req.body.branch ?? null;
      // A misspelt branch is said now, not by every run failing later.
      if (branch !== null) {
        const repo = await projectRepo(ctx, project);
        const found = await git(repo, ['rev-parse', '--verify', '--quiet', `${branch}^{commit}`]).then(() => true, () => false);
        if (!found) return reply.code(400).send({ error: 'bad_request', message: `no branch or tag \`${branch}\` in ${project.name}` });
      }
      const schedule = await createSchedule(ctx.db, {
        projectId: project.id,
        cron: req.body.cron.trim(),
        timezone: checked.timezone,
        branch,
        variables: req.body.variables ?? {},
        description: req.body.description ?? '',
        createdBy: req.principal!.name,
        nextRunAt: checked.nextRunAt,
      });
      return reply.code(201).send(schedule);
    },
  );

  app.delete<{ Params: { project: number; id: number } }>(
    '/api/projects/:project/schedules/:id',
    {
      config: { access: 'developer' },
      schema: { summary: 'Delete a schedule: it fires no more', tags: ['schedules'], params: { type: 'object', required: ['project', 'id'], properties: { project: { type: 'integer' }, id: { type: 'integer' } } } },
    },
    async (req, reply) => {
      if (!(await deleteSchedule(ctx.db, req.params.project, req.params.id))) {
        return reply.code(404).send({ error: 'not_found', message: `project ${req.params.project} has no schedule ${req.params.id}` });
      }
      return { deleted: true };
    },
  );
}
