// What every view needs to know about a run, folded from RunEvents: jobs in stage order, their
// status, attempts and times, whole log lines (chunks reassembled), the tail of each job's log,
// and JUnit reports. Views render from this; they never keep their own copy of job state.
import type { FailureReason, JobStatus, PipelineStatus, RunEvent } from '../../pipeline/events.js';
import { FINAL_JOB_STATUSES } from '../../pipeline/events.js';
import type { TestReport } from '../../reports/types.js';
import { mergeReports } from '../../reports/summary.js';
import type { Paint } from './ansi.js';

export const TAIL_LINES = 20;

export interface JobModel {
  id: string;
  name: string;
  stage: string;
  /** Position of the job in the plan, to keep plan order inside a stage. */
  order: number;
  when: string;
  status: JobStatus;
  attempt: number;
  /** 1 + retry.max from the planned job, when the spec says; else 1. */
  maxAttempts: number;
  allowedFailure: boolean;
  exitCode?: number | null;
  reason?: FailureReason;
  /** First time the job started running (any attempt). */
  startedAt?: number;
  /** When the current (or last) attempt started running. */
  attemptStartedAt?: number;
  finishedAt?: number;
  /** Last TAIL_LINES whole lines of the current attempt's output, all streams. */
  tail: string[];
  reports: { file: string; report: TestReport }[];
}

export interface LogLine {
  job: JobModel;
  stream: 'stdout' | 'stderr' | 'system';
  text: string;
  at: number;
}

export interface PipelineModel {
  id: string;
  /** How people name it: `#12` once numbered, else the start of its id. */
  label: string;
  branch: string | null;
  tag: string | null;
  sha: string;
  startedAt: number;
  finishedAt?: number;
  status: PipelineStatus;
}

export interface Counts {
  total: number;
  passed: number;
  failed: number;
  allowedFailures: number;
  canceled: number;
  skipped: number;
  manual: number;
  running: number;
  waiting: number;
}

/** What one event changed, for views that print per change. */
export interface Change {
  job?: JobModel;
  /** Status before the event, for job.state. */
  previous?: JobStatus;
  /** Whole log lines completed by this event (or flushed because the job's attempt ended). */
  lines: LogLine[];
}

export class RunModel {
  pipeline?: PipelineModel;
  readonly jobs = new Map<string, JobModel>();
  private stageOrder: string[] = [];
  private readonly partial = new Map<string, { job: JobModel; stream: LogLine['stream']; text: string }>();

  apply(e: RunEvent): Change {
    switch (e.type) {
      case 'pipeline.started': {
        this.pipeline = {
          id: e.pipelineId,
          label: e.number !== undefined ? `#${e.number}` : e.pipelineId.slice(0, 8),
          branch: e.branch,
          tag: e.tag,
          sha: e.sha,
          startedAt: e.at,
          status: 'running',
        };
        const stageIndex = new Map<string, number>();
        e.jobs.forEach((j, i) => {
          const spec = (j.spec ?? {}) as { retry?: { max?: unknown }; stageIndex?: unknown };
          const max = typeof spec.retry?.max === 'number' ? spec.retry.max : 0;
          if (typeof spec.stageIndex === 'number' && !stageIndex.has(j.stage)) stageIndex.set(j.stage, spec.stageIndex);
          const existing = this.jobs.get(j.jobId);
          this.jobs.set(j.jobId, {
            ...(existing ?? { status: 'created', attempt: 0, allowedFailure: false, tail: [], reports: [] }),
            id: j.jobId,
            name: j.name,
            stage: j.stage,
            order: i,
            when: j.when,
            maxAttempts: 1 + max,
          });
          if (!this.stageOrder.includes(j.stage)) this.stageOrder.push(j.stage);
        });
        // Stage order from the plan's stage indexes where given, else first appearance.
        const first = new Map(this.stageOrder.map((s, i) => [s, i]));
        this.stageOrder.sort((a, b) => (stageIndex.get(a) ?? first.get(a)!) - (stageIndex.get(b) ?? first.get(b)!) || first.get(a)! - first.get(b)!);
        return { lines: [] };
      }
      case 'job.state': {
        const job = this.job(e.jobId);
        const previous = job.status;
        const lines: LogLine[] = [];
        if (e.status === 'running' && (previous !== 'running' || e.attempt !== job.attempt)) {
          if (e.attempt > 1 || job.attemptStartedAt !== undefined) job.tail = [];
          job.attemptStartedAt = e.at;
          job.startedAt ??= e.at;
          job.finishedAt = undefined;
          job.exitCode = undefined;
          job.reason = undefined;
        }
        if (FINAL_JOB_STATUSES.has(e.status)) {
          lines.push(...this.flush(job, e.at));
          job.finishedAt = e.at;
        }
        job.status = e.status;
        job.attempt = Math.max(job.attempt, e.attempt);
        if (job.attempt > job.maxAttempts) job.maxAttempts = job.attempt;
        if (e.exitCode !== undefined) job.exitCode = e.exitCode;
        if (e.reason !== undefined) job.reason = e.reason;
        job.allowedFailure = e.status === 'failed' && e.allowedFailure === true;
        return { job, previous, lines };
      }
      case 'job.log': {
        const job = this.job(e.jobId);
        return { job, lines: this.push(job, e.stream, e.text, e.at) };
      }
      case 'job.report': {
        const job = this.job(e.jobId);
        job.reports.push({ file: e.file, report: e.report });
        return { job, lines: [] };
      }
      case 'pipeline.finished': {
        const lines: LogLine[] = [];
        for (const job of this.jobs.values()) lines.push(...this.flush(job, e.at));
        if (!this.pipeline) {
          this.pipeline = { id: e.pipelineId, label: e.pipelineId.slice(0, 8), branch: null, tag: null, sha: '', startedAt: e.at, status: e.status };
        }
        this.pipeline.status = e.status;
        this.pipeline.finishedAt = e.at;
        return { lines };
      }
    }
  }

