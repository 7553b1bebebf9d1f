import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture as fixturePath } from '../helpers/paths.js';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/types.js';
import { job, ok, yml } from './helpers.js';

const fixture = (name: string) => fixturePath('config', name);

describe('loadConfig', () => {
  it('loads the DESIGN example', async () => {
    const c = await loadConfig(fixture('design-example.yml'));
    assert.deepEqual(c.stages, ['.pre', 'build', 'test', 'deploy', '.post']);
    assert.deepEqual(c.variables, { NODE_ENV: 'test' });
    assert.deepEqual(c.jobs.map((j) => j.name), ['build', 'unit', 'staging', 'production']);
    const unit = job(c, 'unit');
    assert.deepEqual(unit.needs?.map((n) => n.job), ['build']);
    assert.deepEqual(unit.reports, { junit: ['junit.xml'] });
    assert.equal(unit.retry.max, 1);
    assert.equal(unit.timeoutMs, 600_000);
    assert.deepEqual(job(c, 'production').deploy, { environment: 'production' });
    assert.equal(job(c, 'production').rules?.[0].if, '$FERRY_BRANCH == "main"');
    assert.deepEqual(job(c, 'build').cache, [{ key: 'npm-$FERRY_BRANCH', paths: ['.npm/'], policy: 'pull-push', when: 'on_success' }]);
    assert.equal(Object.keys(c.environments).length, 2);
    assert.equal(c.workflowRules, null);
  });

  it('throws ConfigError with every issue', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-config-'));
    const file = join(dir, 'ferry.yml');
    await writeFile(file, 'build:\n  scirpt: make\ntest:\n  script: 5\n');
    await assert.rejects(loadConfig(file), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.issues.map((i) => `${i.code}@${i.pos.line}:${i.pos.col}`), ['unknown-key@2:3', 'wrong-type@4:11']);
      assert.equal(e.issues[0].pos.file, file);
      return true;
    });
  });
});

describe('defaults', () => {
  it('fills every default of a minimal job', () => {
    const c = ok('build:\n  script: make\n');
    assert.deepEqual(c.stages, ['.pre', 'build', 'test', 'deploy', '.post']);
    const { pos, ...rest } = job(c, 'build');
    assert.deepEqual(pos, { file: 'ferry.yml', line: 1, col: 1 });
    assert.deepEqual(rest, {
      name: 'build',
      stage: 'test',
      script: ['make'],
      beforeScript: [],
      afterScript: [],
      needs: null,
      rules: null,
      when: 'on_success',
      allowFailure: false,
      retry: { max: 0, when: ['always'], exitCodes: [] },
      variables: {},
      cache: [],
      reports: { junit: [] },
      tags: [],
    });
    assert.deepEqual(c.variables, {});
    assert.deepEqual(c.environments, {});
  });

  it('keeps .pre first and .post last around the given stages', () => {
    assert.deepEqual(ok('stages: [lint, .post, ship]\na: { stage: lint, script: x }\n').stages, ['.pre', 'lint', 'ship', '.post']);
  });

  it('makes manual jobs allowed to fail unless they say otherwise', () => {
    const c = ok('a: { script: x, when: manual }\nb: { script: x, when: manual, allow_failure: false }\n');
    assert.equal(job(c, 'a').allowFailure, true);
    assert.equal(job(c, 'b').allowFailure, false);
  });

  it('tells needs: [] (start at once) from no needs (stage order)', () => {
    const c = ok('a: { script: x, needs: [] }\nb: { script: x }\n');
    assert.deepEqual(job(c, 'a').needs, []);
    assert.equal(job(c, 'b').needs, null);
  });
});

