// Where the post-receive hook of a local project reports pushes (src/server/local-hook.ts).
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../../config/types.js';
import type { ServerContext } from '../context.js';
import { hookTokenMatches, parseRefUpdates } from '../local-hook.js';
import { startPipeline } from '../trigger.js';
import { projectById } from './projects.js';

export function localHookRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.register(async (scope) => {
    scope.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));
    scope.post<{ Params: { project: number }; Body: string }>(
      '/api/hooks/local/:project',
      {
        config: { access: 'webhook' },
        schema: { summary: "A local repository's post-receive hook reports a push (its hook token in X-Ferry-Hook-Token)", tags: ['webhooks'], params: { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } },
      },
      async (req, reply) => {
        const project = await projectById(ctx, req.params.project);
        const hash = project?.settings?.localHookHash;
        const token = req.headers['x-ferry-hook-token'];
        if (!project || !hash || typeof token !== 'string' || !hookTokenMatches(token, hash)) {
          return reply.code(404).send({ error: 'not_found', message: 'no hook is set up here' });
        }
        const started: { ref: string; pipelineId: string; number: number }[] = [];
        for (const u of parseRefUpdates(typeof req.body === 'string' ? req.body : '')) {
          if (/^0+$/.test(u.after)) continue; // a deleted ref starts nothing
          const name = u.ref.replace(/^refs\/(heads|tags)\//, '');
          const isTag = u.ref.startsWith('refs/tags/');
          try {
            const p = await startPipeline(ctx, project, { rev: u.after, source: 'push', trusted: true, branch: isTag ? null : name, tag: isTag ? name : null });
            started.push({ ref: u.ref, ...p });
          } catch (err) {
            if (!(err instanceof ConfigError)) throw err;
            req.log.warn({ ref: u.ref, issues: err.issues.length }, 'push to a ref whose ferry.yml is invalid');
          }
        }
        return reply.code(started.length ? 202 : 200).send({ started });
      },
    );
  });
}
