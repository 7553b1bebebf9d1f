// JUnit XML -> TestReport.
//
// "JUnit XML" is a family of dialects, not a standard. This parser accepts what the common
// producers really write: a `<testsuites>` root or a bare `<testsuite>` (Surefire), suites nested
// in suites (PHPUnit, Node's reporter for `describe`), test cases directly under `<testsuites>`
// (Node's reporter for top-level tests), several `<failure>`s in one case, messages only in the
// body (jest-junit, PHPUnit), `time` written as "1,234.5" (old Surefire), `file`/`line`
// attributes (pytest xunit1, jest-junit, PHPUnit, mocha), CDATA bodies and character references.
// Suite-level counts are ignored: they are often wrong, the cases are the truth.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { TestCase, TestReport } from './types.js';
import { round3, summarize } from './summary.js';
export { mergeReports } from './summary.js';

export { formatFailures, type FormatFailuresOptions } from './format.js';

/** Longest `details` / `stdout` / `stderr` kept per case, in characters. */
export const MAX_DETAILS = 8 * 1024;
/** Longest `message` kept per case, in characters. */
export const MAX_MESSAGE = 1024;

const ARRAY_TAGS = new Set([
  'testsuites',
  'testsuite',
  'testcase',
  'failure',
  'error',
  'skipped',
  'system-out',
  'system-err',
  'flakyFailure',
  'flakyError',
  'rerunFailure',
  'rerunError',
]);

const ATTRS = '@';
const TEXT = '#text';

interface XNode {
  [ATTRS]?: Record<string, string>;
  [TEXT]?: string | string[];
  [child: string]: unknown;
}

function makeParser(): XMLParser {
  return new XMLParser({
    ignoreAttributes: false,
    attributesGroupName: ATTRS,
    attributeNamePrefix: '',
    textNodeName: TEXT,
    alwaysCreateTextNode: true,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    removeNSPrefix: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    // Numeric character references (&#10; in pytest's messages, &#233;) are standard XML but
    // fast-xml-parser v5 only decodes them with this option on.
    htmlEntities: true,
    isArray: (tagName: string) => ARRAY_TAGS.has(tagName),
  });
}

/**
 * Parses one JUnit XML document. `file` names the report in error messages.
 * Throws an Error naming the file (and line, when known) for malformed XML or a document that is
 * not a JUnit report.
 */
