// GitLab's `rules:if` language, parsed by hand so that a pipeline file can never run code, and
// matched with RE2 (re2js) so that a hostile pattern cannot stall the scheduler (no ReDoS).

import type { RE2JS } from 're2js';
import { RE2, regexFlags } from './lazy-libs.js';

export type Operand =
  | { kind: 'var'; name: string; offset: number }
  | { kind: 'string'; value: string; offset: number }
  | { kind: 'null'; offset: number };

export interface RegexLit {
  kind: 'regex';
  pattern: string;
  flags: string;
  offset: number;
  re: RE2JS;
}

export type Expr =
  | Operand
  | { kind: 'cmp'; op: '==' | '!='; left: Operand; right: Operand }
  | { kind: 'match'; op: '=~' | '!~'; left: Operand; right: Operand | RegexLit }
  | { kind: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'not'; expr: Expr };

/** A malformed expression; `offset` is 0-based into the source text. */
export class ExpressionError extends Error {
  constructor(
    message: string,
    public readonly offset: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

type Tok =
  | { t: 'var'; name: string; at: number }
  | { t: 'string'; value: string; at: number }
  | { t: 'regex'; pattern: string; flags: string; at: number }
  | { t: 'null'; at: number }
  | { t: 'op'; op: '==' | '!=' | '=~' | '!~' | '&&' | '||' | '!' | '(' | ')'; at: number }
  | { t: 'end'; at: number };

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

function compileRegex(pattern: string, flags: string, at: number): RE2JS {
  let f: number;
  try {
    f = regexFlags(flags);
  } catch (e) {
    throw new ExpressionError((e as Error).message, at);
  }
  try {
    return RE2().compile(pattern, f);
  } catch (e) {
    throw new ExpressionError(`bad regex /${pattern}/: ${(e as Error).message}`, at);
  }
}

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  // A `/` starts a regex only right after a comparison; the parser then insists on =~ or !~.
  const prevIsMatchOp = () => {
    const p = toks[toks.length - 1];
    return p !== undefined && p.t === 'op' && (p.op === '=~' || p.op === '!~' || p.op === '==' || p.op === '!=');
  };
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const at = i;
    if (c === '$') {
      if (src[i + 1] === '{') {
        NAME.lastIndex = i + 2;
        const m = NAME.exec(src);
        if (!m || src[NAME.lastIndex] !== '}') throw new ExpressionError('expected a variable name like ${NAME}', at);
        toks.push({ t: 'var', name: m[0], at });
        i = NAME.lastIndex + 1;
      } else {
        NAME.lastIndex = i + 1;
        const m = NAME.exec(src);
        if (!m) throw new ExpressionError('expected a variable name after `$`', at);
        toks.push({ t: 'var', name: m[0], at });
        i = NAME.lastIndex;
      }
      continue;
    }
    if (c === '"' || c === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= src.length) throw new ExpressionError('unterminated string', at);
        const d = src[j];
        if (d === c) break;
        if (d === '\\' && j + 1 < src.length) {
          const e = src[j + 1];
          value += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
          continue;
        }
        value += d;
        j++;
      }
      toks.push({ t: 'string', value, at });
      i = j + 1;
      continue;
    }
    if (c === '/') {
      if (!prevIsMatchOp()) throw new ExpressionError('a /regex/ may only follow =~ or !~', at);
      let pattern = '';
      let j = i + 1;
      for (;;) {
        if (j >= src.length) throw new ExpressionError('unterminated regex: expected a closing /', at);
        const d = src[j];
        if (d === '/') break;
        if (d === '\\' && src[j + 1] === '/') {
          pattern += '/';
          j += 2;
          continue;
        }
        if (d === '\\' && j + 1 < src.length) {
          pattern += d + src[j + 1];
          j += 2;
          continue;
        }
        pattern += d;
        j++;
      }
      j++;
      const fm = /[A-Za-z]*/y;
      fm.lastIndex = j;
      const flags = fm.exec(src)![0];
      toks.push({ t: 'regex', pattern, flags, at });
      i = fm.lastIndex;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '=~' || two === '!~' || two === '&&' || two === '||') {
      toks.push({ t: 'op', op: two, at });
      i += 2;
      continue;
    }
    if (c === '!' || c === '(' || c === ')') {
      toks.push({ t: 'op', op: c, at });
      i++;
      continue;
    }
    NAME.lastIndex = i;
    const word = NAME.exec(src);
    if (word && word[0] === 'null') {
      toks.push({ t: 'null', at });
      i = NAME.lastIndex;
      continue;
    }
    if (word) {
      throw new ExpressionError(
        `unexpected word \`${word[0]}\`: variables start with $ and strings are quoted`,
        at,
      );
    }
    throw new ExpressionError(`unexpected character \`${c}\``, at);
  }
  toks.push({ t: 'end', at: src.length });
  return toks;
}

function describe(t: Tok): string {
  switch (t.t) {
    case 'end':
      return 'end of expression';
    case 'op':
      return `\`${t.op}\``;
    case 'var':
      return `$${t.name}`;
    case 'regex':
      return 'a regex';
    default:
      return t.t;
  }
}

