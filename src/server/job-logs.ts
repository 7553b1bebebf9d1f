// What runners send of a job's log, recorded under the per-job log limit. The runner cuts its
// own output at the limit the lease tells it, but the server does not rely on that: it counts
// what it accepts of each attempt in the store (job_attempts.log_bytes, the row locked while a
// batch is recorded, so replicas and concurrent requests add up) and drops what goes past,
// ending the log with its own truncation line. Chunks arrive here already masked
// (src/server/job-secrets.ts): the cut never splits a secret the masker could still catch.
import { DEFAULT_LOG_LIMIT, LogLimiter } from '../executor/log-limit.js';
import type { RunEvent } from '../pipeline/events.js';
import type { LogChunkWire } from '../runner/protocol.js';
import { RunRecorder } from '../store/recorder.js';
import type { ServerContext } from './context.js';

export interface AttemptRef {
  pipelineId: string;
  jobId: string;
  attempt: number;
}

/** Records the chunks that fit; returns the events recorded and whether the log is now cut. */
export async function recordRunnerLogs(ctx: ServerContext, ref: AttemptRef, chunks: LogChunkWire[]): Promise<{ events: RunEvent[]; truncated: boolean }> {
  if (chunks.length === 0) return { events: [], truncated: false };
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<{ log_bytes: number; log_truncated: boolean }>(
      'SELECT log_bytes, log_truncated FROM job_attempts WHERE job_id = $1 AND number = $2 FOR UPDATE',
      [ref.jobId, ref.attempt],
    );
    const events: RunEvent[] = [];
    let at = Date.now();
    const limiter = new LogLimiter(
      ctx.logLimit ?? DEFAULT_LOG_LIMIT,
      (stream, text, truncated) => events.push({ type: 'job.log', at, ...ref, stream, text, ...(truncated ? { truncated } : {}) }),
      { usedBytes: Number(row?.log_bytes ?? 0), truncated: row?.log_truncated ?? false },
    );
    const before = limiter.used;
    for (const c of chunks) {
      at = c.at;
      // The runner's own truncation line is not taken as it is: the server writes its own.
      if (c.truncated) limiter.truncate();
      else limiter.write(c.stream, c.text);
    }
    if (row && limiter.used !== before) {
      await tx.query('UPDATE job_attempts SET log_bytes = $3 WHERE job_id = $1 AND number = $2', [ref.jobId, ref.attempt, limiter.used]);
    }
    await new RunRecorder(tx).apply(events);
    return { events, truncated: limiter.truncated };
  });
}
