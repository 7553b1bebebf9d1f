// Runs a ferry.yml in a real temporary git repository with the real scheduler and shell
// executor, collecting every event, for the pipeline tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../../src/events/bus.js';
import type { JobStateChanged, PipelineStatus, RunEvent } from '../../src/pipeline/events.js';
import { executeLocalRun, localPipelineStarted, prepareLocalRun, type LocalRunContext } from '../../src/pipeline/run-local.js';
import type { JobState, Scheduler } from '../../src/pipeline/scheduler.js';
import { makeRepo, type TempRepo } from '../helpers/repo.js';

export interface RunResult {
  status: PipelineStatus;
  events: RunEvent[];
  ctx: LocalRunContext;
  /** Final status of each job by name. */
  jobs: Record<string, string>;
  /** Order in which jobs entered a state, e.g. order('running'). */
  order(status: string): string[];
  /** Position of the first time `name` entered `status` among all state changes (-1: never). */
  at(name: string, status: string): number;
  /** All log text of a job (every attempt). */
  log(name: string): string;
  states(name: string): JobStateChanged[];
}

export interface RunOpts {
  concurrency?: number;
  variables?: Record<string, string>;
  home?: string;
  onScheduler?: (s: Scheduler) => void;
  initial?: Map<string, JobState>;
  play?: string[];
  ctx?: LocalRunContext;
  dirty?: boolean;
}

export async function runPipeline(repo: TempRepo, opts: RunOpts = {}): Promise<RunResult> {
  const home = opts.home ?? mkdtempSync(join(tmpdir(), 'ferry-home-'));
  const bus = new EventBus<RunEvent>();
  const events: RunEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const ctx = opts.ctx ?? (await prepareLocalRun({ dir: repo.dir, home, variables: opts.variables, dirty: opts.dirty }));
  if (!opts.ctx) bus.emit(localPipelineStarted(ctx, 'local'));
  const play = opts.play ? new Set(ctx.plan.jobs.filter((j) => opts.play!.includes(j.name)).map((j) => j.id)) : undefined;
  const status = await executeLocalRun({ ctx, bus, concurrency: opts.concurrency ?? 2, onScheduler: opts.onScheduler, initial: opts.initial, play, dirty: opts.dirty });
  bus.emit({ type: 'pipeline.finished', at: Date.now(), pipelineId: ctx.pipelineId, status });
  const nameOf = new Map(ctx.plan.jobs.map((j) => [j.id, j.name]));
  const stateEvents = events.filter((e): e is JobStateChanged => e.type === 'job.state');
  const jobs: Record<string, string> = {};
  for (const e of stateEvents) jobs[nameOf.get(e.jobId)!] = e.status;
  return {
    status,
    events,
    ctx,
    jobs,
    at: (name, status) => stateEvents.findIndex((e) => e.status === status && nameOf.get(e.jobId) === name),
    order: (status) => stateEvents.filter((e) => e.status === status).map((e) => nameOf.get(e.jobId)!),
    log: (name) =>
      events
        .filter((e) => e.type === 'job.log' && nameOf.get(e.jobId) === name)
        .map((e) => (e as { text: string }).text)
        .join(''),
    states: (name) => stateEvents.filter((e) => nameOf.get(e.jobId) === name),
  };
}

export function repoWith(yml: string, files: Record<string, string> = {}, branch?: string): TempRepo {
  return makeRepo({ 'ferry.yml': yml, ...files }, { branch });
}
