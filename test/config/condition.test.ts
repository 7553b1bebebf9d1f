import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  conditionIdentifiers,
  evaluateCondition,
  formatCondition,
  parseCondition,
  type Condition,
} from '../../src/config/condition.js';

function parse(text: string): Condition {
  const r = parseCondition(text);
  assert.ok(r.ok, r.ok ? '' : `${text}: ${r.error} at ${r.offset}`);
  return r.cond;
}

function fails(text: string): { error: string; offset: number } {
  const r = parseCondition(text);
  assert.ok(!r.ok, `${text} should not parse`);
  return { error: r.error, offset: r.offset };
}

const evalWith = (text: string, values: Record<string, number | undefined>) => evaluateCondition(parse(text), values);

describe('parseCondition', () => {
  it('parses the examples of the docs', () => {
    for (const text of [
      'error_rate < 0.01',
      'p99_ms < stable_p99_ms * 1.5 + 20',
      'status == 200 && duration_ms < 500',
      'result < 0.8',
      'body_matches == 1',
      '!(error_rate > 0.05) || requests < 10',
      '(p50_ms + p99_ms) / 2 <= 300',
      'error_rate <= stable_error_rate + 0.005 && p95_ms < 2 * stable_p95_ms',
      '-1 < x',
      'x >= .5 && y != 1e-3',
    ]) {
      parse(text);
    }
  });

  it('gives * and / precedence over + and -, left to right', () => {
    assert.equal(formatCondition(parse('a + b * c < 1')), 'a + b * c < 1');
    assert.equal(formatCondition(parse('(a + b) * c < 1')), '(a + b) * c < 1');
    assert.equal(formatCondition(parse('a - (b - c) < 1')), 'a - (b - c) < 1');
    assert.equal(formatCondition(parse('a - b - c < 1')), 'a - b - c < 1');
    assert.equal(formatCondition(parse('a / b / c < 1')), 'a / b / c < 1');
    assert.equal(evalWith('10 - 4 - 3 == 3', {}), true);
    assert.equal(evalWith('8 / 4 / 2 == 1', {}), true);
    assert.equal(evalWith('2 + 3 * 4 == 14', {}), true);
    assert.equal(evalWith('(2 + 3) * 4 == 20', {}), true);
    assert.equal(evalWith('-2 * -3 == 6', {}), true);
    assert.equal(evalWith('- (1 + 2) == -3', {}), true);
  });

  it('gives && precedence over ||, and ! applies to the whole comparison', () => {
    const c = parse('a < 1 || b < 1 && c < 1');
    assert.equal(c.kind, 'or');
    assert.equal(c.kind === 'or' && c.right.kind, 'and');
    // true || (false && false) = true; (true || false) && false would be false
    assert.equal(evalWith('a < 1 || b < 1 && c < 1', { a: 0, b: 5, c: 5 }), true);
    assert.equal(evalWith('(a < 1 || b < 1) && c < 1', { a: 0, b: 5, c: 5 }), false);
    const n = parse('!a > 1');
    assert.equal(n.kind, 'not');
    assert.equal(evalWith('!a > 1', { a: 0 }), true);
    assert.equal(evalWith('!!(a > 1)', { a: 2 }), true);
    assert.equal(formatCondition(parse('!(a < 1 && b < 2) || c == 3')), '!(a < 1 && b < 2) || c == 3');
  });

  it('tells numbers and conditions apart inside parentheses', () => {
    assert.equal(parse('((a)) + 1 < (2)').kind, 'compare');
    assert.equal(parse('((a < 1)) && (b < 2)').kind, 'and');
    assert.match(fails('(a < 1) + 2 < 3').error, /expected a number here, found a comparison/);
    assert.match(fails('(a + 1) && b < 2').error, /is not a condition/);
  });

  it('keeps offsets: where each identifier and operator is', () => {
    const c = parse('p99_ms < stable_p99_ms * 1.5');
    assert.deepEqual(JSON.parse(JSON.stringify(c)), {
      kind: 'compare',
      op: '<',
      offset: 7,
      left: { kind: 'ident', name: 'p99_ms', offset: 0 },
      right: {
        kind: 'arith',
        op: '*',
        offset: 23,
        left: { kind: 'ident', name: 'stable_p99_ms', offset: 9 },
        right: { kind: 'number', value: 1.5, offset: 25 },
      },
    });
  });

  it('reports errors with the offset of the mistake', () => {
    const cases: [string, number, RegExp][] = [
      ['', 0, /empty/],
      ['   ', 3, /empty/],
      ['error_rate <', 12, /ends too early; expected a number or a name after `<`/],
      ['error_rate < 0.01 &&', 20, /ends too early/],
      ['error_rate = 0.01', 11, /use `==`/],
      ['error_rate < 0.01 & p99_ms < 5', 18, /use `&&`/],
      ['error_rate < 0.01 and p99_ms < 5', 18, /use `&&` instead of `and`/],
      ['error_rate', 0, /`error_rate` is not a condition; compare it/],
      ['1 + 2', 2, /is not a condition/],
      ['a < 1 < 2', 6, /cannot be chained/],
      ['(a < 1', 6, /expected `\)` to close the `\(` at character 1, found the end/],
      ['a < 1)', 5, /`\)` without a matching `\(`/],
      ['a < 1 b', 6, /expected `&&`, `\|\|` or the end, found `b`/],
      ['a < 1 # comment', 6, /unexpected character `#`/],
      ['$a < 1', 0, /without `\$`/],
      ['Error_rate < 1', 0, /lowercase/],
      ['a < 1%', 5, /fractions/],
      ['max(a) < 1', 3, /not a function/],
      ['a < 12abc', 4, /neither a number nor a name/],
      ['a < true', 4, /`true` is not a value/],
      ['a < * 2', 4, /expected a number or a name, found `\*`/],
    ];
    for (const [text, offset, re] of cases) {
      const r = fails(text);
      assert.match(r.error, re, text);
      assert.equal(r.offset, offset, `${text}: ${r.error}`);
    }
  });

  it('refuses deep nesting and very long text instead of overflowing the stack', () => {
    assert.match(fails(`${'('.repeat(100)}a < 1${')'.repeat(100)}`).error, /nested too deeply/);
    assert.match(fails(`${'!'.repeat(100)}a < 1`).error, /nested too deeply/);
    assert.match(fails(`a < ${'1 + '.repeat(300)}1`).error, /longer than 1000/);
  });

  it('is plain data: survives JSON', () => {
    const c = parse('p99_ms < stable_p99_ms * 1.5 + 20 && !(error_rate > 0.01)');
    const back = JSON.parse(JSON.stringify(c)) as Condition;
    assert.deepEqual(back, c);
    assert.equal(evaluateCondition(back, { p99_ms: 100, stable_p99_ms: 80, error_rate: 0 }), true);
  });
});

