// `ferry history`: the pipelines of this repository, newest first.
import type { Command } from 'commander';
import { listPipelines } from '../store/pipelines.js';
import { positiveInt } from './options.js';
import { withRepoStore } from './store-access.js';
import { paint, padEnd, visibleWidth } from './view/ansi.js';
import { formatDuration, pipelineMark, shortSha } from './view/model.js';
import { useColor } from './view/index.js';

export function registerHistory(program: Command): void {
  program
    .command('history')
    .description('List the pipelines of this repository, newest first.')
    .option('-C, --dir <dir>', 'a folder inside the repository', process.cwd())
    .option('-n, --limit <n>', 'how many', positiveInt, 20)
    .option('-b, --branch <branch>', 'only this branch')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  ferry history\n  ferry history -n 50 --branch main\n  ferry history --json | jq \'.[0].status\'')
    .action(async (opts: { dir: string; limit: number; branch?: string; json?: boolean }) => {
      await withRepoStore(opts.dir, async (s) => {
        const rows = await listPipelines(s.db, { project: s.repoRoot, limit: opts.limit, branch: opts.branch });
        if (opts.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        if (rows.length === 0) {
          process.stdout.write('No pipelines yet. Run one with `ferry run`.\n');
          return;
        }
        const p = paint(useColor(process.stdout, process.env));
        const header = ['#', 'STATUS', 'REF', 'COMMIT', 'JOBS', 'STARTED', 'DURATION'];
        const table = rows.map((r) => {
          const passed = r.jobCounts.success ?? 0;
          return [
            String(r.number),
            pipelineMark(r.status, p).label,
            r.tag ?? r.branch ?? '-',
            shortSha(r.sha),
            `${passed}/${r.jobsTotal} passed`,
            r.createdAt.toISOString().replace('T', ' ').slice(0, 19),
            r.durationMs === null ? '-' : formatDuration(r.durationMs),
          ];
        });
        process.stdout.write(renderTable(header, table));
      });
    });
}

/** Left-aligned columns, widths from the content (ANSI colors not counted). */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleWidth(r[i]))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : padEnd(c, widths[i] + 2))).join('').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

