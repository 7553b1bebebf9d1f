// Webhooks from GitHub, GitLab and Gitea/Forgejo: verified against the project's webhook secret
// (in constant time), refused when oversized, ignored when replayed (delivery ids are kept in
// the store, so every replica knows them), and turned into pipelines. Merge requests from forks
// run without secrets.
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../../config/types.js';
import { decryptSecret, encryptSecret } from '../../secrets/crypto.js';
import type { Db } from '../../store/db.js';
import type { ServerContext } from '../context.js';
import { countWebhook } from '../metrics.js';
import { startPipeline } from '../trigger.js';
import { MAX_WEBHOOK_BYTES, receiveWebhook } from '../webhooks/index.js';
import type { ReplayGuard } from '../webhooks/replay.js';
import type { Trigger } from '../webhooks/types.js';
import { projectById } from './projects.js';

const FORGES = ['github', 'gitlab', 'gitea'] as const;
type Forge = (typeof FORGES)[number];

/** Delivery ids recorded in the store: a replay is caught by whichever replica receives it. */
function storeReplayGuard(db: Db): ReplayGuard {
  return {
    async check(id) {
      const [forge, ...rest] = id.split(':');
      const rows = await db.query('INSERT INTO webhook_deliveries (forge, delivery_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1', [forge, rest.join(':')]);
      return rows.length ? 'new' : 'replayed';
    },
  };
}

const aad = (projectId: number) => `webhook/${projectId}`;

export function webhookRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Params: { project: number } }>(
    '/api/projects/:project/webhook',
    {
      config: { access: 'admin' },
      schema: { summary: "Create (or replace) the project's webhook secret; answers it once with the URL for each forge", tags: ['webhooks'], params: { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } },
    },
    async (req, reply) => {
      if (!ctx.masterKey) return reply.code(503).send({ error: 'unavailable', message: 'no master key: webhook secrets cannot be stored' });
      const project = await projectById(ctx, req.params.project);
      if (!project) return reply.code(404).send({ error: 'not_found', message: `no project ${req.params.project}` });
      const secret = randomBytes(32).toString('hex');
      await ctx.db.query('UPDATE projects SET webhook_secret = $2 WHERE id = $1', [project.id, encryptSecret(ctx.masterKey, secret, aad(project.id))]);
      const base = `${req.protocol}://${req.headers.host}`;
      return { secret, urls: Object.fromEntries(FORGES.map((f) => [f, `${base}/api/hooks/${f}/${project.id}`])) };
    },
  );

  // The raw bytes are what the forge signed: this route keeps them instead of parsing JSON.
  app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_WEBHOOK_BYTES }, (_req, body, done) => done(null, body));
    scope.post<{ Params: { forge: Forge; project: number }; Body: Buffer }>(
      '/api/hooks/:forge/:project',
      {
        config: { access: 'webhook' },
        bodyLimit: MAX_WEBHOOK_BYTES,
        schema: {
          summary: 'Receive a push, tag or merge request webhook (signed with the project webhook secret)',
          tags: ['webhooks'],
          params: { type: 'object', required: ['forge', 'project'], properties: { forge: { type: 'string', enum: [...FORGES] }, project: { type: 'integer' } } },
        },
      },
      async (req, reply) => {
        const { forge } = req.params;
        const project = await projectById(ctx, req.params.project);
        const [row] = project ? await ctx.db.query<{ webhook_secret: string | null }>('SELECT webhook_secret FROM projects WHERE id = $1', [project.id]) : [];
        // One answer for "no such project" and "no webhook set up": nothing to learn by probing.
        if (!project || !row?.webhook_secret || !ctx.masterKey) {
          countWebhook(ctx, forge, 'rejected');
          return reply.code(404).send({ error: 'not_found', message: 'no webhook is set up here' });
        }
        if (!Buffer.isBuffer(req.body)) {
          countWebhook(ctx, forge, 'rejected');
          return reply.code(415).send({ error: 'unsupported_media_type', message: 'send the webhook as application/json' });
        }
        const secret = decryptSecret(ctx.masterKey, row.webhook_secret, aad(project.id));
        const got = await receiveWebhook({ headers: req.headers, rawBody: req.body }, { forge, secret, replay: storeReplayGuard(ctx.db) });
        if ('reason' in got) {
          countWebhook(ctx, forge, got.status === 401 ? 'bad_signature' : 'rejected');
          return reply.code(got.status).send({ error: 'rejected', message: got.reason });
        }
        if (got.status === 200) {
          countWebhook(ctx, forge, 'ignored');
          return reply.code(200).send({ ignored: got.ignored });
        }
        const t: Trigger = got.trigger;
        try {
          const started = await startPipeline(ctx, project, {
            rev: t.sha,
            source: t.source,
            branch: t.branch,
            tag: t.tag,
            trusted: t.trusted,
            variables: t.mergeRequest
              ? { FERRY_MERGE_REQUEST_IID: String(t.mergeRequest.number), CI_MERGE_REQUEST_IID: String(t.mergeRequest.number), CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: t.mergeRequest.sourceBranch, CI_MERGE_REQUEST_TARGET_BRANCH_NAME: t.mergeRequest.targetBranch }
              : undefined,
          });
          countWebhook(ctx, forge, 'accepted');
          return reply.code(202).send(started);
        } catch (err) {
          countWebhook(ctx, forge, 'error');
          if (err instanceof ConfigError) return reply.code(422).send({ error: 'invalid_config', issues: err.issues });
          throw err;
        }
      },
    );
  });
}
