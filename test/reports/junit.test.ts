import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, copyFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fixture } from '../helpers/paths.js';
import { parseJUnit, mergeReports, formatFailures, seconds, MAX_DETAILS } from '../../src/reports/junit.js';
import type { TestCase, TestReport } from '../../src/reports/types.js';

const fixtures = fixture('junit');
const load = (name: string) => parseJUnit(readFileSync(join(fixtures, name), 'utf8'), name);
const byName = (r: TestReport, name: string): TestCase => {
  const c = r.cases.find((x) => x.name === name);
  assert.ok(c, `no case named ${name}; have ${r.cases.map((x) => x.name).join(', ')}`);
  return c;
};
const ANSI = /\u001b\[/;

describe('parseJUnit: real producers', () => {
  test('pytest xunit2 (default family): one line, entities in messages, setup error, skip and xfail', () => {
    const r = load('pytest-xunit2.xml');
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [6, 1, 1, 2]);
    assert.equal(r.timeMs, 418);
    const failed = byName(r, 'test_total_includes_tax');
    assert.equal(failed.status, 'failed');
    assert.equal(failed.classname, 'tests.test_cart');
    assert.equal(failed.suite, 'pytest');
    assert.equal(failed.file, undefined);
    assert.match(failed.message!, /^assert 41\.0 == 42\.0\n \+  where 41\.0 = <bound method Cart\.total/);
    assert.match(failed.details!, /^def test_total_includes_tax\(\):/);
    assert.match(failed.details!, />       assert cart\.total\(\) == 42\.0/);
    assert.match(failed.stdout!, /Captured Log/);
    const err = byName(r, 'test_checkout');
    assert.equal(err.status, 'error');
    assert.match(err.message!, /^failed on setup with "file \/home\/ci\/shop\/tests\/test_cart\.py, line 18\n/);
    assert.match(err.message!, /fixture 'db' not found/);
    const skip = byName(r, 'test_matmul');
    assert.equal(skip.status, 'skipped');
    assert.equal(skip.message, 'no GPU available');
    assert.equal(skip.type, 'pytest.skip');
    assert.equal(byName(r, 'test_round_half_even').type, 'pytest.xfail');
    assert.equal(byName(r, 'test_parse[1,234.50-1234.5]').status, 'passed');
    assert.equal(byName(r, 'test_add_item').timeMs, 2);
  });

  test('pytest xunit1: file and line attributes, system-out and system-err', () => {
    const r = load('pytest-xunit1.xml');
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [4, 1, 0, 1]);
    const c = byName(r, 'test_unicode');
    assert.equal(c.file, 'tests/test_slug.py');
    assert.equal(c.line, 8);
    assert.equal(c.message!.split('\n')[0], "AssertionError: assert 'cafe' == 'café'");
    assert.equal(c.stdout, "slugify called with 'Café'");
    assert.match(c.stderr!, /^DeprecationWarning/);
    assert.equal(byName(r, 'test_roundtrip').file, 'tests/sub/test_io.py');
    assert.equal(byName(r, 'test_roundtrip').timeMs, 61);
    assert.equal(byName(r, 'test_empty').message, 'empty input is undefined');
  });

  test('jest-junit: message only in the body, file on each case, escaped names', () => {
    const r = load('jest-junit.xml');
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [6, 1, 0, 1]);
    assert.equal(r.timeMs, 3207);
    const c = byName(r, 'Cart computes the total with tax');
    assert.equal(c.status, 'failed');
    assert.equal(c.suite, 'Cart');
    assert.equal(c.file, 'src/cart.test.ts');
    assert.equal(c.message, 'Error: expect(received).toBe(expected) // Object.is equality');
    assert.match(c.details!, /Expected: 42\nReceived: 41\n/);
    assert.match(c.details!, /at new Promise \(<anonymous>\)/);
    assert.equal(byName(r, 'Cart removes an item').status, 'skipped');
    assert.equal(byName(r, 'formatPrice formats "large" amounts & rounds').file, 'src/price.test.ts');
  });

  test('Maven Surefire: bare <testsuite>, properties, CDATA, error vs failure, flaky, comma times', () => {
    const r = load('TEST-com.acme.shop.CartServiceTest.xml');
    // The suite claims failures="2"; the cases say 1 (the flaky one passed on rerun).
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [5, 1, 1, 1]);
    assert.equal(r.timeMs, 1_204_331);
    const f = byName(r, 'computesTotal');
    assert.equal(f.status, 'failed');
    assert.equal(f.message, 'expected: <42.0> but was: <41.0>');
    assert.equal(f.type, 'org.opentest4j.AssertionFailedError');
    assert.match(f.details!, /^org\.opentest4j\.AssertionFailedError: expected: <42\.0> but was: <41\.0>\n\tat /);
    assert.match(f.stdout!, /cart 7 & 1 item/);
    const e = byName(r, 'parsesQuantity');
    assert.equal(e.status, 'error');
    assert.equal(e.message, 'For input string: "abc"');
    assert.equal(e.type, 'java.lang.NumberFormatException');
    const flaky = byName(r, 'checksOutAgainstRealWarehouse');
    assert.equal(flaky.status, 'passed');
    assert.equal(flaky.flaky, true);
    assert.equal(flaky.timeMs, 1_204_305);
    assert.equal(byName(r, 'appliesCoupon').message, 'coupons are behind a feature flag');
    assert.equal(byName(r, 'appliesCoupon').timeMs, 0);
  });

  test('go-junit-report: generic "Failed" message with the output in the body, build errors', () => {
    const r = load('go-junit-report.xml');
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [6, 1, 1, 1]);
    // No time on <testsuites>: the sum of the suites.
    assert.equal(r.timeMs, 412);
    const f = byName(r, 'TestTotal');
    assert.equal(f.message, 'Failed');
    assert.equal(f.details, '    cart_test.go:42: total = 41, want 42\n    cart_test.go:43: tax = 0, want 2');
    assert.equal(f.suite, 'github.com/acme/shop/cart');
    const b = byName(r, '[build failed]');
    assert.equal(b.status, 'error');
    assert.equal(b.suite, 'github.com/acme/shop/payment');
    assert.match(b.details!, /undefined: stripe\.NewClient/);
    assert.equal(byName(r, 'TestSlowCheckout').message, 'Skipped');
    assert.equal(byName(r, 'TestDiscount/zero').status, 'passed');
  });

  test('PHPUnit: nested suites, data providers, file inherited, message after the test id', () => {
    const r = load('phpunit.xml');
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [6, 1, 1, 1]);
    assert.equal(r.timeMs, 34.215);
    const f = byName(r, 'testSubtract');
    assert.equal(f.suite, 'App\\Tests\\Unit\\CalculatorTest');
    assert.equal(f.classname, 'App.Tests.Unit.CalculatorTest');
    assert.equal(f.message, 'Failed asserting that 2 matches expected 3.');
    assert.equal(f.file, '/home/ci/shop/tests/Unit/CalculatorTest.php');
    assert.equal(f.line, 17);
    const e = byName(r, 'testDivide with data set "by zero"');
    assert.equal(e.status, 'error');
    assert.equal(e.suite, 'App\\Tests\\Unit\\CalculatorTest::testDivide');
    assert.equal(e.message, 'DivisionByZeroError: Division by zero');
    assert.equal(e.type, 'DivisionByZeroError');
    assert.equal(e.timeMs, 26.429);
    assert.equal(byName(r, 'testFormat').stdout, 'formatting 12.5 EUR');
  });

  test('mocha-junit-reporter: file on suites, wrong suite counts, two failures in one case', () => {
    const r = load('mocha-junit-reporter.xml');
    // <testsuites tests="4" failures="1"> disagrees with the 5 cases and 2 failures.
    assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [5, 2, 0, 1]);
    assert.equal(r.timeMs, 31);
    const two = byName(r, 'Cart #checkout() charges the card');
    assert.equal(two.status, 'failed');
    assert.equal(two.file, '/home/ci/shop/test/cart.spec.js');
    assert.deepEqual(two.message!.split('\n').map((l) => l.slice(0, 20)), ['Timeout of 2000ms ex', 'second failure in af']);
    assert.match(two.details!, /processTimers[\s\S]*\n\nError: second failure in afterEach hook/);
    assert.equal(byName(r, 'Cart computes the total').message, 'expected 41 to equal 42');
    assert.equal(byName(r, 'Cart computes the total').classname, 'computes the total');
  });

  test("Node's junit reporter (committed output): top-level cases, describe suites, skip and todo", () => {
    checkNodeReport(load('node-test-reporter.xml'));
  });

  test("Node's junit reporter, generated now by this Node", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-junit-'));
    try {
      copyFileSync(join(fixtures, 'node-sample.mjs'), join(dir, 'sample.test.mjs'));
      const env = { ...process.env };
      // Inside `node --test`, a child `node --test` would otherwise report to us, not to a file.
      delete env.NODE_TEST_CONTEXT;
      const res = spawnSync(
        process.execPath,
        ['--test', '--test-reporter=junit', '--test-reporter-destination=out.xml', 'sample.test.mjs'],
        { cwd: dir, env, encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(res.status, 1, `node --test should fail (2 failing tests): ${res.stderr}`);
      const xml = readFileSync(join(dir, 'out.xml'), 'utf8');
      checkNodeReport(parseJUnit(xml, 'out.xml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function checkNodeReport(r: TestReport): void {
  assert.deepEqual([r.tests, r.failures, r.errors, r.skipped], [6, 2, 0, 2]);
  assert.ok(r.timeMs > 0);
  const top = byName(r, 'formats totals');
  assert.equal(top.suite, '');
  assert.equal(top.status, 'failed');
  assert.equal(top.message, "Expected values to be strictly equal:'0.30' !== '0.31'");
  assert.equal(top.type, 'testCodeFailure');
  assert.match(top.details!, /ERR_ASSERTION/);
  const nested = byName(r, 'rejects negative quantities');
  assert.equal(nested.suite, 'cart');
  assert.equal(nested.message, 'quantity must be >= 0 & an <integer>');
  assert.equal(byName(r, 'needs a database').message, 'no database in CI');
  assert.equal(byName(r, 'handles currency rounding').type, 'todo');
  assert.equal(byName(r, 'handles currency rounding').status, 'skipped');
  assert.equal(byName(r, 'starts empty').status, 'passed');
  assert.ok(r.cases.every((c) => c.timeMs >= 0));
}

describe('parseJUnit: edge cases', () => {
  test('malformed XML names the file and the line', () => {
    const xml = '<?xml version="1.0"?>\n<testsuites>\n  <testsuite name="a">\n    <testcase name="x">\n  </testsuite>\n</testsuites>\n';
    assert.throws(() => parseJUnit(xml, 'reports/junit.xml'), (err: Error) => {
      assert.match(err.message, /^reports\/junit\.xml:5: malformed XML: /);
      assert.match(err.message, /testcase/);
      return true;
    });
  });

  test('truncated file, empty file, and a document that is not JUnit', () => {
    assert.throws(() => parseJUnit('<testsuites><testsuite name="a">', 'cut.xml'), /^Error: cut\.xml:1: malformed XML: unclosed <testsuites>, <testsuite> at the end \(truncated file\?\)$/);
    assert.throws(() => parseJUnit('', 'empty.xml'), /empty\.xml: empty file/);
    assert.throws(() => parseJUnit('not xml at all', 'x.txt'), /x\.txt:1: malformed XML/);
    assert.throws(() => parseJUnit('<html><body/></html>', 'index.html'), /index\.html: not a JUnit report.*found <html>/);
    assert.throws(() => parseJUnit('<a>'), /^Error: JUnit report:1: malformed XML/);
  });

  test('empty <testsuites/> and suites without cases', () => {
    const r = parseJUnit('<?xml version="1.0"?><testsuites/>');
    assert.deepEqual(r, { tests: 0, failures: 0, errors: 0, skipped: 0, timeMs: 0, cases: [] });
    const s = parseJUnit('<testsuite name="none" tests="3" time="0.5"></testsuite>');
    assert.equal(s.tests, 0);
    assert.equal(s.timeMs, 500);
  });

  test('BOM, CRLF, times missing, empty, with commas, decimal comma, garbage', () => {
    const xml =
      '\ufeff<?xml version="1.0" encoding="UTF-8"?>\r\n<testsuite name="t">\r\n' +
      '<testcase name="a"/>\r\n<testcase name="b" time=""/>\r\n<testcase name="c" time="1,234.5"/>\r\n' +
      '<testcase name="d" time="0,25"/>\r\n<testcase name="e" time="NaN"/>\r\n<testcase name="f" time="0.0004"/>\r\n' +
      '<testcase name="g"><failure>\r\n\r\n  Boom\r\n  at x\r\n</failure></testcase>\r\n</testsuite>\r\n';
    const r = parseJUnit(xml);
    const t = Object.fromEntries(r.cases.map((c) => [c.name, c.timeMs]));
    assert.deepEqual(t, { a: 0, b: 0, c: 1_234_500, d: 250, e: 0, f: 0.4, g: 0 });
    // No suite time: the sum of the cases.
    assert.equal(r.timeMs, 1_234_750.4);
    assert.equal(byName(r, 'g').message, 'Boom');
    assert.equal(byName(r, 'g').details, '  Boom\n  at x');
    assert.equal(seconds('12'), 12_000);
    assert.equal(seconds(' 2.5 '), 2_500);
    assert.equal(seconds('-1'), undefined);
    assert.equal(seconds(undefined), undefined);
  });

  test('entities, numeric character references and CDATA (kept literally)', () => {
    const xml = `<testsuites><testsuite name="S &amp; T"><testcase name="a&lt;b&gt; &#233;" classname="c">
      <failure message="line1&#10;line2 &quot;q&quot; &#x41;"><![CDATA[raw &amp; <kept>]]></failure>
    </testcase></testsuite></testsuites>`;
    const c = parseJUnit(xml).cases[0]!;
    assert.equal(c.suite, 'S & T');
    assert.equal(c.name, 'a<b> é');
    assert.equal(c.message, 'line1\nline2 "q" A');
    assert.equal(c.details, 'raw &amp; <kept>');
  });

  test('a failure and an error in one case count once; failed wins; messages join', () => {
    const xml = `<testsuite name="s"><testcase name="x">
      <failure message="first" type="AssertionError">body one</failure>
      <error message="teardown broke">body two</error>
      <failure message="first">dup message</failure>
    </testcase><testcase name="y"><error/></testcase></testsuite>`;
    const r = parseJUnit(xml);
    assert.deepEqual([r.tests, r.failures, r.errors], [2, 1, 1]);
    const x = byName(r, 'x');
    assert.equal(x.status, 'failed');
    assert.equal(x.message, 'first\nteardown broke');
    assert.equal(x.details, 'body one\n\ndup message\n\nbody two');
    const y = byName(r, 'y');
    assert.equal(y.status, 'error');
    assert.equal(y.message, undefined);
  });

  test('skipped with the reason in the body; details limited to ~8 KB', () => {
    const huge = 'x'.repeat(50_000);
    const xml = `<testsuite name="s"><testcase name="sk"><skipped>  reason in body  </skipped></testcase>
      <testcase name="big"><failure message="m">${huge}</failure><system-out>${huge}</system-out></testcase></testsuite>`;
    const r = parseJUnit(xml);
    assert.equal(byName(r, 'sk').message, 'reason in body');
    const big = byName(r, 'big');
    assert.ok(big.details!.length <= MAX_DETAILS + 100);
    assert.ok(big.details!.length >= MAX_DETAILS);
    assert.match(big.details!, /truncated 41808 characters\]$/);
    assert.ok(big.stdout!.length <= MAX_DETAILS + 100);
  });

  test('many escaped characters in a large report parse (no entity-expansion limit trips)', () => {
    const cases = Array.from(
      { length: 3000 },
      (_, i) => `<testcase name="t${i} &lt;&amp;&gt;" time="0.001"><failure message="a &lt; b">x &amp;&amp; y &lt; z</failure></testcase>`,
    ).join('');
    const r = parseJUnit(`<testsuites><testsuite name="big">${cases}</testsuite></testsuites>`);
    assert.equal(r.tests, 3000);
    assert.equal(r.failures, 3000);
    assert.equal(r.cases[2999]!.name, 't2999 <&>');
    assert.equal(r.timeMs, 3000);
  });

  test('test cases directly under <testsuites> and nested <testsuites>', () => {
    const r = parseJUnit(`<testsuites time="2"><testcase name="top"/><testsuites><testsuite name="inner" file="a.js">
      <testsuite name="deeper"><testcase name="deep"/></testsuite></testsuite></testsuites></testsuites>`);
    assert.equal(r.tests, 2);
    assert.equal(r.timeMs, 2000);
    assert.equal(byName(r, 'top').suite, '');
    assert.equal(byName(r, 'deep').suite, 'deeper');
    assert.equal(byName(r, 'deep').file, 'a.js');
  });
});

describe('mergeReports', () => {
  test('adds counts and times, keeps every case in order', () => {
    const a = load('jest-junit.xml');
    const b = load('go-junit-report.xml');
    const m = mergeReports([a, b]);
    assert.deepEqual([m.tests, m.failures, m.errors, m.skipped], [12, 2, 1, 2]);
    assert.equal(m.timeMs, a.timeMs + b.timeMs);
    assert.deepEqual(m.cases, [...a.cases, ...b.cases]);
    assert.deepEqual(mergeReports([]), { tests: 0, failures: 0, errors: 0, skipped: 0, timeMs: 0, cases: [] });
  });
});

describe('formatFailures', () => {
  test('lists failed and errored tests with suite, file, message and the start of the details', () => {
    const out = formatFailures(load('phpunit.xml'), { color: false });
    assert.doesNotMatch(out, ANSI);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines[0], '✗ App\\Tests\\Unit\\CalculatorTest › testSubtract (/home/ci/shop/tests/Unit/CalculatorTest.php:17)');
    assert.equal(lines[1], '    Failed asserting that 2 matches expected 3.');
    // The body's test id and repeated message are not shown again.
    assert.equal(lines[2], '    /home/ci/shop/tests/Unit/CalculatorTest.php:19');
    assert.match(out, /✗ App\\Tests\\Unit\\CalculatorTest::testDivide › testDivide with data set "by zero" \[error\]/);
    assert.doesNotMatch(out, /testAdd|testPercentage/);
  });

  test('titles: generic suite names fall back to the classname, jest/mocha names are not doubled', () => {
    assert.match(formatFailures(load('pytest-xunit1.xml'), { color: false }), /^✗ tests\.test_slug › test_unicode \(tests\/test_slug\.py:8\)\n/);
    assert.match(formatFailures(load('jest-junit.xml'), { color: false }), /^✗ Cart computes the total with tax \(src\/cart\.test\.ts\)\n    Error: expect/);
    const node = formatFailures(load('node-test-reporter.xml'), { color: false });
    assert.match(node, /^✗ formats totals\n/m);
    assert.match(node, /^✗ cart › rejects negative quantities\n/m);
  });

  test('limits details lines and the number of tests', () => {
    const r = load('mocha-junit-reporter.xml');
    const out = formatFailures(r, { color: false, max: 1, detailLines: 2 });
    const lines = out.trimEnd().split('\n');
    assert.deepEqual(lines, [
      '✗ Cart computes the total (/home/ci/shop/test/cart.spec.js)',
      '    expected 41 to equal 42',
      '    AssertionError: expected 41 to equal 42',
      '        at Context.<anonymous> (test/cart.spec.js:14:29)',
      '    …',
      '… and 1 more failed test',
    ]);
    const many = mergeReports([r, r, r]);
    assert.match(formatFailures(many, { color: false, max: 2 }), /… and 4 more failed tests\n$/);
  });

  test('colors only when asked; nothing for a green report', () => {
    const colored = formatFailures(load('go-junit-report.xml'), { color: true });
    assert.match(colored, /\u001b\[31m✗\u001b\[0m/);
    assert.equal(formatFailures(parseJUnit('<testsuite name="s"><testcase name="ok"/></testsuite>'), { color: true }), '');
  });
});
