// `ferry schedule add|list|edit|pause|resume|run|remove`: a server project's pipeline schedules (cron). The server
// fires them; their pipelines have the source `schedule`, so `rules: - if: $FERRY_PIPELINE_SOURCE
// == "schedule"` picks the jobs that only nightly runs should have.
import type { Command } from 'commander';
import { api, addClientOptions, type ClientOptions } from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { renderTable } from './history.js';
import { parseVars } from './options.js';

interface ScheduleOptions extends ClientOptions {
  project: string;
}

interface ScheduleJson {
  id: number;
  cron: string;
  timezone: string;
  branch: string | null;
  description: string;
  active: boolean;
  createdBy: string;
  nextRunAt: string;
  lastRunAt: string | null;
  lastPipeline: { number: number; status: string } | null;
  lastError: string | null;
}

function schedulesPath(opts: ScheduleOptions): string {
  if (!/^\d+$/.test(opts.project)) throw new CliError(`--project takes a project id (see ferry project list), not \`${opts.project}\``, EXIT.USAGE);
  return `/api/projects/${opts.project}/schedules`;
}

function schedulePath(opts: ScheduleOptions, id: string): string {
  if (!/^\d+$/.test(id)) throw new CliError(`a schedule id is a number (see ferry schedule list), not \`${id}\``, EXIT.USAGE);
  return `${schedulesPath(opts)}/${id}`;
}

const when = (iso: string) => `${iso.replace('T', ' ').slice(0, 19)} UTC`;

function lastRun(s: ScheduleJson): string {
  if (!s.lastRunAt) return 'not yet';
  if (s.lastError) return `no pipeline: ${s.lastError}`;
  return s.lastPipeline ? `#${s.lastPipeline.number} ${s.lastPipeline.status}` : when(s.lastRunAt);
}

