// `ferry run`: the pipeline of the current commit, on this machine, recorded in the store.
import type { Command } from 'commander';
import { EventBus } from '../events/bus.js';
import type { PipelineStatus, RunEvent } from '../pipeline/events.js';
import { defaultConcurrency, discardLocalRun, executeLocalRun, localPipelineStarted, prepareLocalRun } from '../pipeline/run-local.js';
import type { Scheduler } from '../pipeline/scheduler.js';
import { startRecording } from './recording.js';
import { CliError, EXIT } from './exit-codes.js';
import { parseVars, positiveInt } from './options.js';
import { createView, pickViewMode, useColor } from './view/index.js';

export interface RunCliOptions {
  dir: string;
  file: string;
  rev?: string;
  dirty?: boolean;
  concurrency: number;
  var: Record<string, string>;
  json?: boolean;
  keepWorkspaces?: boolean;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run the pipeline of a commit on this machine, as the server would, and record it.')
    .argument('[jobs...]', 'run only these jobs and the jobs they need')
    .option('-C, --dir <dir>', 'a folder inside the repository', process.cwd())
    .option('-f, --file <file>', 'the pipeline file, relative to the repository root', 'ferry.yml')
    .option('--rev <rev>', 'the commit to run (default: HEAD)')
    .option('--dirty', 'include uncommitted changes of the working tree')
    .option('-j, --concurrency <n>', 'jobs running at once', positiveInt, defaultConcurrency())
    .option('-v, --var <KEY=VALUE>', 'a pipeline variable (repeatable); wins over ferry.yml', parseVars, {})
    .option('--json', 'print events as JSON lines (for machines)')
    .option('--keep-workspaces', 'keep every job workspace under .ferry/work (default: only failed ones)')
    .addHelpText(
      'after',
      `
Examples:
  ferry run                      the whole pipeline of HEAD
  ferry run unit lint            only these jobs (and what they need)
  ferry run --dirty              include changes not yet committed
  ferry run -v DEPLOY=false -j 4 a variable, four jobs at once
  ferry run --json | jq .        machine-readable events

Exit codes: 0 passed (or waiting on a manual job), 1 failed, 2 invalid ferry.yml,
3 not a repository, 130 interrupted.`,
    )
    .action(async (jobs: string[], opts: RunCliOptions) => {
      const code = await runCommand({ ...opts, only: jobs });
      process.exitCode = code;
    });
}

export async function runCommand(opts: RunCliOptions & { only?: string[] }): Promise<number> {
  const ctx = await prepareLocalRun({ dir: opts.dir, file: opts.file, rev: opts.rev, dirty: opts.dirty, variables: opts.var, only: opts.only });
  if (ctx.plan.jobs.length === 0) {
    await discardLocalRun(ctx);
    throw new CliError('no jobs to run: the rules of every job left it out of this pipeline', EXIT.OK);
  }

  const bus = new EventBus<RunEvent>();
  const recording = await startRecording({ home: ctx.home, project: ctx.commit.repoRoot, newPipeline: true });
  bus.subscribe((e) => recording.push(e));
  const mode = pickViewMode({ json: !!opts.json, stream: process.stdout });
  const view = createView(mode, { out: process.stdout, color: useColor(process.stdout, process.env) });
  bus.subscribe((e) => view.onEvent(e));

  let scheduler: Scheduler | undefined;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('\nferry: stopping the running jobs (Ctrl-C)…\n');
    scheduler?.cancel();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let status: PipelineStatus;
  try {
    bus.emit({ ...localPipelineStarted(ctx, 'local', opts.var), number: recording.number });
    status = await executeLocalRun({
      ctx,
      bus,
      concurrency: opts.concurrency,
      dirty: opts.dirty,
      keepWorkspaces: opts.keepWorkspaces,
      onScheduler: (s) => (scheduler = s),
      onProcess: (jobId, pid) => recording.noteProcess(jobId, pid),
    });
    bus.emit({ type: 'pipeline.finished', at: Date.now(), pipelineId: ctx.pipelineId, status });
  } finally {
    view.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await recording.finish();
  const pipelineNumber = recording.number;
  if (mode !== 'json') printNextSteps(ctx.plan.jobs, status, pipelineNumber);
  if (interrupted || status === 'canceled') return EXIT.INTERRUPTED;
  return status === 'failed' ? EXIT.FAILED : EXIT.OK;
}

function printNextSteps(jobs: { name: string; when: string }[], status: PipelineStatus, n?: number): void {
  const lines: string[] = [];
  if (n !== undefined) lines.push(`Recorded as pipeline #${n}: \`ferry show ${n}\`, \`ferry logs ${n} <job>\`.`);
  if (status === 'manual' || jobs.some((j) => j.when === 'manual')) {
    const manual = jobs.filter((j) => j.when === 'manual').map((j) => j.name);
    if (manual.length) lines.push(`Manual job${manual.length > 1 ? 's' : ''} waiting: ${manual.map((m) => `\`ferry play ${m.includes(' ') ? JSON.stringify(m) : m}\``).join(', ')}.`);
  }
  if (lines.length) process.stdout.write(lines.join('\n') + '\n');
}
