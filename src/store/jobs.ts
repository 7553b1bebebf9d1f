// The jobs aggregate: planned jobs, their current state, and one row per attempt.
import type { FailureReason, JobStatus } from '../pipeline/events.js';
import { iso, toJson, type Db } from './db.js';

export interface JobRow {
  id: string;
  pipelineId: string;
  /** Place in the plan. */
  position: number;
  name: string;
  stage: string;
  needs: string[];
  when: string;
  allowFailure: boolean;
  /** The planned job as recorded at pipeline start (for `ferry play`). */
  spec: unknown;
  status: JobStatus;
  /** Current attempt, 1-based; 0 before the first attempt. */
  attempt: number;
  exitCode: number | null;
  failureReason: FailureReason | null;
  allowedFailure: boolean;
  /** Of the current attempt. */
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  workspace: string | null;
  /** The current attempt's log was cut at the per-job limit (the job kept running). */
  logTruncated: boolean;
}

export interface AttemptRow {
  jobId: string;
  number: number;
  status: JobStatus;
  exitCode: number | null;
  reason: FailureReason | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  logTruncated: boolean;
}

// -- writes (used by the recorder) ----------------------------------------------------------

export interface NewJob {
  id: string;
  name: string;
  stage: string;
  needs: string[];
  when: string;
  allowFailure: boolean;
  spec: unknown;
}

/** Inserts a pipeline's planned jobs (status created) in one statement. */
export async function insertJobs(db: Db, pipelineId: string, jobs: NewJob[]): Promise<void> {
  if (jobs.length === 0) return;
  await db.query(
    `INSERT INTO jobs (id, pipeline_id, position, name, stage, needs, when_, allow_failure, spec)
     SELECT x.id, $1, x.position, x.name, x.stage, coalesce(x.needs, '[]'), x.when_, x.allow_failure, x.spec
     FROM jsonb_to_recordset($2::jsonb) AS x(id text, position int, name text, stage text, needs jsonb, when_ text, allow_failure boolean, spec jsonb)`,
    [
      pipelineId,
      toJson(
        jobs.map((j, i) => ({
          id: j.id,
          position: i,
          name: j.name,
          stage: j.stage,
          needs: j.needs,
          when_: j.when,
          allow_failure: j.allowFailure,
          spec: j.spec ?? null,
        })),
      ),
    ],
  );
}

/**
 * The net effect of a batch's job.state events on one job row. The row mirrors the job's last
 * event; startedAt is the start of the current attempt when that start is in this batch (else
 * null and the stored start is kept, see the SQL).
 */
export interface JobPatch {
  id: string;
  status: JobStatus;
  attempt: number;
  exitCode: number | null;
  reason: FailureReason | null;
  allowedFailure: boolean;
  workspace: string | null;
  startedAt: number | null;
  finishedAt: number | null;
}

/** Applies patches in one statement; returns the ids of the jobs that exist, with their pipeline. */
export async function patchJobs(db: Db, patches: JobPatch[]): Promise<Map<string, string>> {
  if (patches.length === 0) return new Map();
  const rows = await db.query<{ id: string; pipeline_id: string }>(
    `UPDATE jobs AS j SET
       status = x.status,
       attempt = x.attempt,
       exit_code = x.exit_code,
       failure_reason = x.failure_reason,
       allowed_failure = x.allowed_failure,
       workspace = coalesce(x.workspace, j.workspace),
       -- the flag is the current attempt's: a new attempt starts with a whole log
       log_truncated = j.log_truncated AND j.attempt = x.attempt,
       started_at = CASE
         WHEN x.status IN ('created', 'pending', 'manual') THEN NULL
         WHEN x.started_at IS NOT NULL AND NOT (j.status = 'running' AND j.attempt = x.attempt) THEN x.started_at
         WHEN j.attempt = x.attempt THEN j.started_at
         ELSE x.started_at END,
       finished_at = x.finished_at
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, status text, attempt int, exit_code int, failure_reason text,
                                            allowed_failure boolean, workspace text, started_at timestamptz, finished_at timestamptz)
     WHERE j.id = x.id
     RETURNING j.id, j.pipeline_id`,
    [
      toJson(
        patches.map((p) => ({
          id: p.id,
          status: p.status,
          attempt: p.attempt,
          exit_code: p.exitCode,
          failure_reason: p.reason,
          allowed_failure: p.allowedFailure,
          workspace: p.workspace,
          started_at: iso(p.startedAt),
          finished_at: iso(p.finishedAt),
        })),
      ),
    ],
  );
  return new Map(rows.map((r) => [r.id, r.pipeline_id]));
}

export interface AttemptPatch {
  jobId: string;
  number: number;
  status: JobStatus;
  exitCode: number | null;
  reason: FailureReason | null;
  /** First `running` of this attempt in the batch (null keeps the stored one). */
  startedAt: number | null;
  finishedAt: number | null;
}

