// The job queue of `ferry server`, kept in the store so that several server replicas on one
// PostgreSQL share the work and a restart loses nothing.
//
// Every change is computed with the same pure rules as `ferry run` (src/pipeline/rules.ts) and
// written as run events through the recorder, so attempts, logs and pipeline status are
// recorded exactly as for local runs. Each function runs in one transaction and returns the
// events it recorded, for the server to broadcast (live views, metrics).
//
// - advance: decides what waiting jobs of a pipeline do now (pending, skipped, manual) and
//   finishes the pipeline when nothing can move; the pipeline's job rows are locked meanwhile,
//   so two replicas never decide the same job twice.
// - lease: a runner takes the oldest ready job whose tags it has (FOR UPDATE SKIP LOCKED: two
//   runners never get the same job, and neither waits for the other).
// - heartbeat / complete: accepted only from the lease holder of the current attempt (the
//   attempt number is the fencing token): a runner that lost its lease cannot report twice.
// - reapExpiredLeases: a job whose runner stopped heart-beating fails with runner_system_failure
//   and is retried if its retry policy says so.
import type { FailureReason, JobStateChanged, PipelineStarted, RunEvent } from '../pipeline/events.js';
import { FINAL_JOB_STATUSES } from '../pipeline/events.js';
import type { PlannedJob } from '../pipeline/plan.js';
import { decideJob, isAllowedFailure, settledPipelineStatus, shouldRetry, type AttemptOutcome, type JobState } from '../pipeline/rules.js';
import type { Db } from './db.js';
import { RunRecorder } from './recorder.js';

interface LockedJob {
  id: string;
  spec: PlannedJob;
  state: JobState;
}

async function lockPipelineJobs(tx: Db, pipelineId: string): Promise<LockedJob[]> {
  const rows = await tx.query<{ id: string; spec: PlannedJob; status: JobState['status']; attempt: number; allowed_failure: boolean }>(
    'SELECT id, spec, status, attempt, allowed_failure FROM jobs WHERE pipeline_id = $1 ORDER BY position FOR UPDATE',
    [pipelineId],
  );
  return rows.map((r) => ({ id: r.id, spec: r.spec, state: { status: r.status, attempt: r.attempt, allowedFailure: r.allowed_failure } }));
}

function stateEvent(pipelineId: string, jobId: string, s: JobState, at: number, extra: Partial<JobStateChanged> = {}): JobStateChanged {
  return { type: 'job.state', at, pipelineId, jobId, status: s.status, attempt: s.attempt, allowedFailure: s.allowedFailure || undefined, ...extra };
}

async function record(tx: Db, events: RunEvent[]): Promise<void> {
  if (events.length) await new RunRecorder(tx).apply(events);
}

async function markQueued(tx: Db, jobIds: string[], at: number): Promise<void> {
  if (jobIds.length === 0) return;
  await tx.query('UPDATE jobs SET queued_at = $2, lease_owner = NULL, lease_expires_at = NULL WHERE id = ANY($1::text[])', [jobIds, new Date(at).toISOString()]);
  // Wakes runners waiting on LISTEN ferry_jobs; delivered when the transaction commits.
  await tx.query("SELECT pg_notify('ferry_jobs', '')");
}

/**
 * Moves a pipeline forward after anything changed in it; call inside a transaction. Returns
 * the events recorded (jobs made pending, skipped or manual, the pipeline finished).
 */
