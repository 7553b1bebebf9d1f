// Every error class: its stable code, and exactly where it points (line:col, 1-based).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { bad, one, yml } from './helpers.js';

describe('YAML errors', () => {
  it('yaml-syntax at the position yaml reports', () => {
    const issues = bad('build:\n  script: [make\nother: 1\n');
    assert.equal(issues[0].code, 'yaml-syntax');
    assert.ok(issues[0].pos.line >= 2);
  });

  it('yaml-syntax for a bad indentation', () => {
    const i = one(bad('build:\n  script: make\n    stage: test\n'), 'yaml-syntax', 2, 11);
    assert.match(i.message, /Nested mappings/);
  });

  it('duplicate-key in the same map', () => {
    one(bad('build:\n  script: a\n  script: b\n'), 'duplicate-key', 3, 3);
  });

  it('duplicate-job between the top level and jobs:', () => {
    const i = one(bad('build: { script: a }\njobs:\n  build: { script: b }\n'), 'duplicate-job', 3, 3);
    assert.match(i.hint!, /line 1/);
  });
});

describe('unknown keys', () => {
  it('in a job, with did-you-mean', () => {
    const i = one(bad('build:\n  scirpt: make\n  script: make\n'), 'unknown-key', 2, 3);
    assert.equal(i.message, 'unknown key `scirpt` in job `build`');
    assert.equal(i.hint, 'did you mean `script`?');
  });

  it('at the top level', () => {
    const i = one(bad('stagse: [build]\nbuild: { script: make }\n'), 'unknown-key', 1, 1);
    assert.equal(i.hint, 'did you mean `stages`?');
  });

  it('in nested maps: artifacts, cache, retry, rules', () => {
    const issues = bad(yml`
      build:
        script: make
        artifacts: { pahts: [a] }
        cache: { key: k, polcy: pull }
        retry: { max: 1, wehn: always }
        rules:
          - { iff: $X }
    `);
    assert.equal(issues.length, 4, JSON.stringify(issues));
    assert.equal(one(issues.filter((i) => i.message.includes('pahts')), 'unknown-key', 3, 16).hint, 'did you mean `paths`?');
    assert.equal(one(issues.filter((i) => i.message.includes('polcy')), 'unknown-key', 4, 20).hint, 'did you mean `policy`?');
    assert.equal(one(issues.filter((i) => i.message.includes('wehn')), 'unknown-key', 5, 20).hint, 'did you mean `when`?');
    const r = one(issues.filter((i) => i.message.includes('iff')), 'unknown-key', 7, 9);
    assert.equal(r.message, 'unknown key `iff` in `rules[0]` of job `build`');
    assert.equal(r.hint, 'did you mean `if`?');
  });

  it('in a needs map, once', () => {
    const issues = bad('a: { script: x }\nb: { script: x, needs: [{ job: a, artifact: false }] }\n');
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(one(issues, 'unknown-key', 2, 35).hint, 'did you mean `artifacts`?');
  });
});

describe('types and values', () => {
  it('wrong-type for script: 5', () => {
    const i = one(bad('build:\n  script: 5\n'), 'wrong-type', 2, 11);
    assert.equal(i.message, '`script` in job `build` must be a string or a list, not a number');
  });

  it('wrong-type for needs: "build" with a list hint', () => {
    const i = one(bad('build: { script: x }\ntest:\n  script: x\n  needs: "build"\n'), 'wrong-type', 4, 10);
    assert.equal(i.hint, 'needs takes a list: needs: [build]');
  });

  it('wrong-type for a job that is not a map', () => {
    one(bad('build: make\n'), 'wrong-type', 1, 8);
  });

  it('bad-value for an enum, listing the allowed values', () => {
    const i = one(bad('build:\n  script: x\n  when: sometimes\n'), 'bad-value', 3, 9);
    assert.equal(i.hint, 'use one of: on_success, on_failure, always, manual, never');
  });

  it('bad-value for retry above 10', () => {
    const i = one(bad('build: { script: x, retry: 11 }\n'), 'bad-value', 1, 28);
    assert.match(i.message, /at most 10/);
  });

  it('bad-value for a retry reason, inside the object form', () => {
    const i = one(bad('build:\n  script: x\n  retry: { max: 1, when: [oops] }\n'), 'bad-value', 3, 27);
    assert.match(i.hint!, /script_failure/);
  });

  it('missing-key for deploy without environment', () => {
    one(bad('environments: {}\nship:\n  deploy: {}\n'), 'missing-key', 3, 11);
  });
});

