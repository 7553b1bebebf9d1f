// `ferry scan`'s engine: which files of a folder to read, and where in them the rules of
// rules.ts find a secret. Findings carry a redacted excerpt only: the scan's output ends up in
// job logs, and a scanner must not be the thing that leaks the key.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { git } from '../pipeline/git.js';
import { IGNORE_FILE, parseIgnore } from './ignore.js';
import { RULES, type Rule } from './rules.js';

/** Larger files are generated or data, not where people paste keys; reading them costs. */
export const MAX_FILE_BYTES = 1024 * 1024;
/** A NUL byte among the first bytes means a binary file (git's own test). */
const BINARY_SNIFF_BYTES = 8 * 1024;
/** On the line of a finding, this marks it as a known false positive. */
export const ALLOW_MARKER = 'ferry-scan:allow';
/** Folders a scan outside git never enters: git's own, dependencies, Ferry's runs. */
const WALK_SKIPS = new Set(['.git', 'node_modules', '.ferry']);
/** Files read at once. */
const READ_CONCURRENCY = 16;

export interface Finding {
  /** Relative to the scanned folder, with `/`. */
  file: string;
  line: number;
  /** 1-based, in characters. */
  column: number;
  rule: string;
  description: string;
  /** The secret's first four characters and `…`; never more. */
  excerpt: string;
}

export interface ScanResult {
  /** The scanned folder, absolute. */
  root: string;
  /** How the files were chosen: git's list (tracked and untracked-not-ignored), or a walk. */
  source: 'git' | 'walk';
  scanned: number;
  skipped: { binary: number; large: number; ignored: number; unreadable: number };
  /** Findings passed over because their line carries `ferry-scan:allow`. */
  allowed: number;
  findings: Finding[];
}

export function redact(secret: string): string {
  return `${[...secret].slice(0, 4).join('')}…`;
}

const compiled = new WeakMap<Rule, RegExp>();
function globalPattern(rule: Rule): RegExp {
  let re = compiled.get(rule);
  if (!re) compiled.set(rule, (re = new RegExp(rule.pattern.source, `${rule.pattern.flags.replace(/[gdy]/g, '')}gd`)));
  return re;
}

/** The secrets in one file's text. Exported for tests and for scanning text that is not a file. */
export function scanText(text: string, file: string, rules: Rule[] = RULES): { findings: Finding[]; allowed: number } {
  const lower = text.toLowerCase();
  const hits: { start: number; secretStart: number; end: number; rule: Rule; secret: string }[] = [];
  for (const rule of rules) {
    if (!rule.keywords.some((k) => lower.includes(k))) continue;
    for (const m of text.matchAll(globalPattern(rule))) {
      const group = m.findIndex((g, i) => i > 0 && g !== undefined);
      const [secretStart, end] = m.indices![group > 0 ? group : 0]!;
      const secret = m[group > 0 ? group : 0]!;
      if (rule.accept && !rule.accept(secret, text.slice(m.index, secretStart))) continue;
      // Rules run most specific first: a GitHub token in `token = "..."` is reported once, as such.
      if (hits.some((h) => secretStart < h.end && h.secretStart < end)) continue;
      // A finding points at the match without the line break or indentation it may start with.
      hits.push({ start: m.index! + m[0].length - m[0].trimStart().length, secretStart, end, rule, secret });
    }
  }
  if (hits.length === 0) return { findings: [], allowed: 0 };

  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const lineOf = (offset: number) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const findings: Finding[] = [];
  let allowed = 0;
  for (const h of hits) {
    const first = lineOf(h.start);
    const last = lineOf(h.secretStart);
    // The marker may sit on any line from the match's start to the secret's (a key's header line).
    const span = text.slice(lineStarts[first], lineStarts[last + 1] ?? text.length);
    if (span.includes(ALLOW_MARKER)) {
      allowed++;
      continue;
    }
    const column = [...text.slice(lineStarts[first], h.start)].length + 1;
    findings.push({ file, line: first + 1, column, rule: h.rule.id, description: h.rule.description, excerpt: redact(h.secret) });
  }
  findings.sort((a, b) => a.line - b.line || a.column - b.column);
  return { findings, allowed };
}

/** The files to look at: git's (tracked, and untracked but not ignored) in a repository, else a walk. */
async function listFiles(root: string): Promise<{ files: string[]; source: ScanResult['source'] }> {
  try {
    const out = await git(root, ['ls-files', '-z', '--cached', '--others', '--exclude-standard']);
    // A file both staged and changed is listed once per state.
    return { files: [...new Set(out.split('\0').filter(Boolean))], source: 'git' };
  } catch {
    // Not a repository (or no git): every file but the usual heavy or private folders.
  }
  const files: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() && !WALK_SKIPS.has(e.name)) await walk(path);
      else if (e.isFile()) files.push(path);
    }
  };
  await walk('');
  return { files, source: 'walk' };
}

type FileOutcome = { kind: 'text'; text: string } | { kind: 'binary' | 'large' | 'unreadable' | 'gone' };

async function readCandidate(path: string): Promise<FileOutcome> {
  try {
    // lstat: a symbolic link is not followed (it may point out of the folder); a submodule's
    // folder in git's list is not a file.
    const s = await lstat(path);
    if (!s.isFile()) return { kind: 'gone' };
    if (s.size > MAX_FILE_BYTES) return { kind: 'large' };
    const buf = await readFile(path);
    if (buf.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return { kind: 'binary' };
    return { kind: 'text', text: buf.toString('utf8') };
  } catch (err) {
    // Tracked but deleted in the working tree: nothing to scan.
    return { kind: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unreadable' };
  }
}

export async function scanDirectory(root: string, rules: Rule[] = RULES): Promise<ScanResult> {
  const { files, source } = await listFiles(root);
  const ignoreText = await readFile(join(root, IGNORE_FILE), 'utf8').catch(() => '');
  const ignored = parseIgnore(ignoreText);
  const result: ScanResult = { root, source, scanned: 0, skipped: { binary: 0, large: 0, ignored: 0, unreadable: 0 }, allowed: 0, findings: [] };
  const todo: string[] = [];
  for (const f of files) {
    if (ignored(f)) result.skipped.ignored++;
    else todo.push(f);
  }
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const rel = todo[next++]!;
      const got = await readCandidate(join(root, rel.split('/').join(sep)));
      if (got.kind === 'gone') continue;
      if (got.kind !== 'text') {
        result.skipped[got.kind]++;
        continue;
      }
      result.scanned++;
      const { findings, allowed } = scanText(got.text, rel, rules);
      result.findings.push(...findings);
      result.allowed += allowed;
    }
  };
  await Promise.all(Array.from({ length: READ_CONCURRENCY }, worker));
  result.findings.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
  return result;
}
