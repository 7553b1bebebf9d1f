#!/usr/bin/env node
// The `ferry` command. Each subcommand lives in its own file and registers itself here.
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/types.js';
import { formatIssues } from '../config/format.js';
import { NotARepositoryError } from '../pipeline/git.js';
import { NoPipelineError, PlanError } from '../pipeline/plan.js';
import { CliError, EXIT } from './exit-codes.js';
import { useColor } from './view/index.js';
import { LogLimitError } from '../executor/log-limit.js';
import { SecretError } from '../secrets/errors.js';
import { version } from './version.js';

const program = new Command('ferry')
  .description('Ferry: pipelines as code, from commit to production.')
  .version(version(), '-V, --version')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Start here:
  ferry validate            check ferry.yml and show every problem with its line and column
  ferry run                 run the pipeline of the current commit on this machine
  ferry history             past pipelines of this repository
  ferry show 3              pipeline #3: jobs, durations, test results
  ferry logs 3 unit         the log of job "unit" of pipeline #3

Environment:
  FERRY_HOME      where runs are stored (default: .ferry/ in the repository)
  DATABASE_URL    use this PostgreSQL database instead of the embedded store
  NO_COLOR        no colors in output`,
  );

type Register = (program: Command) => void;

/**
 * The files that register the top-level commands, in the order help lists them, with the
 * commands each registers. Only the file of the command being run is loaded: loading every
 * command's modules (the server, the store, the edge ...) cost a short command like `ferry run`
 * or `ferry validate` about 50 ms of its start-up. Help, and a name that is no command, load all.
 */
const COMMAND_FILES: [string[], () => Promise<Register[]>][] = [
  [['run'], async () => [(await import('./run.js')).registerRun]],
  [['validate'], async () => [(await import('./validate.js')).registerValidate]],
  [['history'], async () => [(await import('./history.js')).registerHistory]],
  [['show'], async () => [(await import('./show.js')).registerShow]],
  [['logs'], async () => [(await import('./logs.js')).registerLogs]],
  [['play'], async () => [(await import('./play.js')).registerPlay]],
  [['demo'], async () => [(await import('./demo.js')).registerDemo]],
  [['ingest'], async () => [(await import('./ingest.js')).registerIngest]],
  [['server', 'runners', 'project', 'trigger', 'runner'], async () => { const m = await import('./server.js'); return [m.registerServer, m.registerRunner]; }],
  [['secret'], async () => [(await import('./secret.js')).registerSecret]],
  [['edge'], async () => [(await import('./edge.js')).registerEdge]],
  [['audit'], async () => [(await import('./audit.js')).registerAudit]],
  [['status', 'releases', 'app-logs', 'promote', 'abort', 'rollback', 'approve'], async () => [(await import('./delivery.js')).registerDelivery]],
  [['scan'], async () => [(await import('./scan.js')).registerScan]],
  [['init'], async () => [(await import('./init.js')).registerInit]],
  [['schedule'], async () => [(await import('./schedule.js')).registerSchedule]],
];

/** The command named on the command line: the first argument that is not an option. */
const named = process.argv.slice(2).find((a) => !a.startsWith('-'));
const wanted = COMMAND_FILES.filter(([names]) => named !== undefined && names.includes(named));
for (const [, load] of wanted.length ? wanted : COMMAND_FILES) for (const register of await load()) register(program);

function fail(message: string, code: number): never {
  process.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  process.exit(code);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with their own exit code 0.
    process.exit(err.exitCode === 0 ? 0 : EXIT.USAGE);
  }
  if (err instanceof CliError) fail(`ferry: ${err.message}`, err.exitCode);
  if (err instanceof ConfigError) fail(formatIssues(err.issues, { color: useColor(process.stderr, process.env) }), EXIT.CONFIG);
  if (err instanceof PlanError) fail(`ferry: ${err.message}`, EXIT.CONFIG);
  if (err instanceof NoPipelineError) fail(`ferry: no pipeline: ${err.message}`, EXIT.OK);
  if (err instanceof LogLimitError) fail(`ferry: ${err.message}`, EXIT.USAGE);
  if (err instanceof NotARepositoryError) fail(`ferry: ${err.message}`, EXIT.ENVIRONMENT);
  // A bad FERRY_MASTER_KEY or key file at `ferry server`'s start; messages never hold key material.
  if (err instanceof SecretError) fail(`ferry: ${err.message}`, EXIT.ENVIRONMENT);
  fail(`ferry: internal error: ${(err as Error).stack ?? err}\nPlease report this with the command you ran.`, EXIT.INTERNAL);
}
