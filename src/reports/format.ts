// Failed and errored tests of a report, for a terminal.
import type { TestCase, TestReport } from './types.js';

export interface FormatFailuresOptions {
  /** ANSI colors (red cross, bold name, dim file and details). */
  color: boolean;
  /** Most tests listed; past it "… and N more". Default 10. */
  max?: number;
  /** Lines of `details` shown under each message. Default 6. */
  detailLines?: number;
  /** Prefix for every line (e.g. two spaces to nest under a job). Default ''. */
  indent?: string;
}

const ESC = '\u001b[';
const paint = (on: boolean, code: string, s: string) => (on ? `${ESC}${code}m${s}${ESC}0m` : s);

/**
 * ```
 * ✗ cart › rejects negative quantities (test/cart.test.mjs:21)
 *     quantity must be >= 0
 *     RangeError: quantity must be >= 0
 *         at TestContext.<anonymous> (file:///…/cart.test.mjs:21:11)
 * … and 3 more failed tests
 * ```
 * Returns '' when nothing failed.
 */
export function formatFailures(report: TestReport, opts: FormatFailuresOptions): string {
  const max = opts.max ?? 10;
  const detailLines = opts.detailLines ?? 6;
  const ind = opts.indent ?? '';
  const c = opts.color;
  const failed = report.cases.filter((t) => t.status === 'failed' || t.status === 'error');
  if (failed.length === 0) return '';
  const out: string[] = [];
  for (const t of failed.slice(0, Math.max(0, max))) {
    const title = caseTitle(t);
    const where = t.file ? ` ${paint(c, '2', `(${t.file}${t.line ? `:${t.line}` : ''})`)}` : '';
    const tag = t.status === 'error' ? paint(c, '33', ' [error]') : '';
    out.push(`${ind}${paint(c, '31', '✗')} ${paint(c, '1', title)}${tag}${where}`);
    const msgLines = (t.message ?? '').split('\n').filter((l) => l.trim() !== '');
    for (const l of msgLines.slice(0, MESSAGE_LINES)) out.push(`${ind}    ${paint(c, '31', l)}`);
    if (msgLines.length > MESSAGE_LINES) out.push(`${ind}    ${paint(c, '31', '…')}`);
    if (t.details && detailLines > 0) {
      const lines = t.details.split('\n');
      // Skip leading details lines that only repeat the message or the test's id (PHPUnit).
      const seen = new Set(msgLines.map((m) => m.trim()));
      const id = `::${t.name.split(' ')[0]}`;
      while (lines.length && (lines[0]!.trim() === '' || seen.has(lines[0]!.trim()) || (t.name && lines[0]!.includes(id)))) {
        lines.shift();
      }
      for (const l of lines.slice(0, detailLines)) out.push(`${ind}    ${paint(c, '2', l.trimEnd())}`);
      if (lines.length > detailLines) out.push(`${ind}    ${paint(c, '2', '…')}`);
    }
  }
  if (failed.length > max) {
    const n = failed.length - max;
    out.push(`${ind}… and ${n} more failed test${n === 1 ? '' : 's'}`);
  }
  return out.join('\n') + '\n';
}

const MESSAGE_LINES = 3;

/** Suite or class names that producers write without meaning (pytest, Node, mocha, jest). */
const GENERIC_GROUPS = new Set(['', 'pytest', 'test', 'suite', 'Root Suite', 'jest tests', 'Mocha Tests']);

/**
 * `group › name`: the suite, or the classname where the suite name says nothing (pytest's
 * "pytest"); the name alone when the producer already put the group into it (jest, mocha).
 */
export function caseTitle(t: TestCase): string {
  const group = [t.suite, t.classname].find((g) => !GENERIC_GROUPS.has(g));
  if (!group || group === t.name || t.name.startsWith(`${group} `)) return t.name;
  return `${group} › ${t.name}`;
}
