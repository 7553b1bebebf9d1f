// `ferry play <job>`: run a manual job of a recorded pipeline (and what waits on it), in the
// pipeline's own commit, with the artifacts of the jobs it needs from that pipeline.
import type { Command } from 'commander';
import { parseConfig } from '../config/load.js';
import { ConfigError } from '../config/types.js';
import { EventBus } from '../events/bus.js';
import type { JobStatus, RunEvent } from '../pipeline/events.js';
import { basename } from 'node:path';
import { commitInfo } from '../pipeline/git.js';
import { pipelineVariables } from '../pipeline/variables.js';
import type { PlannedJob } from '../pipeline/plan.js';
import { defaultConcurrency, executeLocalRun, localPipelineStarted, type LocalRunContext } from '../pipeline/run-local.js';
import type { JobState, Scheduler } from '../pipeline/scheduler.js';
import { startRecording } from './recording.js';
import { CliError, EXIT } from './exit-codes.js';
import { positiveInt } from './options.js';
import { findPipeline, withRepoStore } from './store-access.js';
import { createView, pickViewMode, useColor } from './view/index.js';

interface PlayOptions {
  dir: string;
  pipeline?: string;
  concurrency: number;
  json?: boolean;
}

export function registerPlay(program: Command): void {
  program
    .command('play')
    .description('Run a manual job of a pipeline, then the jobs that were waiting for it.')
    .argument('<job>', 'the manual job (its name, or the name in ferry.yml for all its matrix jobs)')
    .option('-C, --dir <dir>', 'a folder inside the repository', process.cwd())
    .option('-p, --pipeline <number>', 'which pipeline (default: the latest)')
    .option('-j, --concurrency <n>', 'jobs running at once', positiveInt, defaultConcurrency())
    .option('--json', 'print events as JSON lines')
    .addHelpText('after', '\nExamples:\n  ferry play package\n  ferry play deploy --pipeline 12\n\nExit codes: 0 passed, 1 failed, 3 nothing to play, 130 interrupted.')
    .action(async (name: string, opts: PlayOptions) => {
      process.exitCode = await playCommand(name, opts);
    });
}

export async function playCommand(name: string, opts: PlayOptions): Promise<number> {
  // Read what the earlier run recorded, then close the store: ingesting this run reopens it.
  const { ctx, initial, play, number } = await withRepoStore(opts.dir, async (s) => {
    const pipeline = await findPipeline(s, opts.pipeline);
    const targets = pipeline.jobs.filter((j) => j.name === name || (j.spec as PlannedJob | null)?.baseName === name);
    if (targets.length === 0) {
      throw new CliError(`pipeline #${pipeline.number} has no job \`${name}\`; its jobs: ${pipeline.jobs.map((j) => j.name).join(', ')}`, EXIT.USAGE);
    }
    const waiting = targets.filter((j) => j.status === 'manual');
    if (waiting.length === 0) {
      throw new CliError(`\`${name}\` of pipeline #${pipeline.number} is ${targets[0].status}, not a manual job waiting to be played`, EXIT.ENVIRONMENT);
    }
    const { config, issues } = parseConfig(pipeline.configText, 'ferry.yml');
    if (!config) throw new ConfigError(issues);
    const commit = { ...(await commitInfo(s.repoRoot, pipeline.sha)), branch: pipeline.branch, tag: pipeline.tag };
    const ctx: LocalRunContext = {
      pipelineId: pipeline.id,
      commit,
      config,
      configText: pipeline.configText,
      plan: { stages: config.stages, jobs: pipeline.jobs.map((j) => j.spec as PlannedJob) },
      home: s.home,
      predefined: pipelineVariables({ commit, pipelineId: pipeline.id, source: 'local', projectDir: commit.repoRoot, projectName: basename(commit.repoRoot) }),
    };
    const initial = new Map<string, JobState>(pipeline.jobs.map((j) => [j.id, { status: j.status, attempt: j.attempt, allowedFailure: j.allowedFailure }]));
    return { ctx, initial, play: new Set(waiting.map((j) => j.id)), number: pipeline.number };
  });

  const bus = new EventBus<RunEvent>();
  const mode = pickViewMode({ json: !!opts.json, stream: process.stdout });
  const view = createView(mode, { out: process.stdout, color: useColor(process.stdout, process.env) });
  bus.subscribe((e) => view.onEvent(e));
  // The view learns the pipeline as it stands; the store has it already, so the recording
  // subscribes only after these.
  bus.emit(localPipelineStarted(ctx, 'local'));
  for (const [jobId, st] of initial) {
    if (st.status !== 'created') bus.emit({ type: 'job.state', at: Date.now(), pipelineId: ctx.pipelineId, jobId, status: st.status as JobStatus, attempt: st.attempt, allowedFailure: st.allowedFailure || undefined });
  }
  const recording = await startRecording({ home: ctx.home, newPipeline: false });
  bus.subscribe((e) => recording.push(e));

  let scheduler: Scheduler | undefined;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    scheduler?.cancel();
  };
  process.on('SIGINT', onSignal);
  let status;
  try {
    status = await executeLocalRun({ ctx, bus, concurrency: opts.concurrency, initial, play, onScheduler: (s) => (scheduler = s), onProcess: (jobId, pid) => recording.noteProcess(jobId, pid) });
    bus.emit({ type: 'pipeline.finished', at: Date.now(), pipelineId: ctx.pipelineId, status });
  } finally {
    view.close();
    process.off('SIGINT', onSignal);
  }
  await recording.finish();
  if (mode !== 'json') process.stdout.write(`Recorded in pipeline #${number}: \`ferry show ${number}\`.\n`);
  if (interrupted || status === 'canceled') return EXIT.INTERRUPTED;
  return status === 'failed' ? EXIT.FAILED : EXIT.OK;
}
