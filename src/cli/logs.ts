// `ferry logs <pipeline> <job>`: the stored log of a job; with --project, from a Ferry server
// (and with -f followed live: ./server-logs.ts).
import type { Command } from 'commander';
import { addClientOptions, type ClientOptions } from './client.js';
import { serverLogs } from './server-logs.js';
import { findJob } from '../store/jobs.js';
import { getJobLog, getLogChunks, timedLines } from '../store/logs.js';
import { CliError, EXIT } from './exit-codes.js';
import { positiveInt } from './options.js';
import { findPipeline, withRepoStore } from './store-access.js';

export function registerLogs(program: Command): void {
  addClientOptions(program
    .command('logs')
    .description("Print the log of a job of a pipeline: of this repository's `ferry run`s, or with --project of a Ferry server's, live with -f.")
    .argument('<pipeline>', 'pipeline number, or "latest"')
    .argument('<job>', 'job name (quote names with spaces: "test: [18]")')
    .option('-C, --dir <dir>', 'a folder inside the repository', process.cwd())
    .option('-a, --attempt <n>', 'which attempt (default: the latest)', positiveInt)
    .option('-t, --timestamps', 'prefix each line with the time it was written (UTC)')
    .option('--project <id>', "read from the server (--server, --token): this project's pipeline")
    .option('-f, --follow', 'with --project: print the log as the job writes it, until it ends; exit 1 unless it passed')
    .addHelpText(
      'after',
      '\nExamples:\n  ferry logs 12 unit\n  ferry logs latest build --attempt 1\n  ferry logs 12 unit --timestamps\n  ferry logs 12 "test: [linux, 20]"\n  ferry logs latest deploy --project 1 -f --server http://ci.internal:7700 --token $FERRY_TOKEN',
    ))
    .action(async (ref: string, name: string, opts: { dir: string; attempt?: number; timestamps?: boolean; project?: string; follow?: boolean } & ClientOptions) => {
      if (opts.project !== undefined) {
        if (opts.timestamps) throw new CliError('--timestamps reads this repository\'s store; with --project, leave it out', EXIT.USAGE);
        return serverLogs(ref, name, { ...opts, project: opts.project });
      }
      if (opts.follow) throw new CliError('-f follows a job on a Ferry server: add --project <id> (and --server, --token); `ferry run` already shows its jobs live', EXIT.USAGE);
      await withRepoStore(opts.dir, async (s) => {
        const pipeline = await findPipeline(s, ref === 'latest' ? undefined : ref);
        const job = await findJob(s.db, pipeline.id, name);
        if (!job) {
          throw new CliError(`pipeline #${pipeline.number} has no job \`${name}\`; its jobs: ${pipeline.jobs.map((j) => j.name).join(', ')}`, EXIT.USAGE);
        }
        if (opts.timestamps) {
          const lines = timedLines(await getLogChunks(s.db, job.id, { attempt: opts.attempt }));
          process.stdout.write(lines.map((l) => `${l.at.toISOString()} ${l.stream === 'stderr' ? 'E' : l.stream === 'system' ? 'S' : 'O'} ${l.text}\n`).join(''));
          return;
        }
        const log = await getJobLog(s.db, job.id, { attempt: opts.attempt });
        if (!log) {
          process.stderr.write(`ferry: job \`${name}\` of pipeline #${pipeline.number} has no log${job.status === 'manual' ? ' (it waits to be played)' : ''}\n`);
          return;
        }
        process.stdout.write(log.text.endsWith('\n') || log.text === '' ? log.text : `${log.text}\n`);
      });
    });
}