/** Parses a `rules:if` expression; throws ExpressionError with a 0-based offset. */
export function parseExpression(src: string): Expr {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const isOp = (op: string) => {
    const t = toks[p];
    return t.t === 'op' && t.op === op;
  };

  function parseOr(): Expr {
    let left = parseAnd();
    while (isOp('||')) {
      p++;
      left = { kind: 'or', left, right: parseAnd() };
    }
    return left;
  }
  function parseAnd(): Expr {
    let left = parseUnary();
    while (isOp('&&')) {
      p++;
      left = { kind: 'and', left, right: parseUnary() };
    }
    return left;
  }
  function parseUnary(): Expr {
    if (isOp('!')) {
      p++;
      return { kind: 'not', expr: parseUnary() };
    }
    return parsePrimary();
  }
  function parseOperand(): Operand {
    const t = peek();
    if (t.t === 'var') {
      p++;
      return { kind: 'var', name: t.name, offset: t.at };
    }
    if (t.t === 'string') {
      p++;
      return { kind: 'string', value: t.value, offset: t.at };
    }
    if (t.t === 'null') {
      p++;
      return { kind: 'null', offset: t.at };
    }
    throw new ExpressionError(`expected a $VARIABLE, a "string" or null, found ${describe(t)}`, t.at);
  }
  function parsePrimary(): Expr {
    if (isOp('(')) {
      const open = peek();
      p++;
      const inner = parseOr();
      if (!isOp(')')) {
        const t = peek();
        throw new ExpressionError(
          t.t === 'end' ? `unclosed \`(\` opened at offset ${open.at}` : `expected \`)\`, found ${describe(t)}`,
          t.at,
        );
      }
      p++;
      return inner;
    }
    const left = parseOperand();
    const t = peek();
    if (t.t === 'op' && (t.op === '==' || t.op === '!=')) {
      p++;
      const r = peek();
      if (r.t === 'regex') throw new ExpressionError(`use =~ to match a regex, not ${t.op}`, t.at);
      return { kind: 'cmp', op: t.op, left, right: parseOperand() };
    }
    if (t.t === 'op' && (t.op === '=~' || t.op === '!~')) {
      p++;
      const r = peek();
      if (r.t === 'regex') {
        p++;
        return {
          kind: 'match',
          op: t.op,
          left,
          right: { kind: 'regex', pattern: r.pattern, flags: r.flags, offset: r.at, re: compileRegex(r.pattern, r.flags, r.at) },
        };
      }
      return { kind: 'match', op: t.op, left, right: parseOperand() };
    }
    return left;
  }

  const e = parseOr();
  const t = peek();
  if (t.t !== 'end') {
    throw new ExpressionError(`unexpected ${describe(t)}; join conditions with && or ||`, t.at);
  }
  return e;
}

type Value = string | null;

function valueOf(o: Operand, vars: Record<string, string | undefined>): Value {
  if (o.kind === 'var') return vars[o.name] ?? null;
  if (o.kind === 'string') return o.value;
  return null;
}

/**
 * A variable used as a pattern holds "/body/flags" like a literal would; GitLab reads it the
 * same way. Anything else is taken as the body itself. An invalid pattern matches nothing.
 */
function patternFromValue(v: string): RE2JS | null {
  const m = /^\/(.*)\/([A-Za-z]*)$/s.exec(v);
  try {
    return m ? compileRegex(m[1].replace(/\\\//g, '/'), m[2], 0) : RE2().compile(v);
  } catch {
    return null;
  }
}

/**
 * Whether the expression holds for these variables. An undefined variable is null: it equals
 * only null, and it is matched by regexes as the empty string (GitLab converts it with to_s).
 */
export function evaluate(expr: Expr, vars: Record<string, string | undefined>): boolean {
  switch (expr.kind) {
    case 'var':
    case 'string':
    case 'null': {
      const v = valueOf(expr, vars);
      return v !== null && v !== '';
    }
    case 'cmp': {
      const eq = valueOf(expr.left, vars) === valueOf(expr.right, vars);
      return expr.op === '==' ? eq : !eq;
    }
    case 'match': {
      const text = valueOf(expr.left, vars) ?? '';
      let re: RE2JS | null;
      if (expr.right.kind === 'regex') re = expr.right.re;
      else {
        const pv = valueOf(expr.right, vars);
        re = pv === null ? null : patternFromValue(pv);
      }
      const found = re !== null && re.matcher(text).find();
      return expr.op === '=~' ? found : !found;
    }
    case 'and':
      return evaluate(expr.left, vars) && evaluate(expr.right, vars);
    case 'or':
      return evaluate(expr.left, vars) || evaluate(expr.right, vars);
    case 'not':
      return !evaluate(expr.expr, vars);
  }
}

/** Variable names an expression reads; the planner uses it to explain why a rule matched. */
export function variablesOf(expr: Expr): string[] {
  const out = new Set<string>();
  const walk = (e: Expr | RegexLit) => {
    if (e.kind === 'var') out.add(e.name);
    else if (e.kind === 'cmp' || e.kind === 'match' || e.kind === 'and' || e.kind === 'or') {
      walk(e.left);
      walk(e.right);
    } else if (e.kind === 'not') walk(e.expr);
  };
  walk(expr);
  return [...out];
}
