// A job's log: whole, or followed live over Server-Sent Events until the job ends (one tail per
// followed job writes to all its viewers: ../log-tails.ts).
import type { FastifyInstance } from 'fastify';
import { getJob } from '../../store/jobs.js';
import { getJobLog } from '../../store/logs.js';
import type { ServerContext } from '../context.js';
import { LogTails, type LogViewer } from '../log-tails.js';

/** How much unsent stream a viewer may have on the server before it is let go. */
const MAX_BACKLOG = 16 * 1024 * 1024;

export function logRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const tails = new LogTails(ctx);
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
      // A viewer that reconnects says where it was (the `id` of the last event it got).
      const last = Number(req.headers['last-event-id']);
      const afterSeq = Number.isSafeInteger(last) && last > 0 ? last : 0;
      let closed = false;
      const viewer: LogViewer = {
        write(text) {
          if (closed) return;
          // A viewer that reads slower than the job writes is let go, rather than have the
          // server hold its backlog; it can reconnect with Last-Event-ID and read on.
          if (res.writableLength > MAX_BACKLOG) {
            res.write(`event: error\ndata: ${JSON.stringify({ message: 'this viewer fell too far behind; reconnect with Last-Event-ID to read on' })}\n\n`);
            return viewer.close();
          }
          res.write(text);
        },
        close() {
          if (closed) return;
          closed = true;
          stop();
          res.end();
        },
      };
      const stop = tails.follow(job.id, req.query.attempt, viewer, afterSeq);
      res.on('close', () => viewer.close());
    },
  );
}
