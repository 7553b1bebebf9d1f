// Analysis conditions (`condition: "p99_ms < stable_p99_ms * 1.5 + 20"`): a small language parsed
// by hand, never eval'd. Comparisons of arithmetic expressions over a metric's named values,
// joined with && || and !. Evaluation is three-valued: a comparison that needs a value the
// measurement does not have (the stable version had no traffic, a division by zero) is 'unknown',
// which the analysis counts as inconclusive rather than as a pass or a failure.

/** An arithmetic expression: numbers, identifiers, + - * /, unary minus. */
export type NumExpr =
  | { kind: 'number'; value: number; offset: number }
  | { kind: 'ident'; name: string; offset: number }
  | { kind: 'neg'; operand: NumExpr; offset: number }
  | { kind: 'arith'; op: '+' | '-' | '*' | '/'; left: NumExpr; right: NumExpr; offset: number };

export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/**
 * A parsed condition: plain data (JSON-serialisable), so it can be stored with a release and
 * shown again. `offset` is 0-based into the source text, where the node starts (for a binary
 * node: where its operator is).
 */
export type Condition =
  | { kind: 'compare'; op: CompareOp; left: NumExpr; right: NumExpr; offset: number }
  | { kind: 'and' | 'or'; left: Condition; right: Condition; offset: number }
  | { kind: 'not'; operand: Condition; offset: number };

export type ParseResult = { ok: true; cond: Condition } | { ok: false; error: string; offset: number };

/** Longest condition accepted; a condition is one line of intent, not a program. */
export const MAX_CONDITION_LENGTH = 1000;
const MAX_DEPTH = 64;

type Tok =
  | { t: 'num'; value: number; text: string; at: number }
  | { t: 'id'; name: string; at: number }
  | { t: 'op'; op: string; at: number }
  | { t: 'end'; at: number };

class ParseError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const OPS = ['<=', '>=', '==', '!=', '&&', '||', '<', '>', '!', '+', '-', '*', '/', '(', ')'];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    NUMBER.lastIndex = i;
    const n = NUMBER.exec(src);
    if (n) {
      IDENT.lastIndex = NUMBER.lastIndex;
      if (IDENT.test(src)) throw new ParseError(`\`${src.slice(i, IDENT.lastIndex)}\` is neither a number nor a name`, i);
      out.push({ t: 'num', value: Number(n[0]), text: n[0], at: i });
      i = NUMBER.lastIndex;
      continue;
    }
    IDENT.lastIndex = i;
    const id = IDENT.exec(src);
    if (id) {
      const name = id[0];
      if (name === 'and' || name === 'or' || name === 'not') {
        const op = name === 'and' ? '&&' : name === 'or' ? '||' : '!';
        throw new ParseError(`use \`${op}\` instead of \`${name}\``, i);
      }
      if (name === 'true' || name === 'false') throw new ParseError(`\`${name}\` is not a value here; write a comparison like \`error_rate < 0.01\``, i);
      if (/[A-Z]/.test(name)) throw new ParseError(`names are lowercase: \`${name.toLowerCase()}\`, not \`${name}\``, i);
      out.push({ t: 'id', name, at: i });
      i = IDENT.lastIndex;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ t: 'op', op, at: i });
      i += op.length;
      continue;
    }
    if (c === '=') throw new ParseError('use `==` to compare', i);
    if (c === '&' || c === '|') throw new ParseError(`use \`${c}${c}\``, i);
    if (c === '$') throw new ParseError('names are written without `$`, like `error_rate`', i);
    if (c === '%') throw new ParseError('`%` is not supported; rates are fractions: 1% is 0.01', i);
    throw new ParseError(`unexpected character \`${c}\``, i);
  }
  out.push({ t: 'end', at: src.length });
  return out;
}

