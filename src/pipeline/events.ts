// What a pipeline run tells the world. The scheduler emits these on one event bus; the store
// recorder, the terminal view, and later the server's live streams, notifications and metrics
// all subscribe. Producers never know who listens.
import type { TestReport } from '../reports/types.js';

export type PipelineStatus = 'created' | 'running' | 'success' | 'failed' | 'canceled' | 'manual' | 'skipped';

/**
 * created:  planned, waiting for its needs.
 * pending:  ready, waiting for a free slot.
 * running:  an attempt is executing.
 * manual:   `when: manual`, waiting for someone to play it.
 * success | failed | canceled | skipped: final.
 */
export type JobStatus = 'created' | 'pending' | 'running' | 'manual' | 'success' | 'failed' | 'canceled' | 'skipped';

export const FINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(['success', 'failed', 'canceled', 'skipped']);

export type FailureReason =
  | 'script_failure'
  | 'job_execution_timeout'
  | 'runner_system_failure'
  /** GitLab's name for a job whose preconditions are not met (e.g. a deploy with no controller). */
  | 'unmet_prerequisites'
  /** A deploy job whose release failed, was rolled back or aborted. */
  | 'deployment_failure'
  | 'canceled'
  | 'unknown_failure';

export interface PipelineStarted {
  type: 'pipeline.started';
  at: number;
  pipelineId: string;
  /** Taken before the run when it records through the journal; else the store assigns it. */
  number?: number;
  project: string;
  sha: string;
  branch: string | null;
  tag: string | null;
  source: string;
  /** The ferry.yml text of the commit, kept so a pipeline can be replayed and shown later. */
  configText: string;
  variables: Record<string, string>;
  jobs: {
    jobId: string;
    name: string;
    stage: string;
    needs: string[];
    when: string;
    allowFailure: boolean;
    /** The planned job, JSON-serialisable, so `ferry play` can run it later without re-planning. */
    spec: unknown;
  }[];
}

export interface JobStateChanged {
  type: 'job.state';
  at: number;
  pipelineId: string;
  jobId: string;
  status: JobStatus;
  /** 1-based attempt number; 0 before the first attempt starts. */
  attempt: number;
  exitCode?: number | null;
  reason?: FailureReason;
  /** A failed job that is allowed to fail (shown as a warning, does not fail the pipeline). */
  allowedFailure?: boolean;
  /** The workspace path, for people debugging a run. */
  workspace?: string;
}

export interface JobLog {
  type: 'job.log';
  at: number;
  pipelineId: string;
  jobId: string;
  attempt: number;
  stream: 'stdout' | 'stderr' | 'system';
  /** UTF-8 text; may split a line, consumers must not assume whole lines. */
  text: string;
  /** Set on the line that ends a log cut at the per-job limit (src/executor/log-limit.ts): the
   * attempt is recorded as logTruncated. */
  truncated?: boolean;
}

export interface JobReport {
  type: 'job.report';
  at: number;
  pipelineId: string;
  jobId: string;
  attempt: number;
  kind: 'junit';
  file: string;
  report: TestReport;
}

export interface PipelineFinished {
  type: 'pipeline.finished';
  at: number;
  pipelineId: string;
  status: PipelineStatus;
}

export type RunEvent = PipelineStarted | JobStateChanged | JobLog | JobReport | PipelineFinished;