export async function advance(tx: Db, pipelineId: string, at = Date.now()): Promise<RunEvent[]> {
  const jobs = await lockPipelineJobs(tx, pipelineId);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const [pipeline] = await tx.query<{ status: string; cancel_requested: boolean }>('SELECT status, cancel_requested FROM pipelines WHERE id = $1', [pipelineId]);
  const events: RunEvent[] = [];
  const queued: string[] = [];
  let changed = true;
  while (changed) {
    changed = false;
    for (const j of jobs) {
      if (j.state.status !== 'created') continue;
      const d = pipeline?.cancel_requested
        ? 'cancel'
        : decideJob(j.spec, (id) => byId.get(id)?.state, (id) => byId.get(id)?.spec);
      if (d === null) continue;
      changed = true;
      if (d === 'cancel') j.state = { ...j.state, status: 'canceled' };
      else if (d === 'skip') j.state = { ...j.state, status: 'skipped' };
      else if (d === 'manual') j.state = { ...j.state, status: 'manual' };
      else {
        j.state = { ...j.state, status: 'pending', attempt: j.state.attempt + 1 };
        queued.push(j.id);
      }
      events.push(stateEvent(pipelineId, j.id, j.state, at, d === 'cancel' ? { reason: 'canceled' } : {}));
    }
  }
  const moving = jobs.some((j) => j.state.status === 'pending' || j.state.status === 'running');
  const open = pipeline && !['success', 'failed', 'canceled', 'skipped', 'manual'].includes(pipeline.status);
  if (!moving && open) {
    const status = pipeline.cancel_requested ? 'canceled' : settledPipelineStatus(jobs.map((j) => j.spec), (id) => byId.get(id)!.state);
    events.push({ type: 'pipeline.finished', at, pipelineId, status });
  }
  await record(tx, events);
  await markQueued(tx, queued, at);
  return events;
}

/** Records a new pipeline (its pipeline.started event) and queues its first jobs. */
export async function createPipeline(db: Db, started: PipelineStarted): Promise<{ number: number; events: RunEvent[] }> {
  return db.transaction(async (tx) => {
    const { started: rec } = await new RunRecorder(tx).apply([started]);
    const events = await advance(tx, started.pipelineId, started.at);
    return { number: rec[0]?.number ?? (await tx.query<{ number: number }>('SELECT number FROM pipelines WHERE id = $1', [started.pipelineId]))[0]!.number, events: [started, ...events] };
  });
}

export interface Lease {
  jobId: string;
  pipelineId: string;
  /** The fencing token: every later call about this job must name it. */
  attempt: number;
  job: PlannedJob;
  leaseExpiresAt: Date;
}

/**
 * Gives the oldest ready job whose tags are all among `tags` to `runnerId`, or null when there is
 * none. Never blocks on, or hands out, a job another runner is taking at the same moment.
 */
export async function lease(db: Db, runner: { id: string; tags: string[]; leaseMs: number }, at = Date.now()): Promise<{ lease: Lease | null; events: RunEvent[] }> {
  return db.transaction(async (tx) => {
    const [row] = await tx.query<{ id: string; pipeline_id: string; attempt: number; spec: PlannedJob; lease_expires_at: Date }>(
      `UPDATE jobs SET lease_owner = $1, lease_expires_at = $3::timestamptz + make_interval(secs => $4::double precision / 1000)
       WHERE id = (
         SELECT id FROM jobs
         WHERE status = 'pending' AND coalesce(spec -> 'tags', '[]'::jsonb) <@ $2::jsonb
           -- deploy jobs are carried out by the delivery controller (takeDeployJobs), never a runner
           AND (spec -> 'deploy') IS NULL
         ORDER BY queued_at, position
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
       RETURNING id, pipeline_id, attempt, spec, lease_expires_at`,
      [runner.id, JSON.stringify(runner.tags), new Date(at).toISOString(), runner.leaseMs],
    );
    if (!row) return { lease: null, events: [] };
    const events: RunEvent[] = [stateEvent(row.pipeline_id, row.id, { status: 'running', attempt: row.attempt, allowedFailure: false }, at)];
    await record(tx, events);
    return { lease: { jobId: row.id, pipelineId: row.pipeline_id, attempt: row.attempt, job: row.spec, leaseExpiresAt: row.lease_expires_at }, events };
  });
}

/** The lease owner of deploy jobs: their outcome is reported by the delivery controller. */
export const DELIVERY_OWNER = 'delivery';

/**
 * Hands ready deploy jobs to the delivery controller: each is marked running under
 * DELIVERY_OWNER with a lease that never expires (the release it becomes has its own owner), and
 * `onTaken` is called inside the same transaction so the release is created with it or not at all.
 */
