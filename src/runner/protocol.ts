// The runner protocol: what a runner and the server say to each other over HTTP. Shared by the
// server's routes and the runner's transport, and by nothing else.
import type { FailureReason } from '../pipeline/events.js';
import type { PlannedJob } from '../pipeline/plan.js';
import type { TestReport } from '../reports/types.js';

export interface LeaseRequest {
  /** How long the server may hold the request open waiting for a job (long poll). */
  waitMs: number;
  /** The runner's tags (`ferry runner --tags`): it takes jobs whose tags are all among them. */
  tags?: string[];
  /** What the runner tells about itself (shown in `ferry runners`). */
  info?: { hostname?: string; version?: string; concurrency?: number; executor?: string };
}

export interface JobLeaseWire {
  jobId: string;
  pipelineId: string;
  /** The fencing token: every later call about this job names it. */
  attempt: number;
  job: PlannedJob;
  /** Pipeline-level variables: predefined ones, trigger variables (and secrets, when allowed). */
  variables: Record<string, string>;
  /**
   * Which of `variables` are secrets: the runner masks their values (and encoded forms) in
   * everything the job writes before sending it. Absent from servers older than secrets.
   */
  secretNames?: string[];
  /** Heartbeat at least this often, or the job is taken away. */
  heartbeatMs: number;
  /**
   * Bytes of log the attempt may send (the server's --log-limit): the runner cuts there and
   * sends the chunk marked `truncated`. The server enforces it anyway. Absent from older servers.
   */
  logLimit?: number;
  /**
   * The commit's files as a base64 tar, when small (the server's INLINE_SOURCE_MAX): the
   * runner unpacks it instead of downloading `jobs/:id/source`. Absent: download it.
   */
  source?: string;
}

export interface LogChunkWire {
  stream: 'stdout' | 'stderr' | 'system';
  at: number;
  text: string;
  /** The runner cut the log here (the limit): the server ends it with its own line. */
  truncated?: boolean;
}

/** The answer to a batch of log chunks. */
export interface LogsAnswerWire {
  accepted: number;
  /** The attempt's log has been cut: send no more of it. */
  truncated?: boolean;
}

export interface OutcomeWire {
  status: 'success' | 'failed' | 'canceled';
  exitCode: number | null;
  reason?: FailureReason;
}

export interface ReportWire {
  kind: 'junit';
  file: string;
  report: TestReport;
}

export type HeartbeatWire = { answer: 'ok' | 'cancel' | 'lost' };

export const RUNNER_API = '/api/runner';
