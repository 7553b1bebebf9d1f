// The few ANSI sequences the terminal views need, and text measuring/cleaning helpers.

export const CSI = '\u001b[';

export const cursorUp = (n: number) => (n > 0 ? `${CSI}${n}A` : '');
export const clearLine = `${CSI}2K`;
/** Clears from the cursor to the end of the screen (not the whole screen). */
export const clearDown = `${CSI}0J`;
export const hideCursor = `${CSI}?25l`;
export const showCursor = `${CSI}?25h`;

export interface Paint {
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  blue(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
  /** An SGR color code (e.g. 36), used for per-job colors. */
  code(code: number, s: string): string;
}

export function paint(enabled: boolean): Paint {
  const wrap = (open: number, close: number) => (s: string) => (enabled && s ? `${CSI}${open}m${s}${CSI}${close}m` : s);
  return {
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    blue: wrap(34, 39),
    cyan: wrap(36, 39),
    magenta: wrap(35, 39),
    dim: wrap(2, 22),
    bold: wrap(1, 22),
    code: (code, s) => wrap(code, 39)(s),
  };
}

const JOB_COLORS = [36, 35, 34, 33, 32, 96, 95, 94, 93, 92];

/** A stable color per job name, so interleaved logs of parallel jobs are easy to tell apart. */
export function jobColor(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return JOB_COLORS[h % JOB_COLORS.length]!;
}

// CSI ... final byte, OSC ... BEL/ST, and two-byte escapes.
const ANSI_RE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;
const SGR_RE = /^\u001b\[[0-9;]*m$/;

export function stripAnsi(s: string): string {
  return s.replace(ANSI_RE, '');
}

/**
 * Makes one line of a job's output safe to print between our own lines: keeps only what a
 * terminal would finally show after carriage returns (progress bars), drops cursor movement and
 * other control characters, and keeps SGR colors only when `keepColor`.
 */
export function sanitizeLine(line: string, keepColor: boolean): string {
  const cr = line.lastIndexOf('\r', line.length - 2);
  if (cr >= 0) line = line.slice(cr + 1);
  line = line.replace(ANSI_RE, (seq) => (keepColor && SGR_RE.test(seq) ? seq : ''));
  // eslint-disable-next-line no-control-regex
  line = line.replace(/[\u0000-\u0008\u000b-\u001a\u001c-\u001f\u007f\r]/g, '');
  if (!keepColor) line = line.replace(/\u001b/g, '');
  else if (line.includes('\u001b[')) line += `${CSI}0m`;
  return line;
}

/** Visible width in terminal cells: ANSI codes are free, wide East Asian characters take 2. */
export function visibleWidth(s: string): number {
  let w = 0;
  for (const ch of stripAnsi(s)) w += charWidth(ch.codePointAt(0)!);
  return w;
}

function charWidth(cp: number): number {
  if (cp < 32 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (cp >= 0x300 && cp <= 0x36f) return 0; // combining marks
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Cuts plain text (no ANSI) to `width` cells, ending in '…' when cut. */
export function truncate(s: string, width: number): string {
  if (width <= 0) return '';
  if (visibleWidth(s) <= width) return s;
  let out = '';
  let w = 0;
  for (const ch of s) {
    const cw = charWidth(ch.codePointAt(0)!);
    if (w + cw > width - 1) break;
    out += ch;
    w += cw;
  }
  return `${out}…`;
}

/** Pads plain text (no ANSI) with spaces to `width` cells. */
export function padEnd(s: string, width: number): string {
  const w = visibleWidth(s);
  return w >= width ? s : s + ' '.repeat(width - w);
}
