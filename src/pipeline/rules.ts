// The rules that move a pipeline forward, as pure functions of job states: which waiting job
// runs, is skipped or waits for a person; whether a failed attempt is retried or allowed; what
// the pipeline's status is. The in-memory scheduler (ferry run) and the store-driven queue
// (ferry server) both use these, so a pipeline behaves the same wherever it runs.
import type { FailureReason, JobStatus, PipelineStatus } from './events.js';
import { FINAL_JOB_STATUSES } from './events.js';
import type { PlannedJob } from './plan.js';

export interface JobState {
  status: JobStatus;
  attempt: number;
  allowedFailure: boolean;
}

export interface AttemptOutcome {
  status: 'success' | 'failed' | 'canceled';
  exitCode: number | null;
  reason?: FailureReason;
}

export function isAllowedFailure(job: PlannedJob, exitCode: number | null): boolean {
  const af = job.allowFailure;
  if (typeof af === 'boolean') return af;
  return exitCode !== null && af.exitCodes.includes(exitCode);
}

export function shouldRetry(job: PlannedJob, attempt: number, outcome: AttemptOutcome): boolean {
  if (outcome.status !== 'failed' || attempt > job.retry.max) return false;
  const reason = outcome.reason ?? 'unknown_failure';
  if (!job.retry.when.includes('always') && !(job.retry.when as string[]).includes(reason)) return false;
  if (job.retry.exitCodes.length > 0 && (outcome.exitCode === null || !job.retry.exitCodes.includes(outcome.exitCode))) return false;
  return true;
}

export type Decision = 'run' | 'skip' | 'manual' | null;

/**
 * What a job waiting in `created` should do now (null: keep waiting), GitLab's way: on_success
 * runs when nothing it waits for failed; on_failure only when something did; always regardless;
 * manual waits for a person unless it is being played. With explicit needs, a skipped need
 * skips the job; in stage order it does not.
 */
export function decideJob(job: PlannedJob, stateOf: (jobId: string) => JobState | undefined, jobOf: (jobId: string) => PlannedJob | undefined, playing = false): Decision {
  let failed = false;
  let blocked = false;
  for (const need of job.needs) {
    const dep = stateOf(need.jobId);
    if (!dep) continue; // Left out of the pipeline by rules and optional.
    if (dep.status === 'manual') {
      // Stage order treats an optional manual job as done; an explicit need waits for it.
      const depJob = jobOf(need.jobId);
      if (job.stageOrdered && depJob && isAllowedFailure(depJob, null)) continue;
      return null;
    }
    if (!FINAL_JOB_STATUSES.has(dep.status)) return null;
    if (dep.status === 'failed' && !dep.allowedFailure) failed = true;
    if (dep.status === 'canceled') failed = true;
    if (!job.stageOrdered && dep.status === 'skipped') blocked = true;
  }
  switch (job.when) {
    case 'on_success':
      return failed || blocked ? 'skip' : 'run';
    case 'on_failure':
      return failed ? 'run' : 'skip';
    case 'always':
      return 'run';
    case 'manual':
      if (failed || blocked) return 'skip';
      return playing ? 'run' : 'manual';
    default:
      return 'skip';
  }
}

/**
 * The status of a pipeline none of whose jobs can move any more: failed when a job failed that
 * was not allowed to; manual when it waits for a person (a blocking manual job, or jobs that
 * need a manual job); success otherwise.
 */
export function settledPipelineStatus(jobs: PlannedJob[], stateOf: (jobId: string) => JobState): PipelineStatus {
  let waiting = false;
  let failed = false;
  for (const job of jobs) {
    const s = stateOf(job.id);
    if (s.status === 'failed' && !s.allowedFailure) failed = true;
    if (s.status === 'created' || (s.status === 'manual' && !isAllowedFailure(job, null))) waiting = true;
  }
  if (failed) return 'failed';
  if (waiting) return 'manual';
  return 'success';
}
