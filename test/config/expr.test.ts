import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate, ExpressionError, parseExpression, variablesOf } from '../../src/config/expr.js';

const vars = {
  BRANCH: 'main',
  TAG: 'v1.2.3',
  EMPTY: '',
  PAT: '/^release/',
  PAT_I: '/^RELEASE/i',
  PLAIN_PAT: 'ma.n',
  REL: 'release-7',
  MULTI: 'first\nsecond',
  Q: 'it\'s "quoted"',
  SLASHY: 'a/b',
};

const cases: [string, boolean][] = [
  // presence
  ['$BRANCH', true],
  ['${BRANCH}', true],
  ['$EMPTY', false],
  ['$UNDEFINED', false],
  ['"text"', true],
  ['""', false],
  ['null', false],
  // equality
  ['$BRANCH == "main"', true],
  ["$BRANCH == 'main'", true],
  ['"main" == $BRANCH', true],
  ['$BRANCH != "main"', false],
  ['$BRANCH == $BRANCH', true],
  ['${BRANCH} == "main"', true],
  ['$BRANCH == "Main"', false],
  // undefined and empty (GitLab semantics)
  ['$UNDEFINED == null', true],
  ['$UNDEFINED == ""', false],
  ['$UNDEFINED != null', false],
  ['$EMPTY == ""', true],
  ['$EMPTY == null', false],
  ['null == null', true],
  ['$UNDEFINED == $ALSO_UNDEFINED', true],
  // regex
  ['$TAG =~ /^v\\d+\\.\\d+/', true],
  ['$TAG !~ /^v\\d+/', false],
  ['$BRANCH =~ /^MAIN$/', false],
  ['$BRANCH =~ /^MAIN$/i', true],
  ['$MULTI =~ /^second$/', false],
  ['$MULTI =~ /^second$/m', true],
  ['$MULTI =~ /first.second/', false],
  ['$MULTI =~ /first.second/s', true],
  ['$SLASHY =~ /a\\/b/', true],
  ['$BRANCH =~ /ai/', true],
  ['$UNDEFINED =~ /^$/', true],
  ['$UNDEFINED =~ /x/', false],
  ['$UNDEFINED !~ /x/', true],
  // pattern held in a variable
  ['$REL =~ $PAT', true],
  ['$BRANCH =~ $PAT', false],
  ['$REL =~ $PAT_I', true],
  ['$REL =~ "/^RELEASE/"', false],
  ['"RELEASE-1" =~ $PAT_I', true],
  ['$BRANCH =~ $PLAIN_PAT', true],
  ['$BRANCH =~ $UNDEFINED', false],
  ['$BRANCH !~ $PAT', true],
  // quotes with escapes
  ['$Q == "it\'s \\"quoted\\""', true],
  ["$Q == 'it\\'s \"quoted\"'", true],
  // precedence: && binds tighter than ||
  ['$UNDEFINED && $BRANCH || $TAG', true],
  ['$BRANCH || $TAG && $UNDEFINED', true],
  ['($BRANCH || $TAG) && $UNDEFINED', false],
  ['$UNDEFINED || $EMPTY || $BRANCH == "main"', true],
  ['$BRANCH == "main" && $TAG =~ /^v/ && $EMPTY == ""', true],
  ['$BRANCH == "x" || $BRANCH == "y" && $TAG', false],
  ['(($BRANCH == "main"))', true],
  // negation
  ['!$UNDEFINED', true],
  ['!$BRANCH', false],
  ['!($BRANCH == "main")', false],
  ['!$BRANCH == "x"', true],
  ['!!$BRANCH', true],
  ['!$UNDEFINED && $BRANCH', true],
];

describe('evaluate', () => {
  for (const [src, want] of cases) {
    it(`${src} -> ${want}`, () => {
      assert.equal(evaluate(parseExpression(src), vars), want);
    });
  }
});

const malformed: [string, number, RegExp][] = [
  ['', 0, /expected a \$VARIABLE/],
  ['$', 0, /variable name/],
  ['${A', 0, /\$\{NAME\}/],
  ['$A ==', 5, /expected a \$VARIABLE/],
  ['$A == main', 6, /unexpected word `main`/],
  ['$A == "x', 6, /unterminated string/],
  ['$A == "x" && && $B', 13, /found `&&`/],
  ['($A == "x"', 10, /unclosed `\(`/],
  ['$A == "x")', 9, /unexpected `\)`/],
  ['$A $B', 3, /unexpected \$B/],
  ['$A =~ /abc', 6, /unterminated regex/],
  ['$A =~ /(/', 6, /bad regex/],
  ['$A =~ /x/g', 6, /unknown regex flag `g`/],
  ['$A == /x/', 3, /use =~/],
  ['/x/ =~ $A', 0, /regex\/ may only follow/],
  ['$A = "x"', 3, /unexpected character `=`/],
  ['$A & $B', 3, /unexpected character `&`/],
  ['true', 0, /unexpected word `true`/],
  ['$A == 1', 6, /unexpected character `1`/],
  ['$A =~ /(?<n>x)(?=y)/', 6, /bad regex/],
];

describe('parseExpression errors', () => {
  for (const [src, offset, message] of malformed) {
    it(`${JSON.stringify(src)} fails at ${offset}`, () => {
      assert.throws(
        () => parseExpression(src),
        (e: unknown) => {
          assert.ok(e instanceof ExpressionError);
          assert.match(e.message, message);
          assert.equal(e.offset, offset);
          return true;
        },
      );
    });
  }
});

describe('safety', () => {
  it('matches a catastrophic-backtracking pattern in linear time', () => {
    const e = parseExpression('$X =~ /^(a+)+$/');
    const start = process.hrtime.bigint();
    assert.equal(evaluate(e, { X: 'a'.repeat(50_000) + 'b' }), false);
    // Not a timing assertion on the happy path: only a guard against exponential blowup.
    assert.ok(process.hrtime.bigint() - start < 10_000_000_000n);
  });

  it('lists the variables an expression reads', () => {
    assert.deepEqual(variablesOf(parseExpression('$A == "x" || !($B =~ $C)')).sort(), ['A', 'B', 'C']);
  });
});