describe('semantic checks', () => {
  it('unknown-need with did-you-mean', () => {
    const i = one(bad('build: { script: x }\ntest: { script: x, needs: [buld] }\n'), 'unknown-need', 2, 28);
    assert.equal(i.message, 'job `test` needs unknown job `buld`; did you mean `build`?');
  });

  it('unknown-need in the object form points at the name', () => {
    one(bad('build: { script: x }\ntest: { script: x, needs: [{ job: nope }] }\n'), 'unknown-need', 2, 35);
  });

  it('unknown-stage', () => {
    const i = one(bad('stages: [build, test]\na: { script: x, stage: tset }\n'), 'unknown-stage', 2, 24);
    assert.equal(i.hint, 'did you mean `test`?');
  });

  it('unknown-stage for the default stage when stages: lacks test', () => {
    one(bad('stages: [build]\na: { script: x }\n'), 'unknown-stage', 2, 1);
  });

  it('allows needs on a job of a later stage', () => {
    const { issues } = parseConfig('a: { stage: build, script: x, needs: [b] }\nb: { stage: deploy, script: x }\n', 'ferry.yml');
    assert.deepEqual(issues, []);
  });

  it('cycle in needs, printed as a path', () => {
    const i = one(
      bad('a: { script: x, needs: [c] }\nb: { script: x, needs: [a] }\nc: { script: x, needs: [b] }\n'),
      'cycle',
      2,
      25,
    );
    assert.equal(i.message, 'jobs need each other in a cycle: a -> c -> b -> a');
  });

  it('a job that needs itself', () => {
    assert.match(one(bad('a: { script: x, needs: [a] }\n'), 'cycle', 1, 25).message, /a -> a/);
  });

  it('cycle in extends', () => {
    const i = one(bad('.a: { extends: .b }\n.b: { extends: [.a] }\nj: { script: x, extends: .a }\n'), 'cycle', 2, 17);
    assert.equal(i.message, 'extends cycle: .a -> .b -> .a');
  });

  it('unknown-extends', () => {
    assert.equal(one(bad('.base: { script: x }\nj: { extends: .bsae }\n'), 'unknown-extends', 2, 15).hint, 'did you mean `.base`?');
  });

  it('bad-duration', () => {
    const i = one(bad('a: { script: x, timeout: 10 minuts }\n'), 'bad-duration', 1, 26);
    assert.equal(i.message, '`10 minuts` is not a duration (timeout)');
    assert.match(i.hint!, /30s, 10m, 1h30m/);
  });

  it('bad-duration in a template points into the template, once', () => {
    const issues = bad('.t: { timeout: soon }\na: { extends: .t, script: x }\nb: { extends: .t, script: x }\n');
    one(issues, 'bad-duration', 1, 16);
  });

  it('bad-duration in artifacts.expire_in', () => {
    one(bad('a:\n  script: x\n  artifacts: { expire_in: "3 fortnights" }\n'), 'bad-duration', 3, 27);
  });

  it('matrix-too-large with the count', () => {
    const i = one(
      bad(yml`
        a:
          script: x
          parallel:
            matrix:
              - { A: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], B: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], C: [1, 2, 3] }
      `),
      'matrix-too-large',
      5,
      7,
    );
    assert.match(i.message, /300 jobs/);
  });

  it('bad-expression, column inside a quoted expression', () => {
    const text = `a:\n  script: x\n  rules:\n    - if: '$A == "x" && && $B'\n`;
    one(bad(text), 'bad-expression', 4, 25);
    assert.equal(text.split('\n')[3].slice(24, 26), '&&');
  });

  it('bad-expression, column inside a plain expression', () => {
    one(bad('a:\n  script: x\n  rules: [{ if: $A == main }]\n'), 'bad-expression', 3, 23);
  });

  it('bad-expression in workflow rules', () => {
    one(bad('workflow:\n  rules:\n    - if: $A =~ /(/\na: { script: x }\n'), 'bad-expression', 3, 17);
  });

  it('bad-expression through a double-quoted string with escapes', () => {
    one(bad('a:\n  script: x\n  rules: [{ if: "$A == \\"x\\" $B" }]\n'), 'bad-expression', 3, 30);
  });

  it('missing-script', () => {
    const i = one(bad('a:\n  stage: build\n'), 'missing-script', 1, 1);
    assert.match(i.hint!, /script:/);
  });

  it('missing-script is not required of templates', () => {
    assert.deepEqual(parseConfig('.t: { stage: build }\na: { extends: .t, script: x }\n', 'f').issues, []);
  });

  it('unknown-environment with environments:', () => {
    const i = one(bad('environments: { staging: {} }\nship: { deploy: { environment: stagin } }\n'), 'unknown-environment', 2, 32);
    assert.equal(i.message, 'deploy.environment `stagin` is not declared under environments:');
    assert.equal(i.hint, 'did you mean `staging`?');
  });

  it('unknown-environment without environments:', () => {
    one(bad('ship: { deploy: { environment: prod } }\n'), 'unknown-environment', 1, 32);
  });

  it('environments must be a map of maps', () => {
    one(bad('environments: { prod: 1 }\na: { script: x }\n'), 'wrong-type', 1, 23);
  });

  it('unknown-dependency', () => {
    one(bad('a: { script: x }\nb: { script: x, dependencies: [z] }\n'), 'unknown-dependency', 2, 32);
  });
});

