// Environments and releases: what serves each environment, the release under way and its
// measurements, and what people do to releases (promote, abort, roll back, approve). The
// controller (src/delivery/controller.ts) carries the requests out; these routes record them.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseDir } from '../../delivery/files.js';
import { SecretMasker } from '../../secrets/masker.js';
import { jobSecrets } from '../../store/secrets.js';
import { checkApproval } from '../../delivery/gates/approvals.js';
import { alertsForEnvironment, AlertmanagerPayloadError, parseAlertmanagerWebhook } from '../../delivery/alertmanager.js';
import { routeName } from '../../delivery/targets/names.js';
import { appendAudit } from '../../store/audit.js';
import {
  activeRelease,
  addApproval,
  createRelease,
  findRelease,
  getEnvironment,
  getRelease,
  listApprovals,
  listEnvironments,
  listMeasurements,
  listReleases,
  listTransitions,
  requestAbort,
  requestPromote,
  saveProgress,
  type Release,
} from '../../store/releases.js';
import type { ServerContext } from '../context.js';
import { projectById } from './projects.js';

const envParams = { type: 'object', required: ['project', 'env'], properties: { project: { type: 'integer' }, env: { type: 'string', maxLength: 64 } } } as const;
const releaseParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;
const reasonBody = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 2000 } } } as const;

/** Where users reach an environment: its edge router, or the URL given for a router of its own (HAProxy). */
function envUrl(routerPort: number | null, release: Release | null): string | null {
  const router = release?.config.router;
  if (router?.provider === 'haproxy') return router.url ?? null;
  return routerPort ? `http://${router?.host ?? '127.0.0.1'}:${routerPort}` : null;
}

function notFound(reply: FastifyReply, message: string) {
  return reply.code(404).send({ error: 'not_found', message });
}

function conflict(reply: FastifyReply, message: string) {
  return reply.code(409).send({ error: 'conflict', message });
}