export function parseJUnit(xml: string, file?: string): TestReport {
  const where = file ?? 'JUnit report';
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  if (xml.trim() === '') throw new Error(`${where}: empty file, expected JUnit XML`);

  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { msg, line } = valid.err;
    throw new Error(`${where}${line ? `:${line}` : ''}: malformed XML: ${explain(msg)}`);
  }

  let doc: Record<string, unknown>;
  try {
    doc = makeParser().parse(xml) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${where}: malformed XML: ${(err as Error).message}`);
  }

  const cases: TestCase[] = [];
  let timeMs: number;
  const roots = doc['testsuites'] as XNode[] | undefined;
  const bare = doc['testsuite'] as XNode[] | undefined;
  if (roots && roots.length > 0) {
    const root = roots[0]!;
    const declared = seconds(attr(root, 'time'));
    const walked = walkContainer(root, '', undefined, cases);
    timeMs = declared ?? walked;
  } else if (bare && bare.length > 0) {
    timeMs = walkSuite(bare[0]!, undefined, cases);
  } else {
    const rootName = Object.keys(doc).find((k) => !k.startsWith('?') && k !== TEXT && k !== ATTRS);
    throw new Error(
      `${where}: not a JUnit report: expected a <testsuites> or <testsuite> root element` +
        (rootName ? `, found <${rootName}>` : ''),
    );
  }
  return summarize(cases, timeMs);
}

/** Concatenates reports (e.g. one per report file of a job); counts and times add up. */
/**
 * Walks the children of `<testsuites>` or `<testsuite>`: cases and nested suites. Returns the
 * time of what it walked in ms (suite `time` attributes where given, else the sum of cases).
 */
function walkContainer(node: XNode, suite: string, file: string | undefined, out: TestCase[]): number {
  let ms = 0;
  for (const tc of children(node, 'testcase')) {
    const c = toCase(tc, suite, file);
    out.push(c);
    ms += c.timeMs;
  }
  for (const child of children(node, 'testsuite')) ms += walkSuite(child, file, out);
  // Some tools wrap groups of suites in a nested <testsuites>.
  for (const child of children(node, 'testsuites')) ms += walkContainer(child, suite, file, out);
  return ms;
}

function walkSuite(node: XNode, inheritedFile: string | undefined, out: TestCase[]): number {
  const name = attr(node, 'name') ?? '';
  const file = attr(node, 'file') || attr(node, 'filepath') || inheritedFile;
  const walked = walkContainer(node, name, file, out);
  const declared = seconds(attr(node, 'time'));
  return declared ?? walked;
}

function toCase(node: XNode, suite: string, suiteFile: string | undefined): TestCase {
  const name = attr(node, 'name') ?? '';
  const classname = attr(node, 'classname') ?? attr(node, 'class') ?? '';
  const c: TestCase = {
    suite,
    classname,
    name,
    timeMs: round3((seconds(attr(node, 'time')) ?? 0)),
    status: 'passed',
  };
  const file = attr(node, 'file') || attr(node, 'filepath') || suiteFile;
  if (file) c.file = file;
  const line = Number.parseInt(attr(node, 'line') ?? '', 10);
  if (Number.isFinite(line) && line > 0) c.line = line;

  const failures = children(node, 'failure');
  const errors = children(node, 'error');
  const skipped = children(node, 'skipped');
  const problems = [...failures, ...errors];
  if (problems.length > 0) {
    c.status = failures.length > 0 ? 'failed' : 'error';
    const messages: string[] = [];
    const bodies: string[] = [];
    for (const p of problems) {
      const body = cleanBody(text(p));
      const msg = (attr(p, 'message') ?? '').trim() || firstLine(body, c);
      if (msg && !messages.includes(msg)) messages.push(msg);
      if (body) bodies.push(body);
      const type = attr(p, 'type');
      if (type && !c.type) c.type = type;
    }
    if (messages.length) c.message = clip(messages.join('\n'), MAX_MESSAGE);
    if (bodies.length) c.details = clip(bodies.join('\n\n'), MAX_DETAILS);
  } else if (skipped.length > 0) {
    c.status = 'skipped';
    const s = skipped[0]!;
    const body = cleanBody(text(s));
    const msg = (attr(s, 'message') ?? '').trim() || firstLine(body, c);
    if (msg) c.message = clip(msg, MAX_MESSAGE);
    const type = attr(s, 'type');
    if (type) c.type = type;
  } else if (children(node, 'flakyFailure').length + children(node, 'flakyError').length > 0) {
    c.flaky = true;
  }

  const stdout = children(node, 'system-out').map(text).join('\n').trim();
  const stderr = children(node, 'system-err').map(text).join('\n').trim();
  if (stdout) c.stdout = clip(stdout, MAX_DETAILS);
  if (stderr) c.stderr = clip(stderr, MAX_DETAILS);
  return c;
}

// ---- helpers ------------------------------------------------------------------------------

/** The validator reports a cut-off file as `Invalid '["a","b"]' found.`; say what it means. */
function explain(msg: string): string {
  const m = /^Invalid '(\[[\s\S]*\])' found\.?$/.exec(msg);
  if (!m) return msg;
  try {
    const tags = JSON.parse(m[1]!) as string[];
    return `unclosed ${tags.map((t) => `<${t}>`).join(', ')} at the end (truncated file?)`;
  } catch {
    return msg;
  }
}

function children(node: XNode, tag: string): XNode[] {
  const v = node[tag];
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is XNode => typeof x === 'object' && x !== null);
}

function attr(node: XNode, name: string): string | undefined {
  const a = node[ATTRS];
  const v = a ? a[name] : undefined;
  return typeof v === 'string' ? v : v === undefined ? undefined : String(v);
}

function text(node: XNode): string {
  const t = node[TEXT];
  if (Array.isArray(t)) return t.join('');
  return typeof t === 'string' ? t : '';
}

/** Drops leading blank lines and trailing whitespace, keeps the indentation of stack traces. */
function cleanBody(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(/^\s*\n/, '').trimEnd();
}

/**
 * The first meaningful line of a failure body, for producers that put the message there.
 * PHPUnit starts its body with the test's id (`Class::method`); that line is skipped.
 */
function firstLine(body: string, c: TestCase): string {
  const lines = body.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  let i = 0;
  if (lines.length > 1 && c.name && lines[0]!.includes(`::${c.name.split(' ')[0]}`)) i = 1;
  return clip(lines[i] ?? '', MAX_MESSAGE);
}

export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}\n… [truncated ${s.length - max} characters]`;
}

/**
 * `time` in seconds -> ms. Accepts "0.5", "1,234.5" (thousands separators, old Surefire) and
 * "0,5" (a decimal comma from a localized formatter). Missing or unparseable -> undefined.
 */
export function seconds(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  let s = raw.trim().replace(/s$/, '');
  if (s === '') return undefined;
  if (/^-?\d{1,3}(,\d{3})+(\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  else if (/^-?\d+,\d+$/.test(s)) s = s.replace(',', '.');
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) return undefined;
  return round3(n * 1000);
}

