// NDJSON for machines: every RunEvent as it is, one per line, then a summary object after
// pipeline.finished.
import type { JobStatus, PipelineStatus, RunEvent } from '../../pipeline/events.js';
import { RunModel, jobDuration } from './model.js';
import type { RunView, ViewOptions } from './types.js';

export interface RunSummary {
  type: 'summary';
  pipelineId: string;
  status: PipelineStatus;
  durationMs: number;
  jobs: {
    jobId: string;
    name: string;
    stage: string;
    status: JobStatus;
    attempt: number;
    allowedFailure: boolean;
    exitCode: number | null;
    durationMs: number | null;
  }[];
  counts: ReturnType<RunModel['counts']>;
  tests: { tests: number; failures: number; errors: number; skipped: number } | null;
}

export class JsonView implements RunView {
  private readonly model = new RunModel();
  private closed = false;

  constructor(private readonly opts: ViewOptions) {}

  onEvent(e: RunEvent): void {
    if (this.closed) return;
    this.model.apply(e);
    this.opts.out.write(JSON.stringify(e) + '\n');
    if (e.type === 'pipeline.finished') this.opts.out.write(JSON.stringify(this.summary(e.at)) + '\n');
  }

  close(): void {
    this.closed = true;
  }

  summary(at: number): RunSummary {
    const m = this.model;
    const pipe = m.pipeline!;
    const t = m.tests();
    return {
      type: 'summary',
      pipelineId: pipe.id,
      status: pipe.status,
      durationMs: (pipe.finishedAt ?? at) - pipe.startedAt,
      jobs: m.orderedJobs().map((j) => ({
        jobId: j.id,
        name: j.name,
        stage: j.stage,
        status: j.status,
        attempt: j.attempt,
        allowedFailure: j.allowedFailure,
        exitCode: j.exitCode ?? null,
        durationMs: jobDuration(j, at, true) ?? null,
      })),
      counts: m.counts(),
      tests: t ? { tests: t.tests, failures: t.failures, errors: t.errors, skipped: t.skipped } : null,
    };
  }
}