/** A release as the API shows it (its configuration is summarised, not repeated in full). */
function view(r: Release) {
  return {
    id: r.id,
    projectId: r.projectId,
    environment: r.environment,
    number: r.number,
    status: r.status,
    reason: r.reason,
    sha: r.sha,
    branch: r.branch,
    authorEmail: r.authorEmail,
    createdBy: r.createdBy,
    strategy: r.config.strategy.type,
    step: r.step,
    weight: r.progress.weight ?? 0,
    instances: r.progress.instances ?? [],
    pipelineId: r.pipelineId,
    jobId: r.jobId,
    previousId: r.previousId,
    redeployOf: r.redeployOf,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
}

export function releaseRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { project: number } }>(
    '/api/projects/:project/environments',
    { config: { access: 'viewer' }, schema: { summary: "A project's environments: the release serving each and the one under way", tags: ['delivery'], params: { type: 'object', required: ['project'], properties: { project: { type: 'integer' } } } } },
    async (req) => {
      const envs = await listEnvironments(ctx.db, req.params.project);
      return Promise.all(
        envs.map(async (e) => {
          const stable = e.stableReleaseId ? await getRelease(ctx.db, e.stableReleaseId) : null;
          const active = await activeRelease(ctx.db, e.projectId, e.name);
          return { name: e.name, url: envUrl(e.routerPort, stable ?? active), stable: stable ? view(stable) : null, active: active ? view(active) : null };
        }),
      );
    },
  );

  app.get<{ Params: { project: number; env: string } }>(
    '/api/projects/:project/environments/:env',
    { config: { access: 'viewer' }, schema: { summary: 'One environment: stable and active release, latest measurements, instances on the edge', tags: ['delivery'], params: envParams } },
    async (req, reply) => {
      const e = await getEnvironment(ctx.db, req.params.project, req.params.env);
      if (!e) return notFound(reply, `no releases to ${req.params.env} in project ${req.params.project} yet`);
      const stable = e.stableReleaseId ? await getRelease(ctx.db, e.stableReleaseId) : null;
      const active = await activeRelease(ctx.db, e.projectId, e.name);
      let instances: unknown[] = [];
      let edge: string | null = null;
      // Only environments that run on the edge ask it (asking starts one when none runs).
      const onEdge = (stable ?? active)?.config.target.type === 'process';
      if (ctx.edge && onEdge) {
        try {
          const client = await ctx.edge();
          const prefix = `${routeName(e.projectId, e.name)}-r`;
          instances = (await client.listInstances())
            .filter((i) => i.id.startsWith(prefix))
            .map((i) => ({ id: i.id, release: i.spec.labels.release, state: i.state, port: i.port, pid: i.pid, restarts: i.restarts, readyAt: i.readyAt }));
        } catch (err) {
          edge = `the edge cannot be reached: ${(err as Error).message}`;
        }
      }
      return {
        name: e.name,
        url: envUrl(e.routerPort, stable ?? active),
        stable: stable ? view(stable) : null,
        active: active ? view(active) : null,
        measurements: active ? await listMeasurements(ctx.db, active.id, 20) : [],
        instances,
        edge,
        releases: (await listReleases(ctx.db, { projectId: e.projectId, environment: e.name, limit: 10 })).map(view),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/releases/:id',
    { config: { access: 'viewer' }, schema: { summary: 'A release with its transitions, measurements and approvals', tags: ['delivery'], params: releaseParam } },
    async (req, reply) => {
      const r = await getRelease(ctx.db, req.params.id);
      if (!r) return notFound(reply, `no release ${req.params.id}`);
      return {
        ...view(r),
        config: r.config,
        progress: r.progress,
        transitions: await listTransitions(ctx.db, r.id),
        measurements: await listMeasurements(ctx.db, r.id),
        approvals: await listApprovals(ctx.db, r.id),
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { tail?: number } }>(
    '/api/releases/:id/logs',
    {
      config: { access: 'developer' },
      schema: {
        summary: "What a release's application instances wrote (stdout and stderr, timestamped), the end of each instance's log; the environment's secrets are masked",
        tags: ['delivery'],
        params: releaseParam,
        querystring: { type: 'object', additionalProperties: false, properties: { tail: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'bytes from the end of each instance log (default 64 KiB)' } } },
      },
    },
    async (req, reply) => {
      const r = await getRelease(ctx.db, req.params.id);
      if (!r) return notFound(reply, `no release ${req.params.id}`);
      const dir = join(releaseDir(ctx.home, r.id), 'logs');
      const files = existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith('.log')).sort() : [];
      const tail = req.query.tail ?? 64 * 1024;
      // The application may print what it was given: mask its secrets as job logs are masked.
      const secrets = Object.values(await jobSecrets(ctx.db, ctx.masterKey, r.projectId, r.environment).catch(() => ({})));
      const masker = secrets.length ? new SecretMasker(secrets) : null;
      let out = '';
      for (const f of files) {
        const fh = await open(join(dir, f), 'r');
        try {
          const { size } = await fh.stat();
          const start = Math.max(0, size - tail);
          const buf = Buffer.alloc(size - start);
          await fh.read(buf, 0, buf.length, start);
          let text = buf.toString('utf8');
          if (start > 0) text = text.slice(text.indexOf('\n') + 1);
          out += `==> ${f.replace(/\.log$/, '')}${start > 0 ? ` (last ${tail} bytes)` : ''} <==\n${masker ? masker.mask(text) : text}${text.endsWith('\n') || !text ? '' : '\n'}`;
        } finally {
          await fh.close();
        }
      }
      return reply.type('text/plain; charset=utf-8').send(out || `release ${r.id} has no instance logs (a script target, or nothing started)\n`);
    },
  );

  app.post<{ Params: { id: string }; Body: { full?: boolean; reason?: string } }>(
    '/api/releases/:id/promote',
    {
      config: { access: 'deployer' },
      schema: { summary: 'Move a release past its current pause or approval step (full: straight to 100%)', tags: ['delivery'], params: releaseParam, body: { type: 'object', additionalProperties: false, properties: { full: { type: 'boolean' }, reason: { type: 'string', maxLength: 2000 } } } },
    },
    async (req, reply) => {
      const r = await getRelease(ctx.db, req.params.id);
      if (!r) return notFound(reply, `no release ${req.params.id}`);
      const full = req.body?.full ?? false;
      if (!(await requestPromote(ctx.db, r.id, { actor: req.principal!.name, full, reason: req.body?.reason }))) return conflict(reply, `release ${r.id} is ${r.status}: nothing to promote`);
      await appendAudit(ctx.db, { actor: req.principal!.name, action: 'release.promoted', projectId: r.projectId, environment: r.environment, subject: r.id, reason: req.body?.reason ?? null, detail: { full, step: r.step } });
      return { promoted: true, full };
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } }>(
    '/api/releases/:id/abort',
    { config: { access: 'deployer' }, schema: { summary: 'Stop a release and put traffic back on the stable release', tags: ['delivery'], params: releaseParam, body: reasonBody } },
    async (req, reply) => {
      const r = await getRelease(ctx.db, req.params.id);
      if (!r) return notFound(reply, `no release ${req.params.id}`);
      const reason = req.body?.reason ?? `aborted by ${req.principal!.name}`;
      if (!(await requestAbort(ctx.db, r.id, { actor: req.principal!.name, reason, rollback: false }))) return conflict(reply, `release ${r.id} is ${r.status}: nothing to abort`);
      return { aborting: true };
    },
  );

  app.post<{ Params: { id: string }; Body: { comment?: string; overrideFreeze?: boolean; reason?: string } }>(
    '/api/releases/:id/approve',
    {
      config: { access: 'deployer' },
      schema: {
        summary: 'Approve a release (four eyes: not by its author); with overrideFreeze (admins), let it through a freeze window, saying why',
        tags: ['delivery'],
        params: releaseParam,
        body: { type: 'object', additionalProperties: false, properties: { comment: { type: 'string', maxLength: 2000 }, overrideFreeze: { type: 'boolean' }, reason: { type: 'string', maxLength: 2000 } } },
      },
    },
    async (req, reply) => {
      const r = await getRelease(ctx.db, req.params.id);
      if (!r) return notFound(reply, `no release ${req.params.id}`);
      if (!['pending', 'waiting', 'progressing'].includes(r.status)) return conflict(reply, `release ${r.id} is ${r.status}: approvals no longer matter`);
      const who = req.principal!;
      if (req.body?.overrideFreeze) {
        if (who.role !== 'admin') return reply.code(403).send({ error: 'forbidden', message: `overriding a freeze needs the admin role; ${who.name} is ${who.role}` });
        if (!req.body.reason?.trim()) return reply.code(400).send({ error: 'bad_request', message: 'say why the freeze is overridden: --reason "..."' });
        await saveProgress(ctx.db, r.id, { ...r.progress, freezeOverride: { actor: who.name, reason: req.body.reason } });
        await appendAudit(ctx.db, { actor: who.name, action: 'freeze.override', projectId: r.projectId, environment: r.environment, subject: r.id, reason: req.body.reason });
        return { overridden: true };
      }
      const [user] = await ctx.db.query<{ email: string | null }>('SELECT email FROM users WHERE id = $1', [who.userId]);
      const existing = (await listApprovals(ctx.db, r.id)).map((a) => a.user);
      const check = checkApproval({ approver: { name: who.name, email: user?.email, role: who.role }, release: { createdBy: r.createdBy, authorEmail: r.authorEmail }, existing });
      if (!check.ok) return reply.code(403).send({ error: 'forbidden', message: check.reason });
      await addApproval(ctx.db, r.id, { user: who.name, comment: req.body?.comment });
      await appendAudit(ctx.db, { actor: who.name, action: 'release.approved', projectId: r.projectId, environment: r.environment, subject: r.id, reason: req.body?.comment ?? null });
      return { approved: true, approvals: existing.length + 1, required: r.config.protection.approvals };
    },
  );

  app.post<{ Params: { project: number; env: string }; Body: { to?: string; reason?: string } }>(
    '/api/projects/:project/environments/:env/rollback',
    {
      config: { access: 'deployer' },
      schema: {
        summary: 'Roll an environment back: abort the release under way, or redeploy the previous good release (or `to`)',
        tags: ['delivery'],
        params: envParams,
        body: { type: 'object', additionalProperties: false, properties: { to: { type: 'string', maxLength: 64 }, reason: { type: 'string', maxLength: 2000 } } },
      },
    },
    async (req, reply) => {
      const { project, env } = req.params;
      const who = req.principal!.name;
      const reason = req.body?.reason ?? `rollback by ${who}`;
      const active = await activeRelease(ctx.db, project, env);
      if (active && !req.body?.to) {
        await requestAbort(ctx.db, active.id, { actor: who, reason, rollback: true });
        return reply.code(202).send({ rollingBack: active.id, how: 'the release under way is stopped and traffic returns to the stable release' });
      }
      if (active) return conflict(reply, `release ${active.environment}#${active.number} is under way: abort it first (ferry abort ${env})`);
      const e = await getEnvironment(ctx.db, project, env);
      if (!e?.stableReleaseId) return notFound(reply, `${env} has no release to roll back from`);
      const stable = (await getRelease(ctx.db, e.stableReleaseId))!;
      let to: Release | null;
      if (req.body?.to) {
        to = await findRelease(ctx.db, req.body.to, { projectId: project, environment: env });
        if (!to || to.projectId !== project || to.environment !== env) return notFound(reply, `no release ${req.body.to} of ${env}`);
      } else {
        const earlier = await ctx.db.query<{ id: string }>(
          "SELECT id FROM releases WHERE project_id = $1 AND environment = $2 AND status = 'succeeded' AND number < $3 AND id <> $4 ORDER BY number DESC LIMIT 1",
          [project, env, stable.number, stable.id],
        );
        to = earlier[0] ? await getRelease(ctx.db, earlier[0].id) : null;
        if (!to) return notFound(reply, `${env} has no earlier good release to roll back to`);
      }
      if (to.id === stable.id) return conflict(reply, `${env}#${to.number} already serves ${env}`);
      if (!to.filesDir) return conflict(reply, `the files of ${env}#${to.number} are gone: deploy it again from its pipeline`);
      const rel = await createRelease(ctx.db, {
        projectId: project,
        environment: env,
        sha: to.sha,
        branch: to.branch,
        authorEmail: to.authorEmail,
        createdBy: who,
        config: to.config,
        filesDir: to.filesDir,
        redeployOf: to.id,
      });
      await appendAudit(ctx.db, { actor: who, action: 'release.rolled_back', projectId: project, environment: env, subject: rel.id, reason, detail: { from: stable.id, to: to.id } });
      return reply.code(202).send({ release: view(rel), redeploys: to.id });
    },
  );

  app.post<{ Body: unknown }>(
    '/api/hooks/alertmanager',
    {
      config: { access: 'deployer' },
      schema: { summary: "Alertmanager's webhook: a firing alert whose labels name an environment (ferry_environment, environment or env; optionally ferry_project) rolls back its release under way", tags: ['delivery'] },
    },
    async (req, reply) => {
      let payload;
      try {
        payload = parseAlertmanagerWebhook(req.body);
      } catch (err) {
        if (err instanceof AlertmanagerPayloadError) return reply.code(400).send({ error: 'bad_request', message: err.message });
        throw err;
      }
      const active = await ctx.db.query<{ id: string; project_id: number; environment: string; number: number; name: string }>(
        "SELECT r.id, r.project_id, r.environment, r.number, p.name FROM releases r JOIN projects p ON p.id = r.project_id WHERE r.status IN ('pending', 'waiting', 'progressing')",
      );
      const rolledBack: string[] = [];
      for (const r of active) {
        const alerts = alertsForEnvironment(payload, { name: r.environment, project: [r.project_id, r.name] });
        if (alerts.length === 0) continue;
        const names = alerts.map((a) => a.labels.alertname ?? a.fingerprint).join(', ');
        const reason = `alert firing: ${names}`;
        if (await requestAbort(ctx.db, r.id, { actor: 'alertmanager', reason, rollback: true })) rolledBack.push(r.id);
      }
      return { rollingBack: rolledBack };
    },
  );
}