export function registerSchedule(program: Command): void {
  const schedule = program
    .command('schedule')
    .description("A server project's pipeline schedules: add, list, edit, pause, resume, run now, remove.")
    .addHelpText(
      'after',
      `
Examples:
  ferry schedule add "0 3 * * *" --project 1 --description nightly
  ferry schedule add "30 6 * * 1-5" --timezone Europe/Paris --branch release -v SUITE=full --project 1
  ferry schedule list --project 1
  ferry schedule edit 4 --cron "0 4 * * *" --project 1
  ferry schedule pause 4 --project 1
  ferry schedule run 4 --project 1
  ferry schedule remove 4 --project 1

Crons have five fields (minute hour day-of-month month day-of-week) or six with seconds
first, and are read in the schedule's time zone (default: the server's). Scheduled pipelines
have FERRY_PIPELINE_SOURCE=schedule. Runs missed while the server was down are made up by one
run when it starts again, not one per missed time.`,
    );

  addClientOptions(
    schedule
      .command('add')
      .description('Run the pipeline of a branch whenever the cron matches.')
      .argument('<cron>', 'when, like "0 3 * * *" (03:00 every day); quote it')
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .option('--timezone <zone>', "IANA time zone the cron is read in (default: the server's)")
      .option('--branch <branch>', "the branch or tag to run (default: the repository's HEAD)")
      .option('-v, --var <KEY=VALUE>', 'a variable of its pipelines (repeatable)', parseVars, {})
      .option('--description <text>', 'what it is for')
      .addHelpText('after', '\nExamples:\n  ferry schedule add "0 3 * * *" --project 1 --description nightly\n  ferry schedule add "*/30 * * * *" --branch main -v SUITE=smoke --project 1'),
  ).action(async (cron: string, opts: ScheduleOptions & { timezone?: string; branch?: string; var: Record<string, string>; description?: string }) => {
    const s = await api<ScheduleJson>(opts, 'POST', schedulesPath(opts), { cron, timezone: opts.timezone, branch: opts.branch, variables: opts.var, description: opts.description });
    process.stdout.write(`Schedule ${s.id} added: \`${s.cron}\` (${s.timezone}) on ${s.branch ?? 'the default branch'}; next run ${when(s.nextRunAt)}.\n`);
  });

  addClientOptions(
    schedule
      .command('list')
      .description("The project's schedules: when they run next, and how their last run went.")
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .option('--json', 'print JSON')
      .addHelpText('after', "\nExamples:\n  ferry schedule list --project 1\n  ferry schedule list --project 1 --json | jq '.[].nextRunAt'"),
  ).action(async (opts: ScheduleOptions & { json?: boolean }) => {
    const rows = await api<ScheduleJson[]>(opts, 'GET', schedulesPath(opts));
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    if (rows.length === 0) {
      process.stderr.write(`Project ${opts.project} has no schedules. Add one: ferry schedule add "0 3 * * *" --project ${opts.project}\n`);
      return;
    }
    process.stdout.write(
      renderTable(
        ['ID', 'CRON', 'TIME ZONE', 'BRANCH', 'NEXT RUN', 'LAST RUN', 'DESCRIPTION'],
        rows.map((s) => [String(s.id), s.cron, s.timezone, s.branch ?? '(default)', s.active ? when(s.nextRunAt) : 'paused', lastRun(s), s.description || '-']),
      ),
    );
  });

  addClientOptions(
    schedule
      .command('edit')
      .description('Change a schedule: only what you name changes. A new cron or time zone counts its next run from now.')
      .argument('<id>', 'the schedule (see ferry schedule list)')
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .option('--cron <cron>', 'when, like "0 3 * * *"; quote it')
      .option('--timezone <zone>', 'IANA time zone the cron is read in')
      .option('--branch <branch>', 'the branch or tag to run')
      .option('--default-branch', "run the repository's HEAD (instead of --branch)")
      .option('-v, --var <KEY=VALUE>', 'its variables: replaces them all (repeatable)', parseVars)
      .option('--no-vars', 'remove all of its variables')
      .option('--description <text>', 'what it is for')
      .addHelpText('after', '\nExamples:\n  ferry schedule edit 4 --cron "0 4 * * *" --project 1\n  ferry schedule edit 4 --branch release -v SUITE=full --project 1\n  ferry schedule edit 4 --default-branch --no-vars --project 1'),
  ).action(async (id: string, opts: ScheduleOptions & { cron?: string; timezone?: string; branch?: string; defaultBranch?: boolean; var?: Record<string, string>; vars?: boolean; description?: string }) => {
    if (opts.branch !== undefined && opts.defaultBranch) throw new CliError('give --branch or --default-branch, not both', EXIT.USAGE);
    if (opts.var && opts.vars === false) throw new CliError('give -v or --no-vars, not both', EXIT.USAGE);
    const body = {
      cron: opts.cron,
      timezone: opts.timezone,
      branch: opts.defaultBranch ? null : opts.branch,
      variables: opts.vars === false ? {} : opts.var,
      description: opts.description,
    };
    if (Object.values(body).every((v) => v === undefined)) throw new CliError('nothing to change: give --cron, --timezone, --branch, --default-branch, -v, --no-vars or --description', EXIT.USAGE);
    const s = await api<ScheduleJson>(opts, 'PATCH', schedulePath(opts, id), body);
    process.stdout.write(`Schedule ${s.id}: \`${s.cron}\` (${s.timezone}) on ${s.branch ?? 'the default branch'}; ${s.active ? `next run ${when(s.nextRunAt)}` : 'paused'}.\n`);
  });

  for (const [name, active, what] of [
    ['pause', false, 'Pause a schedule: it keeps its settings and starts no pipeline until resumed.'],
    ['resume', true, 'Resume a paused schedule, from its next time after now (missed runs are not made up).'],
  ] as const) {
    addClientOptions(
      schedule
        .command(name)
        .description(what)
        .argument('<id>', 'the schedule (see ferry schedule list)')
        .requiredOption('--project <id>', 'the project (see ferry project list)')
        .addHelpText('after', `\nExamples:\n  ferry schedule ${name} 4 --project 1`),
    ).action(async (id: string, opts: ScheduleOptions) => {
      const s = await api<ScheduleJson>(opts, 'PATCH', schedulePath(opts, id), { active });
      process.stderr.write(s.active ? `Schedule ${s.id} resumed; next run ${when(s.nextRunAt)}.\n` : `Schedule ${s.id} paused.\n`);
    });
  }

  addClientOptions(
    schedule
      .command('run')
      .description("Run a schedule's pipeline now, as its next run would; its times do not move.")
      .argument('<id>', 'the schedule (see ferry schedule list)')
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .addHelpText('after', '\nExamples:\n  ferry schedule run 4 --project 1'),
  ).action(async (id: string, opts: ScheduleOptions) => {
    const p = await api<{ pipelineId: string; number: number }>(opts, 'POST', `${schedulePath(opts, id)}/run`);
    process.stdout.write(`Pipeline #${p.number} started (${p.pipelineId}).\n`);
  });

  addClientOptions(
    schedule
      .command('remove')
      .alias('rm')
      .description('Delete a schedule: it starts no more pipelines.')
      .argument('<id>', 'the schedule (see ferry schedule list)')
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .addHelpText('after', '\nExamples:\n  ferry schedule remove 4 --project 1'),
  ).action(async (id: string, opts: ScheduleOptions) => {
    await api(opts, 'DELETE', schedulePath(opts, id));
    process.stderr.write(`Schedule ${id} removed.\n`);
  });
}
