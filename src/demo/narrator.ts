// How `ferry demo` talks: plain lines, in the order things happen. On a terminal a live status
// line (what production serves, what its users see) sits under them and is redrawn a few times a
// second; elsewhere (a pipe, a CI log, a test) there are only the lines.
import { clearLine, hideCursor, paint, showCursor, type Paint, truncate } from '../cli/view/ansi.js';

export interface NarratorOptions {
  out: NodeJS.WriteStream | NodeJS.WritableStream;
  /** A terminal: color and the live status line. */
  tty: boolean;
  color: boolean;
}

export class Narrator {
  readonly p: Paint;
  private status: (() => string) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private shown = false;

  constructor(private readonly opts: NarratorOptions) {
    this.p = paint(opts.color);
  }

  /** A chapter: a blank line and a bold title. */
  heading(title: string): void {
    this.write(`\n${this.p.bold(this.p.cyan('▸'))} ${this.p.bold(title)}\n`);
  }

  line(text: string): void {
    this.write(`  ${text}\n`);
  }

  ok(text: string): void {
    this.line(`${this.p.green('✓')} ${text}`);
  }

  bad(text: string): void {
    this.line(`${this.p.red('✗')} ${text}`);
  }

  note(text: string): void {
    this.line(`${this.p.dim('·')} ${text}`);
  }

  /** Shows `render()` as the live line (terminals only) until `stopStatus`. */
  startStatus(render: () => string): void {
    if (!this.opts.tty) return;
    this.status = render;
    this.opts.out.write(hideCursor);
    this.timer ??= setInterval(() => this.redraw(), 250);
    this.timer.unref();
    this.redraw();
  }

  stopStatus(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.opts.out.write(`\r${clearLine}`);
    if (this.status) this.opts.out.write(showCursor);
    this.shown = false;
    this.status = null;
  }

  private redraw(): void {
    if (!this.status) return;
    const width = (this.opts.out as NodeJS.WriteStream).columns || 100;
    this.opts.out.write(`\r${clearLine}${this.p.dim(truncate(this.status(), width - 1))}`);
    this.shown = true;
  }

  private write(text: string): void {
    if (this.shown) this.opts.out.write(`\r${clearLine}`);
    this.opts.out.write(text);
    this.shown = false;
    if (this.status) this.redraw();
  }
}