  /** Jobs grouped by stage, stages in plan order, jobs in plan order inside a stage. */
  stages(): { stage: string; jobs: JobModel[] }[] {
    const stages = [...this.stageOrder];
    for (const j of this.jobs.values()) if (!stages.includes(j.stage)) stages.push(j.stage);
    return stages
      .map((stage) => ({ stage, jobs: [...this.jobs.values()].filter((j) => j.stage === stage).sort((a, b) => a.order - b.order) }))
      .filter((s) => s.jobs.length > 0);
  }

  /** Jobs in display order (stage, then plan order). */
  orderedJobs(): JobModel[] {
    return this.stages().flatMap((s) => s.jobs);
  }

  counts(): Counts {
    const c: Counts = { total: 0, passed: 0, failed: 0, allowedFailures: 0, canceled: 0, skipped: 0, manual: 0, running: 0, waiting: 0 };
    for (const j of this.jobs.values()) {
      c.total++;
      if (j.status === 'success') c.passed++;
      else if (j.status === 'failed') j.allowedFailure ? c.allowedFailures++ : c.failed++;
      else if (j.status === 'canceled') c.canceled++;
      else if (j.status === 'skipped') c.skipped++;
      else if (j.status === 'manual') c.manual++;
      else if (j.status === 'running') c.running++;
      else c.waiting++;
    }
    return c;
  }

  /** Every JUnit report of the run, merged; undefined when there was none. */
  tests(): TestReport | undefined {
    const all = [...this.jobs.values()].flatMap((j) => j.reports.map((r) => r.report));
    return all.length ? mergeReports(all) : undefined;
  }

  /** Jobs that failed the pipeline (not allowed failures). */
  failedJobs(): JobModel[] {
    return this.orderedJobs().filter((j) => j.status === 'failed' && !j.allowedFailure);
  }

  private job(id: string): JobModel {
    let job = this.jobs.get(id);
    if (!job) {
      // An event for a job the pipeline.started event did not list (or no pipeline.started).
      job = { id, name: id, stage: '', order: this.jobs.size, when: 'on_success', status: 'created', attempt: 0, maxAttempts: 1, allowedFailure: false, tail: [], reports: [] };
      this.jobs.set(id, job);
    }
    return job;
  }

  private push(job: JobModel, stream: LogLine['stream'], text: string, at: number): LogLine[] {
    const key = `${job.id}\u0000${stream}`;
    const buffered = (this.partial.get(key)?.text ?? '') + text;
    const parts = buffered.split('\n');
    const rest = parts.pop()!;
    if (rest) this.partial.set(key, { job, stream, text: rest });
    else this.partial.delete(key);
    return parts.map((p) => this.line(job, stream, p.endsWith('\r') ? p.slice(0, -1) : p, at));
  }

  private flush(job: JobModel, at: number): LogLine[] {
    const out: LogLine[] = [];
    for (const [key, p] of this.partial) {
      if (p.job !== job) continue;
      this.partial.delete(key);
      out.push(this.line(job, p.stream, p.text, at));
    }
    return out;
  }

