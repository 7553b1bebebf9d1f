// The runner protocol, server side: runners lease jobs (long poll), heart-beat, send log
// chunks and reports, download the commit and the artifacts of needed jobs, upload their own
// artifacts and caches, and report the outcome. Every call about a job is accepted only from
// the lease holder of its current attempt.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { RunEvent } from '../../pipeline/events.js';
import { DEFAULT_LOG_LIMIT } from '../../executor/log-limit.js';
import type { JobLeaseWire, LeaseRequest, LogChunkWire, LogsAnswerWire, OutcomeWire, ReportWire } from '../../runner/protocol.js';
import { RUNNER_API } from '../../runner/protocol.js';
import { SecretError } from '../../secrets/crypto.js';
import { getPipelineSource } from '../../store/pipelines.js';
import { complete, heartbeat, lease } from '../../store/queue.js';
import { RunRecorder } from '../../store/recorder.js';
import { publish, type ServerContext } from '../context.js';
import { projectRepo } from '../trigger.js';
import { ServerMaskers, secretsForJob } from '../job-secrets.js';
import { inlineSource, sourceTar } from '../sources.js';
import { awaitTurn, recordRunnerLogs, type LogUsage } from '../job-logs.js';
import { decodeLogBatch, LOG_BATCH_BODY_LIMIT, LOG_BATCH_TYPE } from '../../runner/log-batch.js';

const MAX_WAIT_MS = 30_000;
const MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024;

/** Several beats per lease, so one lost request never costs a job; at least once a second so a
 * cancel reaches a running job within about a second. */
export function heartbeatEvery(leaseMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(leaseMs / 6)));
}

interface Held {
  pipeline_id: string;
  attempt: number;
  /** The attempt's log has been cut at the limit. */
  log_truncated: boolean;
  /** What the attempt's log has taken so far (null: no attempt row): see ../job-logs.ts. */
  used: LogUsage | null;
}

async function holder(ctx: ServerContext, jobId: string, attempt: number, runnerId: string): Promise<Held | null> {
  const [row] = await ctx.db.query<Omit<Held, 'used'> & { a_bytes: number | null; a_truncated: boolean | null; a_batch: number | null }>(
    `SELECT j.pipeline_id, j.attempt, j.log_truncated, a.log_bytes AS a_bytes, a.log_truncated AS a_truncated, a.log_batch AS a_batch
     FROM jobs j LEFT JOIN job_attempts a ON a.job_id = j.id AND a.number = j.attempt
     WHERE j.id = $1 AND j.attempt = $2 AND j.lease_owner = $3 AND j.status = 'running'`,
    [jobId, attempt, runnerId],
  );
  if (!row) return null;
  const { a_bytes, a_truncated, a_batch, ...held } = row;
  return { ...held, used: a_batch === null ? null : { log_bytes: Number(a_bytes), log_truncated: a_truncated ?? false, log_batch: a_batch } };
}

function lost(reply: FastifyReply): FastifyReply {
  return reply.code(409).send({ error: 'lease_lost', message: 'this runner does not hold this attempt of the job (any more): stop it and report nothing' });
}

const jobParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;
const attemptQuery = { type: 'object', required: ['attempt'], properties: { attempt: { type: 'integer', minimum: 1 } } } as const;

