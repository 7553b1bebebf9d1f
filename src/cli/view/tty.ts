// The live view for an interactive terminal: a job tree grouped by stage, redrawn in place (ANSI
// cursor-up + clear-line, never the whole screen) at most ~10 times a second. Job output is not
// printed while the run goes on; when it finishes, the final tree stays, followed by the last
// lines of each failed job and the failed tests from JUnit reports.
//
//   ▶ pipeline 1f3c9a2e on main @ 4be1c0de · 12.3s · 2/5 jobs done
//   build
//     ✓ compile        1.2s
//   test
//     ⠹ unit           3.4s  attempt 2 of 3
//     ✗ lint           0.4s  exit 1
//   deploy
//     ⏸ release        manual
import type { RunEvent } from '../../pipeline/events.js';
import { FINAL_JOB_STATUSES } from '../../pipeline/events.js';
import { formatFailures } from '../../reports/format.js';
import { mergeReports } from '../../reports/summary.js';
import { clearDown, clearLine, cursorUp, hideCursor, paint, sanitizeLine, showCursor, truncate, visibleWidth, type Paint } from './ansi.js';
import {
  RunModel,
  TAIL_LINES,
  attemptText,
  countsText,
  failureDetail,
  formatDuration,
  jobDuration,
  pipelineMark,
  shortSha,
  statusMark,
  testsText,
  type JobModel,
} from './model.js';
import type { RunView, ViewOptions } from './types.js';

export const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/** Minimum time between two redraws. */
export const REDRAW_MS = 100;

export class TtyView implements RunView {
  private readonly model = new RunModel();
  private readonly p: Paint;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastRender = -Infinity;
  private shownLines = 0;
  private dirty = false;
  private cursorHidden = false;
  private done = false;

  constructor(private readonly opts: ViewOptions) {
    this.p = paint(opts.color);
    this.now = opts.now ?? Date.now;
  }

  onEvent(e: RunEvent): void {
    if (this.done) return;
    this.model.apply(e);
    if (e.type === 'pipeline.finished') {
      this.finish();
      return;
    }
    if (e.type === 'job.log') return; // logs change nothing in the tree; the tail is kept by the model
    this.dirty = true;
    if (this.now() - this.lastRender >= REDRAW_MS) this.render();
    this.arm();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.stopTimer();
    // Interrupted (Ctrl-C, error): leave the last state of the tree on screen.
    if (this.shownLines > 0 || this.model.jobs.size > 0) this.draw(this.frame(false));
    this.restoreCursor();
  }

  // ---- drawing -------------------------------------------------------------------------

  private finish(): void {
    this.done = true;
    this.stopTimer();
    const p = this.p;
    const m = this.model;
    this.draw(this.frame(false));
    this.restoreCursor();

    const out: string[] = [];
    const pipe = m.pipeline!;
    const mark = pipelineMark(pipe.status, p);
    out.push('', `${mark.icon} pipeline ${mark.label} in ${formatDuration(pipe.finishedAt! - pipe.startedAt)} · ${countsText(m.counts())}`);
    const tests = m.tests();
    if (tests) out.push(`  ${testsText(tests)}`);

    const width = this.width();
    for (const j of m.failedJobs()) {
      out.push('', p.bold(truncate(`── ${j.name}: last ${Math.min(TAIL_LINES, j.tail.length)} lines of the log ──`, width - 1)));
      if (j.tail.length === 0) out.push(p.dim('(no output)'));
      for (const l of j.tail) out.push(sanitizeLine(l, this.opts.color));
    }
    for (const j of m.orderedJobs()) {
      if (j.reports.length === 0) continue;
      const report = mergeReports(j.reports.map((r) => r.report));
      if (report.failures + report.errors === 0) continue;
      const files = j.reports.map((r) => r.file).join(', ');
      out.push('', p.bold(truncate(`── ${j.name}: failed tests (${files}) ──`, width - 1)));
      out.push(formatFailures(report, { color: this.opts.color, max: 10 }).trimEnd());
    }
    this.opts.out.write(out.join('\n') + '\n');
  }

  private render(): void {
    this.dirty = false;
    this.lastRender = this.now();
    this.draw(this.frame(true));
  }

  /** Replaces the previously drawn frame (cursor at its end) with `lines`. */
  private draw(lines: string[]): void {
    let s = '';
    if (!this.cursorHidden) {
      s += hideCursor;
      this.cursorHidden = true;
    }
    if (this.shownLines > 0) s += `\r${cursorUp(this.shownLines)}`;
    for (const l of lines) s += `${clearLine}${l}\n`;
    s += clearDown;
    this.shownLines = lines.length;
    this.opts.out.write(s);
  }

