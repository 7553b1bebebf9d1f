// `ferry demo` (what `npm start` runs): the example service of examples/ in a fresh git
// repository, its pipeline run on this machine, its manual job played, its history shown.
// Today it shows pipelines as code; it grows into the commit-to-production tour as the server
// and the delivery controller land.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { packageRoot } from '../package-root.js';
import { listPipelines } from '../store/pipelines.js';
import { EXIT } from './exit-codes.js';
import { playCommand } from './play.js';
import { runCommand } from './run.js';
import { defaultConcurrency } from '../pipeline/run-local.js';
import { withRepoStore } from './store-access.js';
import { paint } from './view/ansi.js';
import { useColor } from './view/index.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Run the example service\'s pipeline in a new git repository: what `npm start` shows.')
    .option('--dir <dir>', 'where to create the example repository (default: a new temp folder)')
    .addHelpText('after', '\nExamples:\n  ferry demo\n  ferry demo --dir ./ferry-demo   keep the repository somewhere you choose')
    .action(async (opts: { dir?: string }) => {
      process.exitCode = await demo(opts.dir);
    });
}

async function demo(where?: string): Promise<number> {
  const p = paint(useColor(process.stdout, process.env));
  const say = (s: string) => process.stdout.write(`\n${p.bold(p.cyan('▸'))} ${p.bold(s)}\n`);
  const dir = where ? resolve(where) : mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  cpSync(join(packageRoot(), 'examples', 'sample-service'), dir, { recursive: true });
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      stdio: 'ignore',
      env: { ...process.env, GIT_AUTHOR_NAME: 'Ferry Demo', GIT_AUTHOR_EMAIL: 'demo@ferry.invalid', GIT_COMMITTER_NAME: 'Ferry Demo', GIT_COMMITTER_EMAIL: 'demo@ferry.invalid' },
    });
  git('init', '-q', '--initial-branch=main');
  git('add', '-A');
  git('commit', '-q', '-m', 'sample-service v1');

  say(`A sample service in a new git repository: ${dir}`);
  process.stdout.write('  Its ferry.yml builds it, lints it, runs its unit tests (with a JUnit report) and a matrix of\n  smoke tests, then waits for someone to play the manual `package` job.\n');
  say('ferry run: the pipeline of that commit, on this machine');
  const run = await runCommand({ dir, file: 'ferry.yml', concurrency: defaultConcurrency(), var: {} });
  if (run !== EXIT.OK) return run;

  say('ferry play package: someone plays the manual job');
  const played = await playCommand('package', { dir, concurrency: defaultConcurrency() });
  if (played !== EXIT.OK) return played;

  say('ferry history: everything was recorded');
  await withRepoStore(dir, async (s) => {
    for (const row of await listPipelines(s.db, { project: s.repoRoot })) {
      process.stdout.write(`  pipeline #${row.number}  ${row.status}  ${row.branch} @ ${row.sha.slice(0, 8)}  ${row.jobCounts.success ?? 0}/${row.jobsTotal} jobs passed\n`);
    }
  });
  say('Try it yourself');
  const ferry = `node ${join(packageRoot(), 'dist', 'src', 'cli', 'main.js')}`;
  process.stdout.write(
    [
      `  cd ${dir}`,
      `  ${ferry} show               the pipeline, its jobs and test results`,
      `  ${ferry} logs latest unit   a job's log`,
      `  edit src/greeting.js, commit, and ${ferry} run again`,
      '',
      '  Not in this demo yet: the server, remote runners and releases to environments (canary,',
      '  blue-green, rolling, with analysis and rollback); the README shows how to run them.',
      '',
    ].join('\n'),
  );
  return EXIT.OK;
}