export function runnerRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const maskers = new ServerMaskers(ctx);

  // Tarballs are streamed to disk, never parsed or held in memory.
  app.addContentTypeParser('application/x-tar', (_req, payload, done) => done(null, payload));
  // Log batches come as a JSON header line and raw text (see src/runner/log-batch.ts); JSON works too.
  app.addContentTypeParser(LOG_BATCH_TYPE, { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, decodeLogBatch(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.post<{ Body: LeaseRequest }>(
    `${RUNNER_API}/lease`,
    {
      config: { access: 'runner' },
      schema: {
        summary: 'Take the next job this runner can run, waiting up to waitMs for one (204: none)',
        tags: ['runner protocol'],
        body: { type: 'object', required: ['waitMs'], properties: { waitMs: { type: 'integer', minimum: 0, maximum: MAX_WAIT_MS }, tags: { type: 'array', maxItems: 50, items: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } }, info: { type: 'object' } } },
      },
    },
    async (req, reply) => {
      const runner = req.runner!;
      if (req.body.info) await ctx.db.query('UPDATE runners SET info = $2::jsonb WHERE id = $1', [runner.id, JSON.stringify(req.body.info)]);
      if (req.body.tags) {
        await ctx.db.query('UPDATE runners SET tags = $2::jsonb WHERE id = $1', [runner.id, JSON.stringify(req.body.tags)]);
        runner.tags = req.body.tags;
      }
      const deadline = Date.now() + req.body.waitMs;
      let gone = false;
      req.raw.on('close', () => (gone = true));
      for (;;) {
        const { lease: l, events } = await lease(ctx.db, { id: runner.id, tags: runner.tags, leaseMs: ctx.leaseMs });
        if (l) {
          // Had the runner hung up meanwhile, it never heart-beats: the reaper requeues the job.
          publish(ctx, events);
          const p = await getPipelineSource(ctx.db, l.pipelineId);
          let secrets: Record<string, string>;
          try {
            secrets = p ? await secretsForJob(ctx, { projectId: p.project.id, variables: p.variables }, l.job) : {};
          } catch (err) {
            // Never run a job with a secret silently missing: fail it, saying which and why.
            if (!(err instanceof SecretError)) throw err;
            const at = Date.now();
            const note: RunEvent = { type: 'job.log', at, pipelineId: l.pipelineId, jobId: l.jobId, attempt: l.attempt, stream: 'system', text: `ferry server: cannot give this job its secrets: ${err.message}\n` };
            await new RunRecorder(ctx.db).apply([note]);
            const done = await complete(ctx.db, { jobId: l.jobId, attempt: l.attempt, runnerId: runner.id, outcome: { status: 'failed', exitCode: null, reason: 'unmet_prerequisites' } }, at);
            publish(ctx, [note, ...done.events]);
            continue;
          }
          // Injected here, never recorded: the pipeline's stored variables hold no secret.
          const secretNames = Object.keys(secrets);
          if (secretNames.length) maskers.remember(l.jobId, l.attempt, Object.values(secrets));
          const source = p ? await inlineSource(ctx, p.project, p.sha) : undefined;
          const body: JobLeaseWire = { jobId: l.jobId, pipelineId: l.pipelineId, attempt: l.attempt, job: l.job, variables: { ...p?.variables, ...secrets }, secretNames, heartbeatMs: heartbeatEvery(ctx.leaseMs), logLimit: ctx.logLimit ?? DEFAULT_LOG_LIMIT, ...(source ? { source } : {}) };
          return body;
        }
        const left = deadline - Date.now();
        if (left <= 0 || gone) return reply.code(204).send();
        // Woken by a job queued on this replica, by another replica's NOTIFY (PostgreSQL), or
        // after a second at most (a missed notification).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(left, 1000));
          const off = ctx.bus.subscribe((e) => {
            if (e.type === 'job.state' && e.status === 'pending') done();
          });
          const offQueued = ctx.queued?.subscribe(() => done());
          function done() {
            clearTimeout(timer);
            off();
            offQueued?.();
            resolve();
          }
        });
      }
    },
  );

  app.post<{ Params: { id: string }; Body: { attempt: number } }>(
    `${RUNNER_API}/jobs/:id/heartbeat`,
    { config: { access: 'runner' }, schema: { summary: "Extend the job's lease; answers ok, cancel (stop the job) or lost", tags: ['runner protocol'], params: jobParams, body: attemptQuery } },
    async (req) => ({ answer: await heartbeat(ctx.db, { jobId: req.params.id, attempt: req.body.attempt, runnerId: req.runner!.id, leaseMs: ctx.leaseMs }) }),
  );

  app.post<{ Params: { id: string }; Body: { attempt: number; batch?: number; chunks: LogChunkWire[] } }>(
    `${RUNNER_API}/jobs/:id/logs`,
    {
      config: { access: 'runner' },
      bodyLimit: LOG_BATCH_BODY_LIMIT,
      schema: {
        summary: 'Append log chunks of the running attempt',
        description: `JSON, or (what runners send) ${LOG_BATCH_TYPE}: a JSON line {"attempt", "batch", "chunks": [{"stream", "at", "bytes"}]} followed by each chunk's text as UTF-8; numbered batches are recorded in order, each once`,
        tags: ['runner protocol'],
        consumes: ['application/json', LOG_BATCH_TYPE],
        params: jobParams,
        body: {
          type: 'object',
          required: ['attempt', 'chunks'],
          properties: {
            attempt: { type: 'integer', minimum: 1 },
            batch: { type: 'integer', minimum: 1 },
            chunks: { type: 'array', maxItems: 10_000, items: { type: 'object', required: ['stream', 'at', 'text'], properties: { stream: { enum: ['stdout', 'stderr', 'system'] }, at: { type: 'number' }, text: { type: 'string' }, truncated: { type: 'boolean' } } } },
          },
        },
      },
    },
    async (req, reply) => {
      const held = await holder(ctx, req.params.id, req.body.attempt, req.runner!.id);
      if (!held) return lost(reply);
      // Past the limit nothing is recorded: not worth masking either.
      if (held.log_truncated) return { accepted: 0, truncated: true } satisfies LogsAnswerWire;
      const ref = { pipelineId: held.pipeline_id, jobId: req.params.id, attempt: req.body.attempt };
      // Numbered batches are taken in their order, once each: see src/server/job-logs.ts.
      const { batch } = req.body;
      let used = held.used;
      if (batch !== undefined) {
        const turn = await awaitTurn(ctx, ref, batch, used);
        if (turn.recorded) return { accepted: 0 } satisfies LogsAnswerWire;
        used = turn.used;
      }
      // Masked again here (the runner did first): see src/server/job-secrets.ts. Then cut at the
      // limit, whatever the runner did: see src/server/job-logs.ts.
      const chunks = await maskers.mask(req.params.id, req.body.attempt, req.body.chunks);
      const { events, truncated } = await recordRunnerLogs(ctx, ref, chunks, { batch, used });
      publish(ctx, events);
      return { accepted: events.length, ...(truncated ? { truncated } : {}) } satisfies LogsAnswerWire;
    },
  );

  app.post<{ Params: { id: string }; Body: { attempt: number } & ReportWire }>(
    `${RUNNER_API}/jobs/:id/reports`,
    { config: { access: 'runner' }, schema: { summary: 'A parsed test report of the running attempt', tags: ['runner protocol'], params: jobParams, body: { type: 'object', required: ['attempt', 'kind', 'file', 'report'], properties: { attempt: { type: 'integer', minimum: 1 }, kind: { enum: ['junit'] }, file: { type: 'string' }, report: { type: 'object' } } } } },
    async (req, reply) => {
      const held = await holder(ctx, req.params.id, req.body.attempt, req.runner!.id);
      if (!held) return lost(reply);
      const report = await maskers.maskValue(req.params.id, req.body.attempt, req.body.report);
      const e: RunEvent = { type: 'job.report', at: Date.now(), pipelineId: held.pipeline_id, jobId: req.params.id, attempt: req.body.attempt, kind: req.body.kind, file: req.body.file, report };
      await new RunRecorder(ctx.db).apply([e]);
      publish(ctx, [e]);
      return { accepted: true };
    },
  );

  app.post<{ Params: { id: string }; Body: { attempt: number; outcome: OutcomeWire } }>(
    `${RUNNER_API}/jobs/:id/complete`,
    {
      config: { access: 'runner' },
      schema: {
        summary: 'The end of the attempt; rejected (409) unless this runner holds it',
        tags: ['runner protocol'],
        params: jobParams,
        body: { type: 'object', required: ['attempt', 'outcome'], properties: { attempt: { type: 'integer', minimum: 1 }, outcome: { type: 'object', required: ['status'], properties: { status: { enum: ['success', 'failed', 'canceled'] }, exitCode: { type: ['integer', 'null'] }, reason: { type: 'string' } } } } },
      },
    },
    async (req, reply) => {
      // What the server's maskers held back (a possible start of a secret) ends the log.
      const rest = await maskers.finish(req.params.id, req.body.attempt);
      const held = rest.length ? await holder(ctx, req.params.id, req.body.attempt, req.runner!.id) : null;
      if (held && !held.log_truncated) {
        const { events: tail } = await recordRunnerLogs(ctx, { pipelineId: held.pipeline_id, jobId: req.params.id, attempt: req.body.attempt }, rest);
        publish(ctx, tail);
      }
      const { accepted, events } = await complete(ctx.db, { jobId: req.params.id, attempt: req.body.attempt, runnerId: req.runner!.id, outcome: { ...req.body.outcome, exitCode: req.body.outcome.exitCode ?? null } });
      if (!accepted) return lost(reply);
      publish(ctx, events);
      return { accepted: true };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { attempt: number } }>(
    `${RUNNER_API}/jobs/:id/source`,
    { config: { access: 'runner' }, schema: { summary: "The commit's files, as a tar stream", tags: ['runner protocol'], params: jobParams, querystring: attemptQuery } },
    async (req, reply) => {
      const held = await holder(ctx, req.params.id, req.query.attempt, req.runner!.id);
      if (!held) return lost(reply);
      const p = (await getPipelineSource(ctx.db, held.pipeline_id))!;
      const file = await sourceTar(ctx, p.project, p.sha);
      return reply.type('application/x-tar').send(createReadStream(file));
    },
  );

  const artifactFile = (pipelineId: string, jobId: string) => join(ctx.home, 'artifacts', pipelineId, `${jobId}.tar`);

  app.put<{ Params: { id: string }; Querystring: { attempt: number; expireInMs?: number } }>(
    `${RUNNER_API}/jobs/:id/artifacts`,
    { config: { access: 'runner' }, bodyLimit: MAX_ARTIFACT_BYTES, schema: { summary: "Upload the attempt's artifacts (tar)", tags: ['runner protocol'], params: jobParams, querystring: { type: 'object', required: ['attempt'], properties: { attempt: { type: 'integer', minimum: 1 }, expireInMs: { type: 'integer', minimum: 0 } } } } },
    async (req, reply) => {
      const held = await holder(ctx, req.params.id, req.query.attempt, req.runner!.id);
      if (!held) return lost(reply);
      const file = artifactFile(held.pipeline_id, req.params.id);
      await receive(req.body as Readable, file);
      const expiresAt = req.query.expireInMs === undefined ? null : Date.now() + req.query.expireInMs;
      await writeFile(`${file}.json`, JSON.stringify({ expiresAt }));
      return { stored: (await stat(file)).size };
    },
  );

  app.get<{ Params: { id: string; need: string }; Querystring: { attempt: number } }>(
    `${RUNNER_API}/jobs/:id/artifacts/:need`,
    { config: { access: 'runner' }, schema: { summary: 'The artifacts of a job this job needs (tar; 404: none kept or expired)', tags: ['runner protocol'], params: { type: 'object', required: ['id', 'need'], properties: { id: { type: 'string' }, need: { type: 'string' } } }, querystring: attemptQuery } },
    async (req, reply) => {
      const held = await holder(ctx, req.params.id, req.query.attempt, req.runner!.id);
      if (!held) return lost(reply);
      const file = artifactFile(held.pipeline_id, req.params.need); // only jobs of the same pipeline
      const meta = await readFile(`${file}.json`, 'utf8').then((t) => JSON.parse(t) as { expiresAt: number | null }, () => null);
      if (!meta || !existsSync(file) || (meta.expiresAt !== null && meta.expiresAt < Date.now())) return reply.code(404).send({ error: 'not_found', message: 'no artifacts' });
      return reply.type('application/x-tar').send(createReadStream(file));
    },
  );

  const cacheFile = (key: string) => join(ctx.home, 'cache', `${createHash('sha256').update(key).digest('hex')}.tar`);

  app.get<{ Params: { key: string } }>(
    `${RUNNER_API}/cache/:key`,
    { config: { access: 'runner' }, schema: { summary: 'A cache (tar; 404: none yet)', tags: ['runner protocol'], params: { type: 'object', required: ['key'], properties: { key: { type: 'string', maxLength: 512 } } } } },
    async (req, reply) => {
      const file = cacheFile(req.params.key);
      if (!existsSync(file)) return reply.code(404).send({ error: 'not_found', message: 'no cache yet' });
      return reply.type('application/x-tar').send(createReadStream(file));
    },
  );

  app.put<{ Params: { key: string } }>(
    `${RUNNER_API}/cache/:key`,
    { config: { access: 'runner' }, bodyLimit: MAX_ARTIFACT_BYTES, schema: { summary: 'Save a cache (tar), replacing the previous one', tags: ['runner protocol'], params: { type: 'object', required: ['key'], properties: { key: { type: 'string', maxLength: 512 } } } } },
    async (req) => {
      await receive(req.body as Readable, cacheFile(req.params.key));
      return { stored: true };
    },
  );
}

/** Streams a request body to `file` through a temporary name: readers never see half a file. */
async function receive(body: Readable, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await pipe(body, createWriteStream(tmp));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
