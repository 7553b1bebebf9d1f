// Problems printed the way compilers print them, so editors and terminals can jump to them:
//   ferry.yml:12:5: error: unknown key `scirpt` in job `build`
//      12 |     scirpt: make
//         |     ^
//     hint: did you mean `script`?

import { readFileSync } from 'node:fs';
import type { ConfigIssue } from './types.js';

export interface FormatOptions {
  color: boolean;
  /** The file's text by file name (or the text of the only file); read from disk when absent. */
  source?: string | Record<string, string>;
}

const paint = (on: boolean, code: string, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

function sourceOf(file: string, opts: FormatOptions, cache: Map<string, string[] | null>): string[] | null {
  if (!cache.has(file)) {
    let text: string | undefined;
    if (typeof opts.source === 'string') text = opts.source;
    else if (opts.source) text = opts.source[file];
    if (text === undefined) {
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        text = undefined;
      }
    }
    cache.set(file, text === undefined ? null : text.split(/\r?\n/));
  }
  return cache.get(file) ?? null;
}

export function formatIssues(issues: ConfigIssue[], opts: FormatOptions): string {
  const c = opts.color;
  const cache = new Map<string, string[] | null>();
  const out: string[] = [];
  for (const i of issues) {
    out.push(`${paint(c, '1', `${i.pos.file}:${i.pos.line}:${i.pos.col}:`)} ${paint(c, '1;31', 'error:')} ${paint(c, '1', i.message)}`);
    const lines = sourceOf(i.pos.file, opts, cache);
    const line = lines?.[i.pos.line - 1];
    if (line !== undefined) {
      const num = String(i.pos.line);
      const gutter = ' '.repeat(num.length);
      // Tabs stay tabs under the caret so it lines up whatever the terminal's tab width.
      const pad = line.slice(0, i.pos.col - 1).replace(/[^\t]/g, ' ');
      out.push(`${paint(c, '34', ` ${num} |`)} ${line}`);
      out.push(`${paint(c, '34', ` ${gutter} |`)} ${pad}${paint(c, '1;32', '^')}`);
    }
    if (i.hint) {
      const [first, ...rest] = i.hint.split('\n');
      out.push(`  ${paint(c, '1;36', 'hint:')} ${first}`);
      for (const r of rest) out.push(`        ${r}`);
    }
  }
  if (issues.length > 0) {
    const files = [...new Set(issues.map((i) => i.pos.file))].join(', ');
    out.push(paint(c, '1', `${issues.length} ${issues.length === 1 ? 'error' : 'errors'} in ${files}`));
  }
  return out.join('\n') + (out.length ? '\n' : '');
}