// The parser builds one tree for both kinds, then `toCondition` checks that numbers and
// conditions are used where they belong: `(a + b) * 2 < c` and `(a < 1 || b < 2) && c < 3` both
// start with a parenthesis, so the kind is known only once the parenthesis is closed.
type Node =
  | { k: 'num'; value: number; at: number }
  | { k: 'id'; name: string; at: number }
  | { k: 'neg'; operand: Node; at: number }
  | { k: 'arith'; op: '+' | '-' | '*' | '/'; left: Node; right: Node; at: number }
  | { k: 'cmp'; op: CompareOp; left: Node; right: Node; at: number }
  | { k: 'and' | 'or'; left: Node; right: Node; at: number }
  | { k: 'not'; operand: Node; at: number }
  | { k: 'paren'; inner: Node; at: number };

const CMP_OPS = new Set(['<', '<=', '>', '>=', '==', '!=']);

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i];
  }

  private isOp(op: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.op === op;
  }

  private describe(t: Tok): string {
    if (t.t === 'end') return 'the end';
    if (t.t === 'num') return `\`${t.text}\``;
    if (t.t === 'id') return `\`${t.name}\``;
    return `\`${t.op}\``;
  }

  private nest<T>(f: () => T): T {
    if (++this.depth > MAX_DEPTH) throw new ParseError('the condition is nested too deeply', this.peek().at);
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  parse(): Node {
    if (this.peek().t === 'end') throw new ParseError('the condition is empty; write a comparison like `error_rate < 0.01`', this.peek().at);
    const n = this.or();
    const t = this.peek();
    if (t.t !== 'end') {
      if (t.t === 'op' && t.op === ')') throw new ParseError('`)` without a matching `(`', t.at);
      throw new ParseError(`expected \`&&\`, \`||\` or the end, found ${this.describe(t)}`, t.at);
    }
    return n;
  }

  private or(): Node {
    let left = this.and();
    while (this.isOp('||')) {
      const at = this.peek().at;
      this.i++;
      left = { k: 'or', left, right: this.and(), at };
    }
    return left;
  }

  private and(): Node {
    let left = this.not();
    while (this.isOp('&&')) {
      const at = this.peek().at;
      this.i++;
      left = { k: 'and', left, right: this.not(), at };
    }
    return left;
  }

  // `!` binds looser than comparisons: `!error_rate > 0.1` is `!(error_rate > 0.1)`.
  private not(): Node {
    if (this.isOp('!')) {
      const at = this.peek().at;
      this.i++;
      return this.nest(() => ({ k: 'not', operand: this.not(), at }));
    }
    return this.compare();
  }

  private compare(): Node {
    const left = this.sum();
    const t = this.peek();
    if (t.t === 'op' && CMP_OPS.has(t.op)) {
      this.i++;
      const right = this.sum();
      const next = this.peek();
      if (next.t === 'op' && CMP_OPS.has(next.op)) {
        throw new ParseError(`comparisons cannot be chained; write \`a ${t.op} b && b ${next.op} c\``, next.at);
      }
      return { k: 'cmp', op: t.op as CompareOp, left, right, at: t.at };
    }
    return left;
  }

  private sum(): Node {
    let left = this.product();
    for (;;) {
      const t = this.peek();
      if (t.t !== 'op' || (t.op !== '+' && t.op !== '-')) return left;
      this.i++;
      left = { k: 'arith', op: t.op, left, right: this.product(), at: t.at };
    }
  }

  private product(): Node {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.t !== 'op' || (t.op !== '*' && t.op !== '/')) return left;
      this.i++;
      left = { k: 'arith', op: t.op, left, right: this.unary(), at: t.at };
    }
  }

  private unary(): Node {
    if (this.isOp('-')) {
      const at = this.peek().at;
      this.i++;
      return this.nest(() => ({ k: 'neg', operand: this.unary(), at }));
    }
    if (this.isOp('+')) {
      this.i++;
      return this.unary();
    }
    return this.atom();
  }

  private atom(): Node {
    const t = this.peek();
    if (t.t === 'num') {
      this.i++;
      return { k: 'num', value: t.value, at: t.at };
    }
    if (t.t === 'id') {
      this.i++;
      if (this.isOp('(')) throw new ParseError(`\`${t.name}\` is not a function; only + - * / and comparisons are supported`, this.peek().at);
      return { k: 'id', name: t.name, at: t.at };
    }
    if (t.t === 'op' && t.op === '(') {
      this.i++;
      const inner = this.nest(() => this.or());
      const close = this.peek();
      if (!(close.t === 'op' && close.op === ')')) {
        throw new ParseError(`expected \`)\` to close the \`(\` at character ${t.at + 1}, found ${this.describe(close)}`, close.at);
      }
      this.i++;
      return { k: 'paren', inner, at: t.at };
    }
    if (t.t === 'end') throw new ParseError(`the condition ends too early; expected a number or a name after ${this.previous()}`, t.at);
    throw new ParseError(`expected a number or a name, found ${this.describe(t)}`, t.at);
  }

  private previous(): string {
    const p = this.toks[this.i - 1];
    return p ? this.describe(p) : 'the start';
  }
}