  private restoreCursor(): void {
    if (this.cursorHidden) this.opts.out.write(showCursor);
    this.cursorHidden = false;
  }

  private arm(): void {
    if (this.timer || this.done) return;
    this.timer = setInterval(() => {
      if (this.done) return this.stopTimer();
      const running = [...this.model.jobs.values()].some((j) => j.status === 'running');
      if (this.dirty || running) this.render();
      else this.stopTimer();
    }, REDRAW_MS);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private width(): number {
    const c = this.opts.out.columns;
    return c && c > 10 ? c : 80;
  }

  /** The tree as lines, each fitting the terminal width; `live` also fits the height. */
  frame(live: boolean): string[] {
    const m = this.model;
    const p = this.p;
    const now = this.now();
    const width = this.width() - 1; // never write into the last column (auto-wrap)
    const spinner = SPINNER[Math.floor(now / REDRAW_MS) % SPINNER.length]!;
    const stages = m.stages();
    const jobs = stages.flatMap((s) => s.jobs);
    const nameWidth = Math.max(4, ...jobs.map((j) => visibleWidth(j.name)));

    const header = (): string => {
      const pipe = m.pipeline;
      if (!pipe) return p.dim('waiting for the pipeline to start');
      const mark = pipe.finishedAt !== undefined ? pipelineMark(pipe.status, p) : { icon: p.cyan('▶'), label: '' };
      const ref = pipe.tag ?? pipe.branch ?? 'detached';
      const elapsed = formatDuration((pipe.finishedAt ?? now) - pipe.startedAt);
      const finished = jobs.filter((j) => FINAL_JOB_STATUSES.has(j.status)).length;
      const text = `pipeline ${pipe.label} on ${ref} @ ${shortSha(pipe.sha)} · ${elapsed} · ${finished}/${jobs.length} jobs done`;
      return `${mark.icon} ${p.bold(truncate(text, width - 2))}`;
    };

    const jobLine = (j: JobModel): string => {
      const { icon, label } = statusMark(j, p, spinner);
      const info: string[] = [];
      const dur = jobDuration(j, now);
      if (dur !== undefined && j.status !== 'pending') info.push(formatDuration(dur));
      if (j.status === 'manual' || j.status === 'skipped' || j.status === 'canceled' || (j.status === 'pending' && j.attempt > 1)) info.push(label);
      if (j.status === 'failed') {
        if (j.allowedFailure) info.push(label);
        const d = failureDetail(j);
        if (d) info.push(j.allowedFailure ? p.yellow(d) : p.red(d));
      }
      if (j.attempt > 1 || (j.maxAttempts > 1 && j.status === 'failed')) info.push(p.dim(attemptText(j)));
      let tail = info.join('  ');
      let room = width - 4 - (tail ? visibleWidth(tail) + 2 : 0);
      if (room < 6) {
        tail = '';
        room = width - 4;
      }
      const name = truncate(j.name, Math.min(room, nameWidth));
      const pad = tail ? ' '.repeat(Math.max(0, Math.min(room, nameWidth) - visibleWidth(name))) + '  ' : '';
      return `  ${icon} ${name}${pad}${tail}`;
    };

    const full = (): string[] => {
      const lines = [header()];
      for (const s of stages) {
        if (s.stage) lines.push(p.bold(truncate(s.stage, width)));
        for (const j of s.jobs) lines.push(jobLine(j));
      }
      return lines;
    };
    let lines = full();
    const maxLines = Math.max(3, (this.opts.out.rows ?? 24) - 1);
    if (!live || lines.length <= maxLines) return lines;

    // Too tall to redraw in place: fold stages whose jobs all finished well into one line each.
    lines = [header()];
    for (const s of stages) {
      const settled = s.jobs.every((j) => j.status === 'success' || j.status === 'skipped');
      if (settled) {
        const passed = s.jobs.filter((j) => j.status === 'success').length;
        lines.push(`${p.bold(truncate(s.stage, width - 30))} ${p.green('✓')} ${passed}/${s.jobs.length} passed`);
        continue;
      }
      if (s.stage) lines.push(p.bold(truncate(s.stage, width)));
      for (const j of s.jobs) lines.push(jobLine(j));
    }
    if (lines.length > maxLines) {
      const hidden = lines.length - (maxLines - 1);
      lines = [...lines.slice(0, maxLines - 1), p.dim(`… ${hidden} more lines`)];
    }
    return lines;
  }
}