export async function takeDeployJobs<T>(db: Db, onTaken: (tx: Db, l: Lease) => Promise<T>, at = Date.now()): Promise<{ taken: T[]; events: RunEvent[] }> {
  return db.transaction(async (tx) => {
    const rows = await tx.query<{ id: string; pipeline_id: string; attempt: number; spec: PlannedJob; lease_expires_at: Date }>(
      `UPDATE jobs SET lease_owner = $1, lease_expires_at = 'infinity'
       WHERE id IN (
         SELECT id FROM jobs WHERE status = 'pending' AND (spec -> 'deploy') IS NOT NULL
         ORDER BY queued_at, position LIMIT 20 FOR UPDATE SKIP LOCKED)
       RETURNING id, pipeline_id, attempt, spec, lease_expires_at`,
      [DELIVERY_OWNER],
    );
    const events: RunEvent[] = rows.map((r) => stateEvent(r.pipeline_id, r.id, { status: 'running', attempt: r.attempt, allowedFailure: false }, at));
    await record(tx, events);
    const taken: T[] = [];
    for (const r of rows) taken.push(await onTaken(tx, { jobId: r.id, pipelineId: r.pipeline_id, attempt: r.attempt, job: r.spec, leaseExpiresAt: r.lease_expires_at }));
    return { taken, events };
  });
}

export type HeartbeatAnswer = 'ok' | 'cancel' | 'lost';

/** Extends a lease. 'cancel': stop the job (the pipeline or job was canceled). 'lost': the lease
 * is gone (expired and reaped, or another attempt runs now): stop and report nothing. */
export async function heartbeat(db: Db, h: { jobId: string; attempt: number; runnerId: string; leaseMs: number }, at = Date.now()): Promise<HeartbeatAnswer> {
  const [row] = await db.query<{ cancel_requested: boolean }>(
    `UPDATE jobs SET lease_expires_at = $4::timestamptz + make_interval(secs => $5::double precision / 1000)
     WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running'
     RETURNING cancel_requested`,
    [h.jobId, h.attempt, h.runnerId, new Date(at).toISOString(), h.leaseMs],
  );
  if (!row) return 'lost';
  return row.cancel_requested ? 'cancel' : 'ok';
}

/**
 * The end of an attempt, as reported by its runner. Rejected (accepted: false, nothing changes)
 * unless it comes from the lease holder of the job's current attempt.
 */
export async function complete(
  db: Db,
  c: { jobId: string; attempt: number; runnerId: string; outcome: AttemptOutcome },
  at = Date.now(),
): Promise<{ accepted: boolean; events: RunEvent[] }> {
  return db.transaction(async (tx) => {
    const [row] = await tx.query<{ pipeline_id: string }>(
      "SELECT pipeline_id FROM jobs WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running'",
      [c.jobId, c.attempt, c.runnerId],
    );
    if (!row) return { accepted: false, events: [] };
    const events = await settle(tx, row.pipeline_id, c.jobId, c.outcome, at);
    return { accepted: true, events };
  });
}

/** Records how an attempt ended (retrying it when its policy says so), then advances the pipeline. */
async function settle(tx: Db, pipelineId: string, jobId: string, outcome: AttemptOutcome, at: number): Promise<RunEvent[]> {
  const jobs = await lockPipelineJobs(tx, pipelineId);
  const job = jobs.find((j) => j.id === jobId)!;
  const attempt = job.state.attempt;
  const extra = { exitCode: outcome.exitCode, reason: outcome.reason };
  const events: RunEvent[] = [];
  const queued: string[] = [];
  if (outcome.status === 'canceled') {
    events.push(stateEvent(pipelineId, jobId, { status: 'canceled', attempt, allowedFailure: false }, at, { ...extra, reason: 'canceled' }));
  } else if (outcome.status === 'success') {
    events.push(stateEvent(pipelineId, jobId, { status: 'success', attempt, allowedFailure: false }, at, extra));
  } else if (shouldRetry(job.spec, attempt, outcome)) {
    events.push(stateEvent(pipelineId, jobId, { status: 'failed', attempt, allowedFailure: false }, at, extra));
    events.push(stateEvent(pipelineId, jobId, { status: 'pending', attempt: attempt + 1, allowedFailure: false }, at));
    queued.push(jobId);
  } else {
    events.push(stateEvent(pipelineId, jobId, { status: 'failed', attempt, allowedFailure: isAllowedFailure(job.spec, outcome.exitCode) }, at, extra));
  }
  await tx.query('UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1', [jobId]);
  await record(tx, events);
  await markQueued(tx, queued, at);
  return [...events, ...(await advance(tx, pipelineId, at))];
}