describe('conditionIdentifiers', () => {
  it('lists each name once, in order of appearance', () => {
    assert.deepEqual(conditionIdentifiers(parse('p99_ms < stable_p99_ms * 1.5 + 20 && p99_ms < 900 || !(requests > 1)')), [
      'p99_ms',
      'stable_p99_ms',
      'requests',
    ]);
    assert.deepEqual(conditionIdentifiers(parse('1 < 2')), []);
  });
});

describe('evaluateCondition', () => {
  it('compares with every operator', () => {
    const v = { x: 5 };
    assert.equal(evalWith('x < 6', v), true);
    assert.equal(evalWith('x < 5', v), false);
    assert.equal(evalWith('x <= 5', v), true);
    assert.equal(evalWith('x > 5', v), false);
    assert.equal(evalWith('x >= 5', v), true);
    assert.equal(evalWith('x == 5', v), true);
    assert.equal(evalWith('x != 5', v), false);
  });

  it('evaluates the docs examples', () => {
    assert.equal(evalWith('error_rate < 0.01', { error_rate: 0.002 }), true);
    assert.equal(evalWith('error_rate < 0.01', { error_rate: 0.2 }), false);
    assert.equal(evalWith('p99_ms < stable_p99_ms * 1.5 + 20', { p99_ms: 169, stable_p99_ms: 100 }), true);
    assert.equal(evalWith('p99_ms < stable_p99_ms * 1.5 + 20', { p99_ms: 170, stable_p99_ms: 100 }), false);
    assert.equal(evalWith('status == 200 && duration_ms < 500', { status: 200, duration_ms: 120 }), true);
    assert.equal(evalWith('status == 200 && duration_ms < 500', { status: 503, duration_ms: 120 }), false);
  });

  it("is 'unknown' when a needed value is missing", () => {
    assert.equal(evalWith('p99_ms < stable_p99_ms * 1.5', { p99_ms: 100 }), 'unknown');
    assert.equal(evalWith('p99_ms < stable_p99_ms * 1.5', { p99_ms: 100, stable_p99_ms: undefined }), 'unknown');
    assert.equal(evalWith('p99_ms < 1', { p99_ms: Number.NaN }), 'unknown');
    assert.equal(evalWith('!(p99_ms < 1)', {}), 'unknown');
  });

  it('uses three-valued logic: a missing value matters only when it could change the answer', () => {
    const unknown = { a: undefined };
    assert.equal(evalWith('a < 1 && 2 < 1', unknown), false);
    assert.equal(evalWith('2 < 1 && a < 1', unknown), false);
    assert.equal(evalWith('a < 1 && 1 < 2', unknown), 'unknown');
    assert.equal(evalWith('a < 1 || 1 < 2', unknown), true);
    assert.equal(evalWith('1 < 2 || a < 1', unknown), true);
    assert.equal(evalWith('a < 1 || 2 < 1', unknown), 'unknown');
  });

  it("is 'unknown' when the arithmetic has no finite answer", () => {
    assert.equal(evalWith('requests / stable_requests > 0.5', { requests: 10, stable_requests: 0 }), 'unknown');
    assert.equal(evalWith('requests / stable_requests > 0.5', { requests: 0, stable_requests: 0 }), 'unknown');
    assert.equal(evalWith('requests / stable_requests > 0.5', { requests: 10, stable_requests: 10 }), true);
  });

  it('reads only own values, never the prototype', () => {
    assert.equal(evalWith('constructor < 1 || tostring > 0', {}), 'unknown');
    assert.equal(evalWith('__proto__ == 0', {}), 'unknown');
  });
});
