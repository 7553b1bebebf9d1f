// Projects: the repositories the server builds.
import type { FastifyInstance } from 'fastify';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import type { ServerContext } from '../context.js';
import { findProject, getProject, isRemote, listProjects, projectName, type Project } from '../../store/pipelines.js';
import { projectRepo } from '../trigger.js';
import { hashHookToken, installLocalHook } from '../local-hook.js';

export function projectById(ctx: ServerContext, id: number): Promise<Project | null> {
  return getProject(ctx.db, id);
}

export function projectRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/projects', { config: { access: 'viewer' }, schema: { summary: 'List projects', tags: ['projects'] } }, async () => listProjects(ctx.db));

  app.post<{ Body: { path: string } }>(
    '/api/projects',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Add a project: a local repository path or a remote repository URL',
        tags: ['projects'],
        body: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: { type: 'string', minLength: 1, maxLength: 2048 } } },
      },
    },
    async (req, reply) => {
      const remote = isRemote(req.body.path);
      const path = remote ? req.body.path : resolve(req.body.path);
      if (!remote && !existsSync(path)) return reply.code(400).send({ error: 'bad_request', message: `no such folder on the server: ${path}` });
      const existing = await findProject(ctx.db, path);
      if (existing) return reply.code(200).send(existing);
      await ctx.db.query('INSERT INTO projects (path, name) VALUES ($1, $2) ON CONFLICT (path) DO NOTHING', [path, projectName(path)]);
      const project = (await findProject(ctx.db, path))!;
      try {
        await projectRepo(ctx, project); // a remote is mirrored now, so a bad URL is said at once
      } catch (err) {
        await ctx.db.query('DELETE FROM projects WHERE id = $1', [project.id]);
        return reply.code(400).send({ error: 'bad_request', message: `cannot read the repository: ${(err as Error).message}` });
      }
      // A repository on this machine: pushes to it start pipelines through a hook.
      let hook: { installed: boolean; reason?: string } = { installed: false, reason: remote ? 'remote repository: use webhooks' : 'the server URL is not known' };
      if (!remote && ctx.url) {
        const h = await installLocalHook(path, ctx.url, project.id);
        if (h.installed) await ctx.db.query(`UPDATE projects SET settings = settings || jsonb_build_object('localHookHash', $2::text) WHERE id = $1`, [project.id, hashHookToken(h.token)]);
        hook = h.installed ? { installed: true } : h;
      }
      return reply.code(201).send({ ...project, hook });
    },
  );
}