/**
 * Fails (or retries, per policy) every running job whose lease ran out: its runner stopped
 * heart-beating. Safe to run from every replica at once.
 */
export async function reapExpiredLeases(db: Db, at = Date.now()): Promise<RunEvent[]> {
  return db.transaction(async (tx) => {
    const expired = await tx.query<{ id: string; pipeline_id: string; attempt: number; lease_owner: string | null }>(
      `SELECT id, pipeline_id, attempt, lease_owner FROM jobs
       WHERE status = 'running' AND lease_expires_at < $1::timestamptz
       ORDER BY lease_expires_at FOR UPDATE SKIP LOCKED`,
      [new Date(at).toISOString()],
    );
    const events: RunEvent[] = [];
    for (const j of expired) {
      const note: RunEvent = { type: 'job.log', at, pipelineId: j.pipeline_id, jobId: j.id, attempt: j.attempt, stream: 'system', text: `\nferry: runner lost: ${j.lease_owner ?? 'the runner'} stopped heart-beating; this attempt is failed\n` };
      await record(tx, [note]);
      events.push(note, ...(await settle(tx, j.pipeline_id, j.id, { status: 'failed', exitCode: null, reason: 'runner_system_failure' as FailureReason }, at)));
    }
    return events;
  });
}

/** Plays a manual job: it is queued now, and what waits for it follows as it passes. */
export async function play(db: Db, jobId: string, at = Date.now()): Promise<{ played: boolean; events: RunEvent[] }> {
  return db.transaction(async (tx) => {
    const [row] = await tx.query<{ pipeline_id: string }>('SELECT pipeline_id FROM jobs WHERE id = $1', [jobId]);
    if (!row) return { played: false, events: [] };
    const jobs = await lockPipelineJobs(tx, row.pipeline_id);
    const job = jobs.find((j) => j.id === jobId)!;
    if (job.state.status !== 'manual') return { played: false, events: [] };
    const events: RunEvent[] = [stateEvent(row.pipeline_id, jobId, { status: 'pending', attempt: job.state.attempt + 1, allowedFailure: false }, at)];
    // A pipeline that had settled waiting for this job is running again.
    await tx.query("UPDATE pipelines SET status = 'running', finished_at = NULL WHERE id = $1", [row.pipeline_id]);
    await record(tx, events);
    await markQueued(tx, [jobId], at);
    return { played: true, events };
  });
}

/**
 * Cancels a pipeline: waiting jobs are canceled at once; running jobs are told to stop through
 * their next heartbeat and the pipeline ends as canceled when the last of them has stopped.
 */
export async function cancelPipeline(db: Db, pipelineId: string, at = Date.now()): Promise<RunEvent[]> {
  return db.transaction(async (tx) => {
    await tx.query('UPDATE pipelines SET cancel_requested = true WHERE id = $1', [pipelineId]);
    await tx.query("UPDATE jobs SET cancel_requested = true WHERE pipeline_id = $1 AND status = 'running'", [pipelineId]);
    const jobs = await lockPipelineJobs(tx, pipelineId);
    const events: RunEvent[] = [];
    for (const j of jobs) {
      if (FINAL_JOB_STATUSES.has(j.state.status) || j.state.status === 'running' || j.state.status === 'created') continue;
      events.push(stateEvent(pipelineId, j.id, { ...j.state, status: 'canceled' }, at, { reason: 'canceled' }));
    }
    await tx.query("UPDATE jobs SET lease_owner = NULL, queued_at = NULL WHERE pipeline_id = $1 AND status IN ('pending', 'manual')", [pipelineId]);
    await record(tx, events);
    return [...events, ...(await advance(tx, pipelineId, at))];
  });
}