function unparen(n: Node): Node {
  while (n.k === 'paren') n = n.inner;
  return n;
}

function isBool(n: Node): boolean {
  const u = unparen(n);
  return u.k === 'cmp' || u.k === 'and' || u.k === 'or' || u.k === 'not';
}

function toNum(n: Node): NumExpr {
  const u = unparen(n);
  switch (u.k) {
    case 'num':
      return { kind: 'number', value: u.value, offset: u.at };
    case 'id':
      return { kind: 'ident', name: u.name, offset: u.at };
    case 'neg':
      return { kind: 'neg', operand: toNum(u.operand), offset: u.at };
    case 'arith':
      return { kind: 'arith', op: u.op, left: toNum(u.left), right: toNum(u.right), offset: u.at };
    default:
      throw new ParseError('expected a number here, found a comparison', n.at);
  }
}

function toCond(n: Node): Condition {
  const u = unparen(n);
  switch (u.k) {
    case 'cmp':
      if (isBool(u.left)) throw new ParseError('cannot compare a comparison; group with parentheses or use `&&`', u.at);
      if (isBool(u.right)) throw new ParseError('cannot compare a comparison; group with parentheses or use `&&`', u.at);
      return { kind: 'compare', op: u.op, left: toNum(u.left), right: toNum(u.right), offset: u.at };
    case 'and':
    case 'or':
      return { kind: u.k, left: toCond(u.left), right: toCond(u.right), offset: u.at };
    case 'not':
      return { kind: 'not', operand: toCond(u.operand), offset: u.at };
    default: {
      const what = u.k === 'id' ? `\`${u.name}\`` : u.k === 'num' ? `\`${u.value}\`` : 'a number expression';
      throw new ParseError(`${what} is not a condition; compare it, like \`${u.k === 'id' ? u.name : 'error_rate'} < 0.01\``, n.at);
    }
  }
}

/** Parses a condition; errors carry a 0-based offset into `text`. Never throws. */
export function parseCondition(text: string): ParseResult {
  if (text.length > MAX_CONDITION_LENGTH) {
    return { ok: false, error: `the condition is longer than ${MAX_CONDITION_LENGTH} characters`, offset: MAX_CONDITION_LENGTH };
  }
  try {
    const parser = new Parser(tokenize(text));
    return { ok: true, cond: toCond(parser.parse()) };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, error: e.message, offset: e.offset };
    throw e;
  }
}

/** Every identifier the condition reads, once each, in order of first appearance. */
export function conditionIdentifiers(cond: Condition): string[] {
  return conditionIdentifierNodes(cond)
    .map((n) => n.name)
    .filter((name, i, all) => all.indexOf(name) === i);
}

/** Every identifier occurrence with its offset (for error positions). */
export function conditionIdentifierNodes(cond: Condition): { name: string; offset: number }[] {
  const out: { name: string; offset: number }[] = [];
  const num = (e: NumExpr): void => {
    if (e.kind === 'ident') out.push({ name: e.name, offset: e.offset });
    else if (e.kind === 'neg') num(e.operand);
    else if (e.kind === 'arith') {
      num(e.left);
      num(e.right);
    }
  };
  const walk = (c: Condition): void => {
    if (c.kind === 'compare') {
      num(c.left);
      num(c.right);
    } else if (c.kind === 'not') walk(c.operand);
    else {
      walk(c.left);
      walk(c.right);
    }
  };
  walk(cond);
  return out;
}