describe('job keys', () => {
  it('normalizes the long forms', () => {
    const c = ok(yml`
      variables:
        VERSION: 1.10
        DEBUG: true
        PORT: 8080
        DESCRIBED: { value: "x", description: "what it is" }
      build:
        stage: build
        script: make
        before_script: [echo a, [echo b, echo c]]
        after_script: echo done
        needs: [{ job: lint, artifacts: false, optional: true }, lint2]
        allow_failure: { exit_codes: [3, 4] }
        retry: { max: 2, when: [script_failure, runner_system_failure], exit_codes: 137 }
        timeout: 1h 30m
        variables: { A: 1 }
        artifacts:
          paths: [dist/]
          exclude: [dist/*.map]
          expire_in: 1 week
          when: always
          reports: { junit: [a.xml, b.xml] }
        reports: { junit: c.xml }
        cache:
          - { key: k1, paths: [a], policy: pull }
          - { paths: [b], when: always }
        tags: [linux]
        interruptible: true
        resource_group: prod
        coverage: '/Lines: (\d+)%/'
        dependencies: [lint]
        image: node:20
        services: [postgres]
      lint: { stage: .pre, script: x }
      lint2: { stage: .pre, script: x }
    `);
    assert.deepEqual(c.variables, { VERSION: '1.10', DEBUG: 'true', PORT: '8080', DESCRIBED: 'x' });
    const b = job(c, 'build');
    assert.deepEqual(b.beforeScript, ['echo a', 'echo b', 'echo c']);
    assert.deepEqual(b.afterScript, ['echo done']);
    assert.deepEqual(b.needs?.map(({ pos, ...n }) => n), [
      { job: 'lint', artifacts: false, optional: true },
      { job: 'lint2', artifacts: true, optional: false },
    ]);
    assert.deepEqual(b.needs?.[0].pos, { file: 'ferry.yml', line: 11, col: 18 });
    assert.deepEqual(b.allowFailure, { exitCodes: [3, 4] });
    assert.deepEqual(b.retry, { max: 2, when: ['script_failure', 'runner_system_failure'], exitCodes: [137] });
    assert.equal(b.timeoutMs, 5_400_000);
    assert.deepEqual(b.variables, { A: '1' });
    assert.deepEqual(b.artifacts, { paths: ['dist/'], exclude: ['dist/*.map'], expireInMs: 7 * 86_400_000, when: 'always' });
    assert.deepEqual(b.reports.junit.sort(), ['a.xml', 'b.xml', 'c.xml']);
    assert.deepEqual(b.cache, [
      { key: 'k1', paths: ['a'], policy: 'pull', when: 'on_success' },
      { key: 'default', paths: ['b'], policy: 'pull-push', when: 'always' },
    ]);
    assert.deepEqual(b.tags, ['linux']);
    assert.equal(b.interruptible, true);
    assert.equal(b.resourceGroup, 'prod');
    assert.equal(b.coverage, '/Lines: (\\d+)%/');
    assert.deepEqual(b.dependencies, ['lint']);
  });

  it('reads artifacts.expire_in: never as keep forever', () => {
    const c = ok('a: { script: x, artifacts: { paths: [a], expire_in: never } }\n');
    assert.equal(job(c, 'a').artifacts?.expireInMs, undefined);
  });

  it('reads retry as a plain count and timeout as seconds', () => {
    const c = ok('a: { script: x, retry: 2, timeout: 90 }\n');
    assert.deepEqual(job(c, 'a').retry, { max: 2, when: ['always'], exitCodes: [] });
    assert.equal(job(c, 'a').timeoutMs, 90_000);
  });

  it('reads rules and workflow rules', () => {
    const c = ok(yml`
      workflow:
        rules:
          - if: $FERRY_BRANCH
            when: always
          - when: never
      a:
        script: x
        rules:
          - if: '$X == "1"'
            when: manual
            allow_failure: true
            variables: { Y: 2 }
          - when: on_success
    `);
    assert.deepEqual(c.workflowRules?.map(({ pos, ...r }) => r), [{ if: '$FERRY_BRANCH', when: 'always' }, { when: 'never' }]);
    const rules = job(c, 'a').rules!;
    assert.deepEqual(rules.map(({ pos, ...r }) => r), [
      { if: '$X == "1"', when: 'manual', allowFailure: true, variables: { Y: '2' } },
      { when: 'on_success' },
    ]);
    assert.deepEqual(rules[1].pos, { file: 'ferry.yml', line: 13, col: 7 });
  });

  it('reads parallel counts and matrices', () => {
    const c = ok(yml`
      a: { script: x, parallel: 3 }
      b:
        script: x
        parallel:
          matrix:
            - { NODE: [18, 20, 22], OS: linux }
            - { NODE: "21", OS: [mac, windows] }
    `);
    assert.equal(job(c, 'a').parallel, 3);
    assert.deepEqual(job(c, 'b').matrix, [
      { NODE: ['18', '20', '22'], OS: ['linux'] },
      { NODE: ['21'], OS: ['mac', 'windows'] },
    ]);
  });

  it('accepts a deploy job without script', () => {
    const c = ok('environments: { prod: { target: { command: x } } }\nship: { deploy: { environment: prod } }\n');
    assert.deepEqual(job(c, 'ship').script, []);
  });
});

