// `ferry logs <pipeline> <job>`: the stored log of a job.
import type { Command } from 'commander';
import { findJob } from '../store/jobs.js';
import { getJobLog, getLogChunks, timedLines } from '../store/logs.js';
import { CliError, EXIT } from './exit-codes.js';
import { positiveInt } from './options.js';
import { findPipeline, withRepoStore } from './store-access.js';

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('Print the log of a job of a pipeline.')
    .argument('<pipeline>', 'pipeline number, or "latest"')
    .argument('<job>', 'job name (quote names with spaces: "test: [18]")')
    .option('-C, --dir <dir>', 'a folder inside the repository', process.cwd())
    .option('-a, --attempt <n>', 'which attempt (default: the latest)', positiveInt)
    .option('-t, --timestamps', 'prefix each line with the time it was written (UTC)')
    .addHelpText('after', '\nExamples:\n  ferry logs 12 unit\n  ferry logs latest build --attempt 1\n  ferry logs 12 unit --timestamps\n  ferry logs 12 "test: [linux, 20]"')
    .action(async (ref: string, name: string, opts: { dir: string; attempt?: number; timestamps?: boolean }) => {
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