/** undefined when a needed value is missing, or the arithmetic has no finite answer (x / 0). */
function evalNum(e: NumExpr, values: Record<string, number | undefined>): number | undefined {
  let r: number | undefined;
  switch (e.kind) {
    case 'number':
      return e.value;
    case 'ident': {
      const v = Object.prototype.hasOwnProperty.call(values, e.name) ? values[e.name] : undefined;
      return typeof v === 'number' && !Number.isNaN(v) ? v : undefined;
    }
    case 'neg': {
      const v = evalNum(e.operand, values);
      return v === undefined ? undefined : -v;
    }
    case 'arith': {
      const a = evalNum(e.left, values);
      const b = evalNum(e.right, values);
      if (a === undefined || b === undefined) return undefined;
      r = e.op === '+' ? a + b : e.op === '-' ? a - b : e.op === '*' ? a * b : a / b;
      return Number.isFinite(r) ? r : undefined;
    }
  }
}

function compare(op: CompareOp, a: number, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

/**
 * Whether the condition holds for these values. Logic is Kleene's: a comparison with a missing
 * value is 'unknown'; `false && unknown` is false and `true || unknown` is true, so a condition
 * is 'unknown' only when the missing value could change its answer.
 */
export function evaluateCondition(cond: Condition, values: Record<string, number | undefined>): true | false | 'unknown' {
  switch (cond.kind) {
    case 'compare': {
      const a = evalNum(cond.left, values);
      const b = evalNum(cond.right, values);
      return a === undefined || b === undefined ? 'unknown' : compare(cond.op, a, b);
    }
    case 'not': {
      const v = evaluateCondition(cond.operand, values);
      return v === 'unknown' ? 'unknown' : !v;
    }
    case 'and': {
      const a = evaluateCondition(cond.left, values);
      if (a === false) return false;
      const b = evaluateCondition(cond.right, values);
      if (b === false) return false;
      return a === true && b === true ? true : 'unknown';
    }
    case 'or': {
      const a = evaluateCondition(cond.left, values);
      if (a === true) return true;
      const b = evaluateCondition(cond.right, values);
      if (b === true) return true;
      return a === false && b === false ? false : 'unknown';
    }
  }
}

const NUM_PREC: Record<string, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };

function formatNum(e: NumExpr, parentPrec = 0, rightSide = false): string {
  switch (e.kind) {
    case 'number':
      return String(e.value);
    case 'ident':
      return e.name;
    case 'neg':
      return `-${formatNum(e.operand, 3)}`;
    case 'arith': {
      const p = NUM_PREC[e.op];
      const s = `${formatNum(e.left, p)} ${e.op} ${formatNum(e.right, p, true)}`;
      // a - (b - c) and a / (b * c) keep their parentheses; a + (b + c) does not need them.
      const needs = p < parentPrec || (rightSide && p === parentPrec);
      return needs ? `(${s})` : s;
    }
  }
}

/** The condition written back with single spaces and only the parentheses it needs. */
export function formatCondition(cond: Condition): string {
  return formatCond(cond, 0);
}

function formatCond(cond: Condition, parentPrec: number): string {
  switch (cond.kind) {
    case 'compare':
      return `${formatNum(cond.left)} ${cond.op} ${formatNum(cond.right)}`;
    case 'not': {
      const inner = formatCond(cond.operand, 3);
      return `!${cond.operand.kind === 'compare' ? `(${inner})` : inner}`;
    }
    case 'and':
    case 'or': {
      const p = cond.kind === 'or' ? 1 : 2;
      const s = `${formatCond(cond.left, p)} ${cond.kind === 'or' ? '||' : '&&'} ${formatCond(cond.right, p + 0.5)}`;
      return p < parentPrec ? `(${s})` : s;
    }
  }
}