describe('job styles', () => {
  it('accepts jobs at the top level and under jobs: together', () => {
    const c = ok('a: { script: x }\njobs:\n  b: { script: y, needs: [a] }\n');
    assert.deepEqual(c.jobs.map((j) => j.name), ['a', 'b']);
    assert.deepEqual(job(c, 'b').pos, { file: 'ferry.yml', line: 3, col: 3 });
  });

  it('leaves hidden templates out of the jobs', () => {
    const c = ok('.t: { script: x }\na: { extends: .t }\njobs:\n  .u: { tags: [z] }\n');
    assert.deepEqual(c.jobs.map((j) => j.name), ['a']);
  });
});

describe('extends and default', () => {
  it('merges templates deeply, replacing lists and scalars, over several levels', () => {
    const c = ok(yml`
      .base:
        script: [base]
        variables: { A: base, B: base }
        artifacts: { paths: [base], when: always }
        tags: [one]
      .mid:
        extends: .base
        variables: { B: mid, C: mid }
        tags: [two]
      job:
        extends: .mid
        variables: { C: job }
        artifacts: { paths: [job] }
    `);
    const j = job(c, 'job');
    assert.deepEqual(j.script, ['base']);
    assert.deepEqual(j.variables, { A: 'base', B: 'mid', C: 'job' });
    assert.deepEqual(j.artifacts?.paths, ['job']);
    assert.equal(j.artifacts?.when, 'always');
    assert.deepEqual(j.tags, ['two']);
  });

  it('lets later entries of an extends list win', () => {
    const c = ok('.a: { script: a, stage: build }\n.b: { script: b }\nj: { extends: [.a, .b] }\n');
    assert.deepEqual(job(c, 'j').script, ['b']);
    assert.equal(job(c, 'j').stage, 'build');
  });

  it('applies default: only where the job sets nothing itself', () => {
    const c = ok(yml`
      default:
        before_script: [setup]
        retry: 2
        timeout: 5m
        tags: [shared]
        cache: { key: d, paths: [d] }
        interruptible: true
      a: { script: x }
      b: { script: x, retry: 0, tags: [own], cache: [] }
      .t: { timeout: 1m }
      c: { script: x, extends: .t }
    `);
    const a = job(c, 'a');
    assert.deepEqual(a.beforeScript, ['setup']);
    assert.equal(a.retry.max, 2);
    assert.equal(a.timeoutMs, 300_000);
    assert.deepEqual(a.tags, ['shared']);
    assert.deepEqual(a.cache.map((x) => x.key), ['d']);
    assert.equal(a.interruptible, true);
    const b = job(c, 'b');
    assert.equal(b.retry.max, 0);
    assert.deepEqual(b.tags, ['own']);
    assert.deepEqual(b.cache, []);
    assert.equal(job(c, 'c').timeoutMs, 60_000);
  });
});

describe('YAML anchors and merge keys', () => {
  it('resolves aliases and << merges, explicit keys winning', () => {
    const c = ok(yml`
      .defs: &defs
        script: [shared]
        variables: &vars { A: "1", B: "2" }
      .more: &more
        tags: [x]
        script: [more]
      a:
        <<: [*defs, *more]
        variables:
          <<: *vars
          B: "3"
      b:
        <<: *defs
        script: own
    `);
    assert.deepEqual(job(c, 'a').script, ['shared']);
    assert.deepEqual(job(c, 'a').tags, ['x']);
    assert.deepEqual(job(c, 'a').variables, { A: '1', B: '3' });
    assert.deepEqual(job(c, 'b').script, ['own']);
  });
});
