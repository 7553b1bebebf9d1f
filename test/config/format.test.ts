import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssues } from '../../src/config/format.js';
import { parseConfig } from '../../src/config/load.js';

describe('formatIssues', () => {
  it('prints file:line:col, the source line, a caret and the hint', () => {
    const text = 'stages: [build]\nbuild:\n  stage: build\n  scirpt: make\n  script: make\n';
    const { issues } = parseConfig(text, 'ferry.yml');
    assert.equal(
      formatIssues(issues, { color: false, source: text }),
      [
        'ferry.yml:4:3: error: unknown key `scirpt` in job `build`',
        ' 4 |   scirpt: make',
        '   |   ^',
        '  hint: did you mean `script`?',
        '1 error in ferry.yml',
        '',
      ].join('\n'),
    );
  });

  it('counts several errors and indents multi-line hints', () => {
    const text = 'a:\n  script: x\n  timeout: soon\nship:\n  deploy: { environment: prod }\n';
    const { issues } = parseConfig(text, 'ferry.yml');
    const out = formatIssues(issues, { color: false, source: text });
    assert.match(out, /^ferry\.yml:3:12: error: `soon` is not a duration \(timeout\)$/m);
    assert.match(out, /^ 3 \|   timeout: soon\n   \|            \^$/m);
    assert.match(out, /^  hint: add it:\n          environments:\n            prod:/m);
    assert.match(out, /\n2 errors in ferry\.yml\n$/);
  });

  it('keeps tabs so the caret lines up', () => {
    const out = formatIssues([{ pos: { file: 'f', line: 1, col: 3 }, message: 'm', code: 'x' }], { color: false, source: '\tab' });
    assert.equal(out.split('\n')[2], '   | \t ^');
  });

  it('colors with ANSI codes only when asked', () => {
    const issue = { pos: { file: 'f', line: 1, col: 1 }, message: 'm', hint: 'h', code: 'x' };
    assert.doesNotMatch(formatIssues([issue], { color: false, source: 'a' }), /\x1b/);
    assert.match(formatIssues([issue], { color: true, source: 'a' }), /\x1b\[1;31merror:\x1b\[0m/);
  });

  it('works without the source text', () => {
    const out = formatIssues([{ pos: { file: '/nonexistent/ferry.yml', line: 2, col: 1 }, message: 'm', code: 'x' }], { color: false });
    assert.equal(out, '/nonexistent/ferry.yml:2:1: error: m\n1 error in /nonexistent/ferry.yml\n');
  });

  it('prints nothing for no issues', () => {
    assert.equal(formatIssues([], { color: false }), '');
  });
});
