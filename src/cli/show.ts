// `ferry show [N]`: one pipeline: its commit, each job with status and duration, test results.
import type { Command } from 'commander';
import { formatFailures } from '../reports/format.js';
import { getPipelineReports } from '../store/reports.js';
import { renderTable } from './history.js';
import { findPipeline, withRepoStore } from './store-access.js';
import { paint } from './view/ansi.js';
import { useColor } from './view/index.js';
import { formatDuration, pipelineMark, shortSha, statusMark, testsText, type JobModel } from './view/model.js';

export function registerShow(program: Command): void {
  program
    .command('show')
    .description('Show a pipeline: its jobs, their results and durations, and failed tests.')
    .argument('[pipeline]', 'pipeline number (default: the latest)')
    .option('-C, --dir <dir>', 'a folder inside the repository', process.cwd())
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  ferry show          the latest pipeline\n  ferry show 12       pipeline #12\n  ferry show --json')
    .action(async (ref: string | undefined, opts: { dir: string; json?: boolean }) => {
      await withRepoStore(opts.dir, async (s) => {
        const pipeline = await findPipeline(s, ref);
        const reports = await getPipelineReports(s.db, pipeline.id);
        if (opts.json) {
          const { configText: _omit, ...rest } = pipeline;
          process.stdout.write(JSON.stringify({ ...rest, reports }, null, 2) + '\n');
          return;
        }
        const color = useColor(process.stdout, process.env);
        const p = paint(color);
        const mark = pipelineMark(pipeline.status, p);
        const ref2 = pipeline.tag ? `tag ${pipeline.tag}` : (pipeline.branch ?? 'detached');
        const took = pipeline.durationMs === null ? '' : ` in ${formatDuration(pipeline.durationMs)}`;
        const out: string[] = [
          `${mark.icon} pipeline #${pipeline.number} ${mark.label}${took}`,
          p.dim(`  ${ref2} @ ${shortSha(pipeline.sha)} · ${pipeline.source} · ${pipeline.createdAt.toISOString().replace('T', ' ').slice(0, 19)} UTC`),
          '',
        ];
        const byJob = new Map(reports.map((r) => [r.jobId, r]));
        const rows = pipeline.jobs.map((j) => {
          const m = statusMark(j as unknown as JobModel, p);
          const r = byJob.get(j.id);
          const notes: string[] = [];
          if (j.attempt > 1) notes.push(`attempt ${j.attempt}`);
          if (j.status === 'failed' && j.failureReason) notes.push(j.failureReason === 'script_failure' ? `exit ${j.exitCode}` : j.failureReason.replace(/_/g, ' '));
          if (j.logTruncated) notes.push('log truncated (FERRY_LOG_LIMIT)');
          if (r) notes.push(testsText({ tests: r.tests, failures: r.failures, errors: r.errors, skipped: r.skipped, timeMs: r.timeMs, cases: [] }));
          return [`${m.icon} ${j.name}`, j.stage, m.label, j.durationMs === null ? '' : formatDuration(j.durationMs), notes.join(' · ')];
        });
        out.push(renderTable(['JOB', 'STAGE', 'STATUS', 'DURATION', ''], rows).trimEnd());
        for (const r of reports) {
          if (r.failedCases.length === 0) continue;
          out.push('', p.bold(`Failed tests in ${r.jobName}:`));
          out.push(formatFailures({ tests: r.tests, failures: r.failures, errors: r.errors, skipped: r.skipped, timeMs: r.timeMs, cases: r.failedCases }, { color, max: 10, indent: '  ' }).trimEnd());
        }
        const failed = pipeline.jobs.filter((j) => j.status === 'failed' && !j.allowedFailure);
        if (failed.length) out.push('', p.dim(`Logs: ${failed.map((j) => `ferry logs ${pipeline.number} ${JSON.stringify(j.name)}`).join(' · ')}`));
        const manual = pipeline.jobs.filter((j) => j.status === 'manual');
        if (manual.length) out.push('', `Waiting: ${manual.map((j) => `ferry play ${JSON.stringify(j.name)} --pipeline ${pipeline.number}`).join(' · ')}`);
        process.stdout.write(out.join('\n') + '\n');
      });
    });
}
