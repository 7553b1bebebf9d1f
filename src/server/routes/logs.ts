// A job's log: whole, or followed live over Server-Sent Events until the job ends.
import type { FastifyInstance } from 'fastify';
import { FINAL_JOB_STATUSES } from '../../pipeline/events.js';
import { getJob } from '../../store/jobs.js';
import { getJobLog, getLogChunks } from '../../store/logs.js';
import type { ServerContext } from '../context.js';

/** A comment line every so often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

export function logRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Params: { id: string }; Querystring: { follow?: '1' | '0' | 'true' | 'false'; attempt?: number } }>(
    '/api/jobs/:id/log',
    {
      config: { access: 'viewer' },
      schema: {
        summary: "A job's log (text), or with follow=1 a live stream (text/event-stream: `log` events, then `end`)",
        tags: ['logs'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        querystring: { type: 'object', properties: { follow: { type: 'string', enum: ['1', '0', 'true', 'false'] }, attempt: { type: 'integer', minimum: 1 } } },
      },
    },
    async (req, reply) => {
      const job = await getJob(ctx.db, req.params.id);
      if (!job) return reply.code(404).send({ error: 'not_found', message: `no job ${req.params.id}` });
      if (req.query.follow !== '1' && req.query.follow !== 'true') {
        const log = await getJobLog(ctx.db, job.id, { attempt: req.query.attempt });
        return reply.type('text/plain; charset=utf-8').send(log?.text ?? '');
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      let lastSeq = 0;
      let closed = false;
      let running = false;
      let again = false;
      // Whatever woke us, read what is new from the store: the store is the order of record, so
      // a reader never misses or repeats a chunk, whichever replica recorded it.
      const sendNew = async (): Promise<void> => {
        for (const c of await getLogChunks(ctx.db, job.id, { attempt: req.query.attempt, afterSeq: lastSeq })) {
          res.write(`event: log\nid: ${c.seq}\ndata: ${JSON.stringify({ stream: c.stream, at: c.at, text: c.text, attempt: c.attempt })}\n\n`);
          lastSeq = c.seq;
        }
      };
      const pump = async (): Promise<void> => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            await sendNew();
            const now = await getJob(ctx.db, job.id);
            if (now && FINAL_JOB_STATUSES.has(now.status) && !again) {
              // What the final report wrote after the last wake-up still comes before `end`.
              await sendNew();
              res.write(`event: end\ndata: ${JSON.stringify({ status: now.status, exitCode: now.exitCode, logTruncated: now.logTruncated })}\n\n`);
              return stop();
            }
          } while (again && !closed);
        } catch (err) {
          if (!closed) res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
          stop();
        } finally {
          running = false;
        }
      };
      const unsubscribe = ctx.bus.subscribe((e) => {
        if ((e.type === 'job.log' || e.type === 'job.state') && e.jobId === job.id) void pump();
      });
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      const stop = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(keepalive);
        res.end();
      };
      req.raw.on('close', stop);
      await pump();
    },
  );
}