/** Creates or updates attempt rows in one statement. A final attempt is never turned back to running. */
export async function upsertAttempts(db: Db, patches: AttemptPatch[]): Promise<void> {
  if (patches.length === 0) return;
  await db.query(
    `INSERT INTO job_attempts AS a (job_id, number, status, exit_code, reason, started_at, finished_at)
     SELECT x.job_id, x.number, x.status, x.exit_code, x.reason, x.started_at, x.finished_at
     FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, number int, status text, exit_code int, reason text,
                                            started_at timestamptz, finished_at timestamptz)
     ON CONFLICT (job_id, number) DO UPDATE SET
       status = excluded.status,
       exit_code = excluded.exit_code,
       reason = excluded.reason,
       started_at = coalesce(a.started_at, excluded.started_at),
       finished_at = excluded.finished_at
     WHERE NOT (excluded.status = 'running' AND a.finished_at IS NOT NULL)`,
    [
      toJson(
        patches.map((p) => ({
          job_id: p.jobId,
          number: p.number,
          status: p.status,
          exit_code: p.exitCode,
          reason: p.reason,
          started_at: iso(p.startedAt),
          finished_at: iso(p.finishedAt),
        })),
      ),
    ],
  );
}

/** The attempts whose log was cut at the per-job limit; the job row too while it is their attempt. */
export async function markLogsTruncated(db: Db, attempts: { jobId: string; attempt: number }[]): Promise<void> {
  if (attempts.length === 0) return;
  const json = toJson(attempts.map((a) => ({ job_id: a.jobId, number: a.attempt })));
  await db.query(
    `UPDATE job_attempts AS a SET log_truncated = true
     FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, number int)
     WHERE a.job_id = x.job_id AND a.number = x.number`,
    [json],
  );
  await db.query(
    `UPDATE jobs AS j SET log_truncated = true
     FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, number int)
     WHERE j.id = x.job_id AND j.attempt = x.number`,
    [json],
  );
}

// -- reads ----------------------------------------------------------------------------------

interface DbJobRow {
  id: string;
  pipeline_id: string;
  position: number;
  name: string;
  stage: string;
  needs: string[];
  when_: string;
  allow_failure: boolean;
  spec: unknown;
  status: JobStatus;
  attempt: number;
  exit_code: number | null;
  failure_reason: FailureReason | null;
  allowed_failure: boolean;
  started_at: Date | null;
  finished_at: Date | null;
  workspace: string | null;
  log_truncated: boolean;
}

const duration = (s: Date | null, f: Date | null) => (s && f ? f.getTime() - s.getTime() : null);

function toJob(r: DbJobRow): JobRow {
  return {
    id: r.id,
    pipelineId: r.pipeline_id,
    position: r.position,
    name: r.name,
    stage: r.stage,
    needs: r.needs ?? [],
    when: r.when_,
    allowFailure: r.allow_failure,
    spec: r.spec,
    status: r.status,
    attempt: r.attempt,
    exitCode: r.exit_code,
    failureReason: r.failure_reason,
    allowedFailure: r.allowed_failure,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: duration(r.started_at, r.finished_at),
    workspace: r.workspace,
    logTruncated: r.log_truncated ?? false,
  };
}

/** A pipeline's jobs in plan order. */
export async function listJobs(db: Db, pipelineId: string): Promise<JobRow[]> {
  return (await db.query<DbJobRow>('SELECT * FROM jobs WHERE pipeline_id = $1 ORDER BY position', [pipelineId])).map(toJob);
}

export async function getJob(db: Db, jobId: string): Promise<JobRow | null> {
  const [row] = await db.query<DbJobRow>('SELECT * FROM jobs WHERE id = $1', [jobId]);
  return row ? toJob(row) : null;
}

/** A job of a pipeline by name. */
export async function findJob(db: Db, pipelineId: string, name: string): Promise<JobRow | null> {
  const [row] = await db.query<DbJobRow>('SELECT * FROM jobs WHERE pipeline_id = $1 AND name = $2 ORDER BY position LIMIT 1', [pipelineId, name]);
  return row ? toJob(row) : null;
}

/** A job's attempts, first to last. */
export async function listAttempts(db: Db, jobId: string): Promise<AttemptRow[]> {
  const rows = await db.query<{
    job_id: string;
    number: number;
    status: JobStatus;
    exit_code: number | null;
    reason: FailureReason | null;
    started_at: Date | null;
    finished_at: Date | null;
    log_truncated: boolean;
  }>('SELECT * FROM job_attempts WHERE job_id = $1 ORDER BY number', [jobId]);
  return rows.map((r) => ({
    jobId: r.job_id,
    number: r.number,
    status: r.status,
    exitCode: r.exit_code,
    reason: r.reason,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: duration(r.started_at, r.finished_at),
    logTruncated: r.log_truncated ?? false,
  }));
}
