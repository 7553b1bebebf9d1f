// What runners send of a job's log, recorded under the per-job log limit. The runner cuts its
// own output at the limit the lease tells it, but the server does not rely on that: it counts
// what it accepts of each attempt in the store (job_attempts.log_bytes, the row locked while a
// batch is recorded, so replicas and concurrent requests add up) and drops what goes past,
// ending the log with its own truncation line. Chunks arrive here already masked
// (src/server/job-secrets.ts): the cut never splits a secret the masker could still catch.
//
// A runner numbers its batches and has two in flight (src/runner/log-sender.ts). The server
// records them in that order: a batch waits (awaitTurn, before it is masked: the maskers are
// streaming) until the one before it is recorded, on this replica or another, and a number
// recorded before (a request sent again) is not recorded twice. A predecessor that never comes
// (its runner gave up on it) is waited for ORDER_WAIT_MS, then skipped.
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

/** An attempt's log so far (its job_attempts row). */
export interface LogUsage {
  log_bytes: number;
  log_truncated: boolean;
  log_batch: number;
}

const SELECT_USAGE = 'SELECT log_bytes, log_truncated, log_batch FROM job_attempts WHERE job_id = $1 AND number = $2';

/** How long a batch waits for the one before it. */
const ORDER_WAIT_MS = 10_000;
/** How often a waiting batch looks in the store (the batch before may come through another replica). */
const ORDER_POLL_MS = 50;

/** Waiters per attempt, woken when this replica records one of its batches. */
const turns = new Map<string, Set<() => void>>();
const turnKey = (ref: AttemptRef) => `${ref.jobId}\u0000${ref.attempt}`;

function wake(ref: AttemptRef): void {
  const waiting = turns.get(turnKey(ref));
  if (waiting) for (const w of [...waiting]) w();
}

function nextWake(ref: AttemptRef, ms: number): Promise<void> {
  const key = turnKey(ref);
  return new Promise((resolve) => {
    let set = turns.get(key);
    if (!set) turns.set(key, (set = new Set()));
    const done = () => {
      clearTimeout(timer);
      set!.delete(done);
      if (set!.size === 0) turns.delete(key);
      resolve();
    };
    const timer = setTimeout(done, ms);
    set.add(done);
  });
}

/**
 * Waits until batch `batch` of the attempt may be recorded; `recorded` when it (a request sent
 * again) already was. `known`: the attempt's row as the caller just read it (null: no row).
 */
export async function awaitTurn(ctx: ServerContext, ref: AttemptRef, batch: number, known: LogUsage | null): Promise<{ recorded: boolean; used: LogUsage | null }> {
  const deadline = Date.now() + ORDER_WAIT_MS;
  let row = known;
  for (;;) {
    if (!row) return { recorded: false, used: null };
    if (row.log_batch >= batch) return { recorded: true, used: row };
    if (row.log_batch === batch - 1 || Date.now() >= deadline) return { recorded: false, used: row };
    await nextWake(ref, Math.min(ORDER_POLL_MS, deadline - Date.now()));
    row = await readUsage(ctx, ref);
  }
}

async function readUsage(ctx: ServerContext, ref: AttemptRef): Promise<LogUsage | null> {
  const [row] = await ctx.db.query<LogUsage>(SELECT_USAGE, [ref.jobId, ref.attempt]);
  return row ?? null;
}

/**
 * Records the chunks that fit; returns the events recorded and whether the log is now cut.
 * With a batch number: nothing when that batch was recorded before. `used`: the attempt's row as
 * the caller just read it (read here when not given).
 */
export async function recordRunnerLogs(
  ctx: ServerContext,
  ref: AttemptRef,
  chunks: LogChunkWire[],
  o: { batch?: number; used?: LogUsage | null } = {},
): Promise<{ events: RunEvent[]; truncated: boolean }> {
  const { batch } = o;
  if (chunks.length === 0 && batch === undefined) return { events: [], truncated: false };
  // Optimistically: the events are cut against what the attempt had used a moment ago and
  // prepared (their text compressed) before the transaction, so that no lock is held meanwhile.
  // Inside, under the row's lock, a changed count (another request of the same attempt got in
  // between) means cutting and preparing again.
  const seen = o.used === undefined ? await readUsage(ctx, ref) : o.used;
  let cut = cutAtLimit(ctx, ref, chunks, seen);
  let prepared = await RunRecorder.prepare(cut.events);
  const result = await ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<LogUsage>(`${SELECT_USAGE} FOR UPDATE`, [ref.jobId, ref.attempt]);
    if (row && batch !== undefined && row.log_batch >= batch) return { events: [], truncated: row.log_truncated };
    if (Number(row?.log_bytes ?? 0) !== Number(seen?.log_bytes ?? 0) || (row?.log_truncated ?? false) !== (seen?.log_truncated ?? false)) {
      cut = cutAtLimit(ctx, ref, chunks, row);
      prepared = await RunRecorder.prepare(cut.events);
    }
    if (row && (cut.used !== Number(row.log_bytes) || batch !== undefined)) {
      await tx.query('UPDATE job_attempts SET log_bytes = $3, log_batch = greatest(log_batch, $4) WHERE job_id = $1 AND number = $2', [ref.jobId, ref.attempt, cut.used, batch ?? 0]);
    }
    await new RunRecorder(tx).apply(prepared);
    return { events: cut.events, truncated: cut.truncated };
  });
  if (batch !== undefined) wake(ref);
  return result;
}

/** The events of the chunks that fit under the log limit, given what the attempt has used. */
function cutAtLimit(ctx: ServerContext, ref: AttemptRef, chunks: LogChunkWire[], used: LogUsage | null): { events: RunEvent[]; used: number; truncated: boolean } {
  const events: RunEvent[] = [];
  let at = Date.now();
  const limiter = new LogLimiter(
    ctx.logLimit ?? DEFAULT_LOG_LIMIT,
    (stream, text, truncated) => events.push({ type: 'job.log', at, ...ref, stream, text, ...(truncated ? { truncated } : {}) }),
    { usedBytes: Number(used?.log_bytes ?? 0), truncated: used?.log_truncated ?? false },
  );
  for (const c of chunks) {
    at = c.at;
    // The runner's own truncation line is not taken as it is: the server writes its own.
    if (c.truncated) limiter.truncate();
    else limiter.write(c.stream, c.text);
  }
  return { events, used: limiter.used, truncated: limiter.truncated };
}
