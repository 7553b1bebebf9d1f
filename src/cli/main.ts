#!/usr/bin/env node
// The `ferry` command. Each subcommand lives in its own file and registers itself here.
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/types.js';
import { formatIssues } from '../config/format.js';
import { NotARepositoryError } from '../pipeline/git.js';
import { NoPipelineError, PlanError } from '../pipeline/plan.js';
import { CliError, EXIT } from './exit-codes.js';
import { useColor } from './view/index.js';
import { registerRun } from './run.js';
import { registerValidate } from './validate.js';
import { registerHistory } from './history.js';
import { registerShow } from './show.js';
import { registerLogs } from './logs.js';
import { registerPlay } from './play.js';
import { registerDemo } from './demo.js';
import { registerIngest } from './ingest.js';
import { registerRunner, registerServer } from './server.js';
import { registerSecret } from './secret.js';
import { registerEdge } from './edge.js';
import { registerAudit } from './audit.js';
import { registerDelivery } from './delivery.js';
import { registerScan } from './scan.js';
import { registerInit } from './init.js';
import { registerSchedule } from './schedule.js';
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

registerRun(program);
registerValidate(program);
registerHistory(program);
registerShow(program);
registerLogs(program);
registerPlay(program);
registerDemo(program);
registerIngest(program);
registerServer(program);
registerRunner(program);
registerSecret(program);
registerEdge(program);
registerAudit(program);
registerDelivery(program);
registerScan(program);
registerInit(program);
registerSchedule(program);

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
