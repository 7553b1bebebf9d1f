// The view for CI logs and pipes: append-only, one timestamped line per state change and per log
// line, each prefixed with the job's name; a summary when the pipeline finishes.
//
//   12:00:01.234 [unit] $ npm test
//   12:00:03.001 [unit] ✓ passed in 1.8s
//   12:00:03.002 [lint] ✗ failed (exit 1) in 0.4s
import type { RunEvent } from '../../pipeline/events.js';
import { formatFailures } from '../../reports/format.js';
import { jobColor, paint, sanitizeLine, padEnd, visibleWidth, type Paint } from './ansi.js';
import {
  RunModel,
  TAIL_LINES,
  attemptText,
  countsText,
  failureDetail,
  formatClock,
  formatDuration,
  jobDuration,
  pipelineMark,
  shortSha,
  statusMark,
  testsText,
  type JobModel,
  type LogLine,
} from './model.js';
import type { RunView, ViewOptions } from './types.js';

export class PlainView implements RunView {
  private readonly model = new RunModel();
  private readonly p: Paint;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: ViewOptions) {
    this.p = paint(opts.color);
    this.now = opts.now ?? Date.now;
  }

  onEvent(e: RunEvent): void {
    if (this.closed) return;
    const change = this.model.apply(e);
    for (const l of change.lines) this.logLine(l);
    switch (e.type) {
      case 'pipeline.started': {
        const ref = e.tag ? `tag ${e.tag}` : e.branch ? e.branch : 'detached HEAD';
        const stages = this.model.stages().map((s) => s.stage);
        const n = e.jobs.length;
        this.write(
          e.at,
          `${this.p.cyan('▶')} pipeline ${this.model.pipeline?.label ?? e.pipelineId.slice(0, 8)} started on ${ref} @ ${shortSha(e.sha)}: ` +
            `${n} job${n === 1 ? '' : 's'}${stages.length ? ` in ${stages.join(' → ')}` : ''}`,
        );
        break;
      }
      case 'job.state': {
        const text = this.stateText(change.job!, change.previous!);
        if (text) this.write(e.at, `${this.prefix(change.job!)} ${text}`);
        break;
      }
      case 'job.report': {
        const r = e.report;
        const mark = r.failures + r.errors > 0 ? this.p.red('✗') : this.p.green('✓');
        this.write(e.at, `${this.prefix(change.job!)} ${mark} junit ${e.file}: ${testsText(r).replace(/^tests: /, '')}`);
        break;
      }
      case 'pipeline.finished':
        this.summary(e.at);
        break;
      case 'job.log':
        break;
    }
  }

  close(): void {
    this.closed = true;
  }

  private stateText(job: JobModel, previous: string): string {
    const p = this.p;
    const attempt = attemptText(job);
    const dur = jobDuration(job, this.now());
    const took = dur !== undefined ? ` in ${formatDuration(dur)}` : '';
    switch (job.status) {
      case 'created':
        return '';
      case 'pending':
        return job.attempt > 1 ? `${p.yellow('↻')} retrying (${attempt})` : '';
      case 'running':
        return previous === 'running' ? '' : `${p.cyan('▶')} started${job.attempt > 1 ? ` (${attempt})` : ''}`;
      case 'manual':
        return `${p.yellow('⏸')} manual: waiting to be started by hand`;
      case 'success':
        return `${p.green('✓')} passed${took}${job.attempt > 1 ? ` (${attempt})` : ''}`;
      case 'failed': {
        const timedOut = job.reason === 'job_execution_timeout';
        const detail = [job.allowedFailure ? 'allowed' : '', timedOut ? '' : failureDetail(job), job.maxAttempts > 1 ? attempt : '']
          .filter(Boolean)
          .join(', ');
        const icon = job.allowedFailure ? p.yellow('⚠') : p.red('✗');
        const word = timedOut ? 'timed out' : 'failed';
        const d = detail;
        return `${icon} ${job.allowedFailure ? p.yellow(word) : p.red(word)}${d ? ` (${d})` : ''}${took}`;
      }
      case 'canceled':
        return `${p.yellow('⊘')} canceled${dur !== undefined ? ` after ${formatDuration(dur)}` : ''}`;
      case 'skipped':
        return `${p.dim('○')} skipped`;
    }
  }

  private summary(at: number): void {
    const m = this.model;
    const p = this.p;
    const pipe = m.pipeline!;
    const mark = pipelineMark(pipe.status, p);
    const total = formatDuration(at - pipe.startedAt);
    this.write(at, `${mark.icon} pipeline ${mark.label} in ${total}`);

    const jobs = m.orderedJobs();
    const out: string[] = [''];
    const nameWidth = Math.min(40, Math.max(4, ...jobs.map((j) => visibleWidth(j.name))));
    const rows = jobs.map((j) => {
      const { icon, label } = statusMark(j, p);
      let status = label;
      if (j.status === 'failed') {
        const detail = [j.allowedFailure ? 'allowed' : '', failureDetail(j)].filter(Boolean).join(', ');
        const text = `failed${detail ? ` (${detail})` : ''}`;
        status = j.allowedFailure ? p.yellow(text) : p.red(text);
      }
      const dur = jobDuration(j, at, true);
      return { j, icon, status, dur: dur !== undefined ? formatDuration(dur) : '', attempt: j.attempt > 1 ? attemptText(j) : '' };
    });
    const statusWidth = Math.max(...rows.map((r) => visibleWidth(r.status)), 6);
    const durWidth = Math.max(...rows.map((r) => r.dur.length), 0);
    for (const r of rows) {
      const line = `  ${r.icon} ${padEnd(r.j.name, nameWidth)}  ${r.status}${' '.repeat(statusWidth - visibleWidth(r.status))}  ${r.dur.padStart(durWidth)}${r.attempt ? `  ${r.attempt}` : ''}`;
      out.push(line.trimEnd());
    }
    out.push('');
    out.push(countsText(m.counts()));
    const tests = m.tests();
    if (tests) out.push(testsText(tests));
    out.push(`total ${total}`);

    if (pipe.status === 'failed') {
      for (const j of m.failedJobs()) {
        out.push('', p.bold(`── ${j.name}: last ${Math.min(TAIL_LINES, j.tail.length)} lines of the log ──`));
        if (j.tail.length === 0) out.push(p.dim('(no output)'));
        for (const l of j.tail) out.push(sanitizeLine(l, this.opts.color));
      }
    }
    if (tests && tests.failures + tests.errors > 0) {
      out.push('', p.bold('── failed tests ──'));
      out.push(formatFailures(tests, { color: this.opts.color, max: 10 }).trimEnd());
    }
    this.opts.out.write(out.join('\n') + '\n');
  }

  private logLine(l: LogLine): void {
    const text = sanitizeLine(l.text, this.opts.color);
    this.write(l.at, `${this.prefix(l.job)} ${l.stream === 'system' ? this.p.dim(text) : text}`);
  }

  private prefix(job: JobModel): string {
    return this.p.code(jobColor(job.name), `[${job.name}]`);
  }

  private write(at: number, text: string): void {
    this.opts.out.write(`${this.p.dim(formatClock(at))} ${text}\n`);
  }
}
