// Pipeline schedules of a project (like GitLab's): a cron, its time zone, the branch to run and
// variables. Made, edited, paused, run now and deleted by developers (who can start the same
// pipelines by hand), listed by viewers. The loop that fires them is src/server/schedules.ts.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ConfigError } from '../../config/types.js';
import { git } from '../../pipeline/git.js';
import { NoPipelineError, PlanError } from '../../pipeline/plan.js';
import type { Project } from '../../store/pipelines.js';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, updateSchedule, type SchedulePatch } from '../../store/schedules.js';
import type { ServerContext } from '../context.js';
import { checkSchedule, ScheduleError } from '../schedules.js';
import { projectRepo, startPipeline } from '../trigger.js';
import { variablesSchema } from './pipelines.js';
import { projectById } from './projects.js';

const projectParam = { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } as const;
const scheduleParams = { type: 'object', required: ['project', 'id'], properties: { project: { type: 'integer' }, id: { type: 'integer' } } } as const;
// Never an option to git: no leading '-', nothing git refuses in a ref name.
const branchSchema = { type: 'string', maxLength: 255, pattern: '^(?!-)[^\\s~^:?*\\[\\\\]+$' } as const;

/** Null when the project has `branch` (a branch or tag); else the 400 answer's message. */
async function missingBranch(ctx: ServerContext, project: Project, branch: string): Promise<string | null> {
  const repo = await projectRepo(ctx, project);
  const found = await git(repo, ['rev-parse', '--verify', '--quiet', `${branch}^{commit}`]).then(() => true, () => false);
  return found ? null : `no branch or tag \`${branch}\` in ${project.name}`;
}

/** checkSchedule, its ScheduleError as a 400 answer (sent; then null). */
function checked(reply: FastifyReply, cron: string, timezone?: string): ReturnType<typeof checkSchedule> | null {
  try {
    return checkSchedule(cron, timezone);
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    void reply.code(400).send({ error: 'bad_request', message: err.message });
    return null;
  }
}

interface ScheduleEditBody {
  cron?: string;
  timezone?: string;
  branch?: string | null;
  variables?: Record<string, string>;
  description?: string;
  active?: boolean;
}

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
            branch: { ...branchSchema, description: "branch or tag to run (default: the repository's HEAD)" },
            variables: variablesSchema,
            description: { type: 'string', maxLength: 500 },
          },
        },
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      const when = checked(reply, req.body.cron, req.body.timezone);
      if (!when) return reply;
      const branch = req.body.branch ?? null;
      // A misspelt branch is said now, not by every run failing later.
      const missing = branch === null ? null : await missingBranch(ctx, project, branch);
      if (missing) return reply.code(400).send({ error: 'bad_request', message: missing });
      const schedule = await createSchedule(ctx.db, {
        projectId: project.id,
        cron: req.body.cron.trim(),
        timezone: when.timezone,
        branch,
        variables: req.body.variables ?? {},
        description: req.body.description ?? '',
        createdBy: req.principal!.name,
        nextRunAt: when.nextRunAt,
      });
      return reply.code(201).send(schedule);
    },
  );

  app.patch<{ Params: { project: number; id: number }; Body: ScheduleEditBody }>(
    '/api/projects/:project/schedules/:id',
    {
      config: { access: 'developer' },
      schema: {
        summary: 'Edit a schedule (only what the body names changes), pause it (active: false) or resume it',
        tags: ['schedules'],
        params: scheduleParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            cron: { type: 'string', minLength: 1, maxLength: 200 },
            timezone: { type: 'string', maxLength: 64 },
            branch: { anyOf: [branchSchema, { type: 'null' }], description: "null: the repository's HEAD" },
            variables: { ...variablesSchema, description: 'replaces all of its variables' },
            description: { type: 'string', maxLength: 500 },
            active: { type: 'boolean', description: 'false pauses it; true resumes it from its next time after now' },
          },
        },
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      const old = project ? await getSchedule(ctx.db, project.id, req.params.id) : null;
      if (!project || !old) return reply.code(404).send({ error: 'not_found', message: `project ${req.params.project} has no schedule ${req.params.id}` });
      const b = req.body;
      // Fastify drops properties the schema does not know: a misspelt one leaves nothing to do.
      if (Object.values(b).every((v) => v === undefined)) {
        return reply.code(400).send({ error: 'bad_request', message: 'nothing to change: give any of cron, timezone, branch, variables, description, active' });
      }
      const patch: SchedulePatch = { variables: b.variables, description: b.description, active: b.active };
      // A new cron or zone, or a resume, moves the next run to the next match after now: a
      // paused schedule does not make up for the runs it missed.
      if (b.cron !== undefined || b.timezone !== undefined || (b.active === true && !old.active)) {
        const when = checked(reply, b.cron ?? old.cron, b.timezone ?? old.timezone);
        if (!when) return reply;
        Object.assign(patch, { cron: (b.cron ?? old.cron).trim(), timezone: when.timezone, nextRunAt: when.nextRunAt });
      }
      if (b.branch !== undefined) {
        const missing = b.branch === null ? null : await missingBranch(ctx, project, b.branch);
        if (missing) return reply.code(400).send({ error: 'bad_request', message: missing });
        patch.branch = b.branch;
      }
      const updated = await updateSchedule(ctx.db, project.id, old.id, patch);
      if (!updated) return reply.code(404).send({ error: 'not_found', message: `project ${req.params.project} has no schedule ${req.params.id}` });
      return updated;
    },
  );

  app.post<{ Params: { project: number; id: number } }>(
    '/api/projects/:project/schedules/:id/run',
    {
      config: { access: 'developer' },
      schema: {
        summary: "Run a schedule's pipeline now, as its next run would (its branch, variables, source `schedule`); its times do not move",
        tags: ['schedules'],
        params: scheduleParams,
      },
    },
    async (req, reply) => {
      const project = await projectById(ctx, req.params.project);
      const s = project ? await getSchedule(ctx.db, project.id, req.params.id) : null;
      if (!project || !s) return reply.code(404).send({ error: 'not_found', message: `project ${req.params.project} has no schedule ${req.params.id}` });
      try {
        // Started by the person who asked (a release it makes is theirs), unlike the slots the
        // server fires in the schedule owner's name.
        const started = await startPipeline(ctx, project, { rev: s.branch ?? undefined, source: 'schedule', variables: s.variables, trusted: true, triggeredBy: req.principal?.name, scheduledAt: new Date() });
        return reply.code(201).send(started);
      } catch (err) {
        if (err instanceof ConfigError) return reply.code(422).send({ error: 'invalid_config', issues: err.issues });
        if (err instanceof NoPipelineError || err instanceof PlanError) return reply.code(422).send({ error: 'no_pipeline', message: err.message });
        throw err;
      }
    },
  );

  app.delete<{ Params: { project: number; id: number } }>(
    '/api/projects/:project/schedules/:id',
    {
      config: { access: 'developer' },
      schema: { summary: 'Delete a schedule: it fires no more', tags: ['schedules'], params: scheduleParams },
    },
    async (req, reply) => {
      if (!(await deleteSchedule(ctx.db, req.params.project, req.params.id))) {
        return reply.code(404).send({ error: 'not_found', message: `project ${req.params.project} has no schedule ${req.params.id}` });
      }
      return { deleted: true };
    },
  );
}