describe('not supported yet', () => {
  it('include', () => {
    one(bad('include: other.yml\na: { script: x }\n'), 'not-supported', 1, 1);
  });

  it('rules:changes and rules:exists', () => {
    const issues = bad('a:\n  script: x\n  rules:\n    - changes: [src/**]\n    - exists: [Dockerfile]\n');
    assert.deepEqual(issues.map((i) => `${i.code}@${i.pos.line}:${i.pos.col}`), ['not-supported@4:7', 'not-supported@5:7']);
  });

  it('cache key files', () => {
    one(bad('a:\n  script: x\n  cache: { key: { files: [package-lock.json] }, paths: [a] }\n'), 'not-supported', 3, 17);
  });

  it('only/except, with a hint to use rules', () => {
    const i = one(bad('a: { script: x, only: [main] }\n'), 'not-supported', 1, 17);
    assert.match(i.hint!, /rules/);
  });

  it('GitLab\'s top-level before_script, pointing to default:', () => {
    assert.match(one(bad('before_script: [x]\na: { script: x }\n'), 'not-supported', 1, 1).hint!, /default:/);
  });

  it('!reference tags', () => {
    one(bad('.t: { script: [x] }\na:\n  script: !reference [.t, script]\n'), 'not-supported', 3, 11);
  });
});

describe('all at once', () => {
  it('reports every problem of a file, sorted by position', () => {
    const issues = bad(yml`
      stages: [build, test]
      build:
        scirpt: make
        script: make
        timeout: forever
      test:
        script: x
        needs: [biuld]
        when: later
    `);
    assert.deepEqual(
      issues.map((i) => `${i.code}@${i.pos.line}:${i.pos.col}`),
      ['unknown-key@3:3', 'bad-duration@5:12', 'unknown-need@8:11', 'bad-value@9:9'],
    );
  });
});

describe('edge cases', () => {
  it('an empty job points at its name', () => {
    const issues = bad('build:\na: { script: x }\n');
    assert.equal(issues.length, 1);
    one(issues, 'wrong-type', 1, 1);
  });

  it('a misspelled script is one message, not two', () => {
    const issues = bad('build:\n  scirpt: make\n');
    assert.deepEqual(issues.map((i) => i.code), ['unknown-key']);
  });

  it('a non-map list item gets no list hint', () => {
    const i = one(bad('a: { script: x, rules: [5] }\n'), 'wrong-type', 1, 25);
    assert.equal(i.message, '`rules[0]` in job `a` must be a map, not a number');
    assert.equal(i.hint, undefined);
  });

  it('YAML tags that make non-text values are read as text', () => {
    one(bad('a: !!binary aGVsbG8=\n'), 'wrong-type', 1, 13);
  });

  it('an empty file', () => {
    one(bad(''), 'empty', 1, 1);
  });

  it('a file that is not a map', () => {
    one(bad('- a\n- b\n'), 'wrong-type', 1, 1);
  });

  it('a file with keywords but no job', () => {
    one(bad('stages: [build]\n'), 'no-jobs', 1, 1);
  });

  it('unknown keys in default: and under jobs:', () => {
    const issues = bad('default:\n  retyr: 1\njobs:\n  a:\n    script: x\n    tgas: [x]\n');
    assert.equal(one(issues.filter((i) => i.message.includes('retyr')), 'unknown-key', 2, 3).message, 'unknown key `retyr` in `default`');
    assert.equal(one(issues.filter((i) => i.message.includes('tgas')), 'unknown-key', 6, 5).hint, 'did you mean `tags`?');
  });

  it('an alias bomb is stopped, not expanded', () => {
    const ten = (x: string) => `[${Array(10).fill(x).join(', ')}]`;
    const text = [`a: &a ${ten('x')}`, `b: &b ${ten('*a')}`, `c: &c ${ten('*b')}`, `d: &d ${ten('*c')}`, `e: &e ${ten('*d')}`, `f: ${ten('*e')}`].join('\n');
    one(bad(text), 'too-large', 1, 1);
  });
});