  private line(job: JobModel, stream: LogLine['stream'], text: string, at: number): LogLine {
    job.tail.push(text);
    if (job.tail.length > TAIL_LINES) job.tail.splice(0, job.tail.length - TAIL_LINES);
    return { job, stream, text, at };
  }
}

// ---- formatting shared by the views --------------------------------------------------------

/** 0.4s, 12.3s, 1m 05s, 1h 02m. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** HH:MM:SS.mmm in local time. */
export function formatClock(at: number): string {
  const d = new Date(at);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** "attempt 2 of 3" when the job can be or was retried, else ''. */
export function attemptText(job: JobModel): string {
  return job.maxAttempts > 1 || job.attempt > 1 ? `attempt ${job.attempt} of ${Math.max(job.maxAttempts, job.attempt)}` : '';
}

/** Duration of the current/last attempt, or of the whole job with `total`. */
export function jobDuration(job: JobModel, now: number, total = false): number | undefined {
  const start = total ? job.startedAt : job.attemptStartedAt;
  if (start === undefined) return undefined;
  return (job.status === 'running' ? now : (job.finishedAt ?? now)) - start;
}

/** "exit 1", "timed out", ... for a failed job, '' when there is nothing to say. */
export function failureDetail(job: JobModel): string {
  switch (job.reason) {
    case 'job_execution_timeout':
      return 'timed out';
    case 'runner_system_failure':
      return 'runner failure';
    case 'canceled':
      return 'canceled';
    default:
      return job.exitCode !== undefined && job.exitCode !== null ? `exit ${job.exitCode}` : '';
  }
}

/** "5 jobs: 2 passed, 1 failed, 1 skipped, 1 manual". */
export function countsText(c: Counts): string {
  const parts: string[] = [];
  if (c.passed) parts.push(`${c.passed} passed`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.allowedFailures) parts.push(`${c.allowedFailures} allowed to fail`);
  if (c.canceled) parts.push(`${c.canceled} canceled`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (c.manual) parts.push(`${c.manual} manual`);
  if (c.running) parts.push(`${c.running} running`);
  if (c.waiting) parts.push(`${c.waiting} waiting`);
  return `${c.total} job${c.total === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/** "tests: 40 passed, 2 failed, 1 error, 3 skipped". */
export function testsText(r: TestReport): string {
  const passed = r.tests - r.failures - r.errors - r.skipped;
  const parts = [`${passed} passed`];
  if (r.failures) parts.push(`${r.failures} failed`);
  if (r.errors) parts.push(`${r.errors} error${r.errors === 1 ? '' : 's'}`);
  if (r.skipped) parts.push(`${r.skipped} skipped`);
  return `tests: ${parts.join(', ')}`;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 8);
}

/** Icon and word for a job's status; `spinner` replaces the icon of a running job. */
export function statusMark(job: JobModel, p: Paint, spinner?: string): { icon: string; label: string } {
  switch (job.status) {
    case 'created':
      return { icon: p.dim('·'), label: p.dim('waiting') };
    case 'pending':
      return job.attempt > 1 ? { icon: p.yellow('↻'), label: p.yellow('retrying') } : { icon: p.dim('◦'), label: p.dim('queued') };
    case 'running':
      return { icon: p.cyan(spinner ?? '▶'), label: p.cyan('running') };
    case 'manual':
      return { icon: p.yellow('⏸'), label: p.yellow('manual') };
    case 'success':
      return { icon: p.green('✓'), label: p.green('passed') };
    case 'failed':
      return job.allowedFailure
        ? { icon: p.yellow('⚠'), label: p.yellow('failed (allowed)') }
        : { icon: p.red('✗'), label: p.red('failed') };
    case 'canceled':
      return { icon: p.yellow('⊘'), label: p.yellow('canceled') };
    case 'skipped':
      return { icon: p.dim('○'), label: p.dim('skipped') };
  }
}

export function pipelineMark(status: PipelineStatus, p: Paint): { icon: string; label: string } {
  switch (status) {
    case 'success':
      return { icon: p.green('✓'), label: p.green('passed') };
    case 'failed':
      return { icon: p.red('✗'), label: p.red('failed') };
    case 'canceled':
      return { icon: p.yellow('⊘'), label: p.yellow('canceled') };
    case 'manual':
      return { icon: p.yellow('⏸'), label: p.yellow('waiting for a manual job') };
    case 'skipped':
      return { icon: p.dim('○'), label: p.dim('skipped') };
    default:
      return { icon: p.cyan('▶'), label: p.cyan(status) };
  }
}
