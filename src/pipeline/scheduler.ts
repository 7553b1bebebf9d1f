// Runs a planned DAG: jobs become ready when what they wait for has settled, start up to the
// concurrency limit in plan order, retry per their policy, and are skipped, made manual or
// canceled by the same rules GitLab uses. The scheduler knows nothing about how a job runs
// (runJob is given) nor who listens (events go to the bus).
import type { EventBus } from '../events/bus.js';
import type { FailureReason, PipelineStatus, RunEvent } from './events.js';
import { FINAL_JOB_STATUSES } from './events.js';
import type { PlannedJob, Plan } from './plan.js';
import { decideJob, isAllowedFailure, settledPipelineStatus, shouldRetry, type AttemptOutcome, type Decision, type JobState } from './rules.js';

export type { AttemptOutcome, JobState } from './rules.js';

export interface SchedulerOptions {
  pipelineId: string;
  plan: Plan;
  concurrency: number;
  bus: EventBus<RunEvent>;
  runJob(job: PlannedJob, attempt: number, signal: AbortSignal): Promise<AttemptOutcome>;
  /** States from an earlier run of this pipeline (resuming it to play a manual job). */
  initial?: Map<string, JobState>;
  /** Manual jobs to run rather than wait on. */
  play?: Set<string>;
  now?: () => number;
}

export class Scheduler {
  private readonly states = new Map<string, JobState>();
  private readonly byId = new Map<string, PlannedJob>();
  private readonly queue: PlannedJob[] = [];
  private running = 0;
  private canceled = false;
  private readonly abort = new AbortController();
  private finish!: (s: PipelineStatus) => void;
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? Date.now;
    for (const job of opts.plan.jobs) {
      this.byId.set(job.id, job);
      this.states.set(job.id, opts.initial?.get(job.id) ?? { status: 'created', attempt: 0, allowedFailure: false });
    }
    // A manual job being played starts over, as does everything waiting behind it.
    for (const id of opts.play ?? []) {
      const s = this.states.get(id);
      if (s && s.status === 'manual') s.status = 'created';
    }
  }

  state(jobId: string): JobState | undefined {
    return this.states.get(jobId);
  }

  /** Runs until no job can make progress; resolves with the pipeline's status. */
  run(): Promise<PipelineStatus> {
    return new Promise((resolve) => {
      this.finish = resolve;
      this.pump();
    });
  }

  /** Stops running jobs (their executors kill their processes) and cancels the rest. */
  cancel(): void {
    if (this.canceled) return;
    this.canceled = true;
    this.queue.length = 0;
    this.abort.abort();
    this.pump();
  }

  private emit(job: PlannedJob, patch: Partial<JobState>, extra: { exitCode?: number | null; reason?: FailureReason } = {}): void {
    const s = this.states.get(job.id)!;
    Object.assign(s, patch);
    this.opts.bus.emit({
      type: 'job.state',
      at: this.now(),
      pipelineId: this.opts.pipelineId,
      jobId: job.id,
      status: s.status,
      attempt: s.attempt,
      allowedFailure: s.allowedFailure || undefined,
      ...extra,
    });
  }

  private decide(job: PlannedJob): Decision {
    return decideJob(job, (id) => this.states.get(id), (id) => this.byId.get(id), this.opts.play?.has(job.id));
  }

  private pump(): void {
    if (this.canceled) {
      if (this.running > 0) return;
      for (const job of this.opts.plan.jobs) {
        const s = this.states.get(job.id)!;
        if (!FINAL_JOB_STATUSES.has(s.status)) this.emit(job, { status: 'canceled' }, { reason: 'canceled' });
      }
      return this.finish('canceled');
    }
    // Deciding one job can settle others (a skip cascades), so repeat until nothing changes.
    let changed = true;
    while (changed) {
      changed = false;
      for (const job of this.opts.plan.jobs) {
        const s = this.states.get(job.id)!;
        if (s.status !== 'created') continue;
        const d = this.decide(job);
        if (d === null) continue;
        changed = true;
        if (d === 'skip') this.emit(job, { status: 'skipped' });
        else if (d === 'manual') this.emit(job, { status: 'manual' });
        else {
          this.emit(job, { status: 'pending', attempt: s.attempt + 1 });
          this.queue.push(job);
        }
      }
    }
    while (this.running < this.opts.concurrency && this.queue.length > 0) this.start(this.queue.shift()!);
    if (this.running === 0 && this.queue.length === 0) this.finish(this.pipelineStatus());
  }

  private start(job: PlannedJob): void {
    this.running++;
    const attempt = this.states.get(job.id)!.attempt;
    this.emit(job, { status: 'running' });
    this.opts
      .runJob(job, attempt, this.abort.signal)
      .catch((err): AttemptOutcome => {
        this.opts.bus.emit({ type: 'job.log', at: this.now(), pipelineId: this.opts.pipelineId, jobId: job.id, attempt, stream: 'system', text: `ferry: ${(err as Error).stack ?? err}\n` });
        return { status: 'failed', exitCode: null, reason: 'unknown_failure' };
      })
      .then((outcome) => {
        this.running--;
        this.settle(job, attempt, outcome);
        this.pump();
      });
  }

  private settle(job: PlannedJob, attempt: number, outcome: AttemptOutcome): void {
    const extra = { exitCode: outcome.exitCode, reason: outcome.reason };
    if (outcome.status === 'canceled' || this.canceled) {
      this.emit(job, { status: 'canceled' }, { ...extra, reason: 'canceled' });
    } else if (outcome.status === 'success') {
      this.emit(job, { status: 'success', allowedFailure: false }, extra);
    } else if (shouldRetry(job, attempt, outcome)) {
      // The failed attempt is recorded, then the job goes back to the queue as a new attempt.
      this.emit(job, { status: 'failed' }, extra);
      this.emit(job, { status: 'pending', attempt: attempt + 1 });
      this.queue.push(job);
    } else {
      this.emit(job, { status: 'failed', allowedFailure: isAllowedFailure(job, outcome.exitCode) }, extra);
    }
  }

  private pipelineStatus(): PipelineStatus {
    return settledPipelineStatus(this.opts.plan.jobs, (id) => this.states.get(id)!);
  }
}
