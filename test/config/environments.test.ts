// `environments:` normalized into EnvironmentConfig: defaults, short forms, and every problem with
// its stable code and exactly where it points (line:col, 1-based).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { CanarySpec, EnvironmentConfig, PipelineConfig } from '../../src/config/types.js';
import { fixture } from '../helpers/paths.js';
import { bad, ok, one, yml } from './helpers.js';

const SHIP = 'ship: { deploy: { environment: prod } }\n';

/** `environments:` with one environment `prod` whose body is `body` (indented four spaces). */
function envText(body: string): string {
  const lines = body.replace(/^\n/, '').replace(/\s+$/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return `${SHIP}environments:\n  prod:\n${lines.map((l) => `    ${l.slice(indent)}`).join('\n')}\n`;
}

function prod(body: string): EnvironmentConfig {
  const c: PipelineConfig = ok(envText(body));
  return c.environments.prod;
}

const canary = (e: EnvironmentConfig): CanarySpec => {
  assert.equal(e.strategy.type, 'canary');
  return e.strategy as CanarySpec;
};

const pos = (line: number, col: number) => ({ file: 'ferry.yml', line, col });

const T2 = 'target: { command: x }\n';

/** Where `needle` (its `nth` occurrence, from 0) starts in `text`, 1-based like issues. */
function where(text: string, needle: string, nth = 0): { line: number; col: number } {
  let i = -1;
  for (let k = 0; k <= nth; k++) {
    i = text.indexOf(needle, i + 1);
    assert.ok(i >= 0, `${needle} not in the text`);
  }
  const before = text.slice(0, i).split('\n');
  return { line: before.length, col: before[before.length - 1].length + 1 };
}

const posOf = (text: string, needle: string, nth = 0) => ({ file: 'ferry.yml', ...where(text, needle, nth) });

/** Parses bad `text`; asserts exactly one issue with this code, where `needle` starts. */
function oneAt(text: string, code: string, needle: string, nth = 0) {
  const { line, col } = where(text, needle, nth);
  return one(bad(text), code, line, col);
}

describe('environments: defaults', () => {
  it('fills every default from a target alone', () => {
    assert.deepEqual(prod('target: { command: node server.js }'), {
      name: 'prod',
      target: { type: 'process', command: 'node server.js', instances: 1 },
      strategy: { type: 'rolling', maxSurge: 1, maxUnavailable: 0 },
      health: {
        readiness: { path: '/healthz', intervalMs: 250, timeoutMs: 2000, failureThreshold: 1 },
        liveness: { path: '/healthz', intervalMs: 5000, timeoutMs: 2000, failureThreshold: 3 },
        startTimeoutMs: 60_000,
      },
      router: { host: '127.0.0.1', sticky: false },
      protection: { approvals: 0, branches: null, freeze: [] },
      variables: {},
      onRestart: 'resume',
      pos: pos(3, 3),
    });
  });

  it('normalizes the DESIGN example', async () => {
    const c = await loadConfig(fixture('config', 'design-example.yml'));
    const staging = c.environments.staging;
    assert.deepEqual(staging.target, { type: 'process', command: 'node dist/server.js', instances: 2 });
    assert.deepEqual(staging.strategy, { type: 'rolling', maxSurge: 1, maxUnavailable: 0 });
    assert.equal(staging.health.readiness.path, '/healthz');
    const production = c.environments.production;
    const s = canary(production);
    assert.deepEqual(
      s.steps.map((st) => (st.kind === 'weight' ? `weight ${st.weight}` : st.kind === 'approval' ? 'approval' : `${st.kind} ${st.durationMs}`)),
      ['weight 5', 'analysis 30000', 'weight 25', 'analysis 30000', 'approval', 'weight 100'],
    );
    assert.deepEqual(s.steps[0].pos, { file: c.file, line: 31, col: 17 });
    assert.equal(s.analysis?.intervalMs, 5000);
    assert.equal(s.analysis?.failureLimit, 1);
    assert.equal(s.analysis?.inconclusiveLimit, 5);
    assert.deepEqual(
      s.analysis?.metrics.map((m) => [m.name, m.source, m.condition]),
      [
        ['errors', 'router', 'error_rate < 0.01'],
        ['latency', 'router', 'p99_ms < 500'],
        ['saturation', 'prometheus', 'result < 0.8'],
      ],
    );
    assert.deepEqual(s.analysis?.metrics[2], {
      name: 'saturation',
      source: 'prometheus',
      condition: 'result < 0.8',
      query: '...',
      address: 'http://127.0.0.1:9090',
      pos: { file: c.file, line: 39, col: 15 },
    });
    assert.deepEqual(production.protection, {
      approvals: 1,
      branches: ['main'],
      freeze: [{ cron: '0 17 * * 5', durationMs: 64 * 3_600_000, pos: { file: c.file, line: 40, col: 60 } }],
    });
  });
});

describe('environments: targets', () => {
  it('reads a process target', () => {
    const e = prod('target: { type: process, command: node s.js, instances: 3, cwd: ./app }');
    assert.deepEqual(e.target, { type: 'process', command: 'node s.js', instances: 3, cwd: 'app' });
  });

  it('reads a script target, commands as a string or a list', () => {
    const e = prod(`
      target:
        type: script
        deploy: [./deploy.sh, [echo a, echo b]]
        set_weight: ./weight.sh
        promote: ./promote.sh
        rollback: [./rollback.sh]
        timeout: 45m
    `);
    assert.deepEqual(e.target, {
      type: 'script',
      deploy: ['./deploy.sh', 'echo a', 'echo b'],
      setWeight: ['./weight.sh'],
      promote: ['./promote.sh'],
      rollback: ['./rollback.sh'],
      timeoutMs: 45 * 60_000,
    });
    oneAt(envText('target: { type: process, command: x, timeout: 5m }'), 'misplaced-key', 'timeout');
  });

  it('missing-key for an environment without target, at its name', () => {
    const i = one(bad(`${SHIP}environments:\n  prod: {}\n`), 'missing-key', 3, 3);
    assert.equal(i.message, 'environment `prod` has no `target`');
    assert.match(i.hint!, /target: \{ type: process, command: node server\.js/);
  });

  it('missing-key for a process target without command, and a script target without deploy', () => {
    const a = oneAt(envText('target: { instances: 2 }'), 'missing-key', '{ instances');
    assert.equal(a.message, '`environments.prod.target` needs `command`');
    assert.match(a.hint!, /\$PORT/);
    const b = oneAt(envText('target: { type: script }'), 'missing-key', '{ type');
    assert.equal(b.message, '`environments.prod.target` needs `deploy`');
  });

  it('misplaced-key for keys of the other kind of target', () => {
    const a = oneAt(envText('target: { command: x, deploy: ./d.sh }'), 'misplaced-key', 'deploy: ./');
    assert.equal(a.message, '`deploy` is for script targets; this target is `type: process`');
    assert.match(a.hint!, /type: script/);
    oneAt(envText('target: { type: script, deploy: x, instances: 2 }'), 'misplaced-key', 'instances');
  });

  it('unknown-key with did-you-mean, from the schema', () => {
    const i = oneAt(envText('target: { command: x, instanses: 2 }'), 'unknown-key', 'instanses');
    assert.equal(i.message, 'unknown key `instanses` in `environments.prod.target`');
    assert.equal(i.hint, 'did you mean `instances`?');
    const j = oneAt(envText('target: { command: x }\nstrategie: rolling'), 'unknown-key', 'strategie');
    assert.equal(j.hint, 'did you mean `strategy`?');
  });

  it('bad-value for instances below 1 and a wrong target type', () => {
    assert.match(oneAt(envText('target: { command: x, instances: 0 }'), 'bad-value', '0 }').message, /at least 1/);
    assert.equal(oneAt(envText('target: { type: docker, command: x }'), 'bad-value', 'docker').hint, 'use one of: process, script');
  });

  it('bad-value for a cwd outside the release', () => {
    oneAt(envText('target: { command: x, cwd: ../elsewhere }'), 'bad-value', '../');
    oneAt(envText('target: { command: x, cwd: /srv }'), 'bad-value', '/srv');
  });

  it('wrong-type for a target that is not a map', () => {
    const i = oneAt(envText('target: node s.js'), 'wrong-type', 'node');
    assert.equal(i.message, '`environments.prod.target` must be a map, not a string');
  });
});

describe('environments: strategies', () => {
  const T = T2;

  it('reads rolling and blue-green in both forms', () => {
    assert.deepEqual(prod(`${T}strategy: { rolling: { max_surge: 2, max_unavailable: 1 } }`).strategy, {
      type: 'rolling',
      maxSurge: 2,
      maxUnavailable: 1,
    });
    assert.deepEqual(prod(`${T}strategy:\n  rolling:`).strategy, { type: 'rolling', maxSurge: 1, maxUnavailable: 0 });
    assert.deepEqual(prod(`${T}strategy: blue-green`).strategy, { type: 'blue-green', smoke: [], keepWarmMs: 300_000 });
    const text = envText(`
      target: { command: x }
      strategy:
        blue-green:
          preview_port: 9001
          keep_warm: 10m
          smoke:
            - { url: /healthz }
            - { url: "http://127.0.0.1:9001/ready", method: HEAD, status: [200, 204], body: "^ok", timeout: 1s }
          analysis:
            metrics: [{ name: latency, condition: "p99_ms < 500" }]
    `);
    assert.deepEqual(ok(text).environments.prod.strategy, {
      type: 'blue-green',
      previewPort: 9001,
      keepWarmMs: 600_000,
      smoke: [
        { url: '/healthz', method: 'GET', timeoutMs: 5000 },
        { url: 'http://127.0.0.1:9001/ready', method: 'HEAD', expectStatus: [200, 204], expectBody: '^ok', timeoutMs: 1000 },
      ],
      analysis: {
        intervalMs: 1000,
        failureLimit: 1,
        inconclusiveLimit: 5,
        metrics: [{ name: 'latency', source: 'router', condition: 'p99_ms < 500', minRequests: 20, pos: posOf(text, '{ name: latency') }],
      },
    });
  });

  it('reads every kind of canary step, each with its position', () => {
    const text = envText(`
      target: { command: x }
      strategy:
        canary:
          steps:
            - weight: 5
            - pause: 30s
            - pause: {}
            - pause: true
            - pause:
            - analysis: 1m
            - approval: true
            - weight: 100
          analysis:
            metrics: [{ name: errors, condition: "error_rate < 0.01" }]
    `);
    assert.deepEqual(canary(ok(text).environments.prod).steps, [
      { kind: 'weight', weight: 5, pos: posOf(text, 'weight: 5') },
      { kind: 'pause', durationMs: 30_000, pos: posOf(text, 'pause: 30s') },
      { kind: 'pause', pos: posOf(text, 'pause: {}') },
      { kind: 'pause', pos: posOf(text, 'pause: true') },
      { kind: 'pause', pos: posOf(text, 'pause:\n') },
      { kind: 'analysis', durationMs: 60_000, pos: posOf(text, 'analysis: 1m') },
      { kind: 'approval', pos: posOf(text, 'approval: true') },
      { kind: 'weight', weight: 100, pos: posOf(text, 'weight: 100') },
    ]);
  });

  it('adds a final { weight: 100 } when the last weight step is below 100', () => {
    const text = envText(`${T}strategy: { canary: { steps: [{ weight: 10 }, { weight: 50 }, { pause: 1m }] } }`);
    const s = canary(ok(text).environments.prod);
    assert.deepEqual(
      s.steps.map((st) => st.kind + (st.kind === 'weight' ? st.weight : '')),
      ['weight10', 'weight50', 'pause', 'weight100'],
    );
    // The added step has no line of its own: it points at the list.
    assert.deepEqual(s.steps[3].pos, posOf(text, '[{ weight: 10'));
    const only = canary(prod(`${T}strategy: { canary: { steps: [{ approval: true }] } }`));
    assert.deepEqual(only.steps.map((st) => st.kind), ['approval', 'weight']);
    const full = canary(prod(`${T}strategy: { canary: { steps: [{ weight: 100 }, { pause: 5m }] } }`));
    assert.equal(full.steps.length, 2);
  });

  it('missing-key for a canary without steps, with an example', () => {
    const i = oneAt(envText(`${T}strategy: canary`), 'missing-key', 'canary');
    assert.equal(i.message, '`strategy: canary` needs its steps');
    assert.match(i.hint!, /steps: \[\{ weight: 10 \}/);
    const j = oneAt(envText(`${T}strategy: { canary: { analysis: { metrics: [{ name: e, condition: "requests > 1" }] } } }`), 'missing-key', '{ analysis');
    assert.equal(j.message, '`environments.prod.strategy.canary` needs `steps`');
  });

  it('bad-value for an empty canary and for two strategies at once', () => {
    oneAt(envText(`${T}strategy: { canary: { steps: [] } }`), 'bad-value', '[]');
    const i = oneAt(envText(`${T}strategy: { rolling: {}, canary: { steps: [] } }`), 'bad-value', 'canary');
    assert.equal(i.message, '`environments.prod.strategy` has both `rolling` and `canary`; an environment has one strategy');
  });

  it('bad-value for a rolling update that can do nothing', () => {
    const i = oneAt(envText(`${T}strategy: { rolling: { max_surge: 0 } }`), 'bad-value', '{ max_surge');
    assert.match(i.message, /max_surge and max_unavailable are both 0/);
  });

  it('bad-step for an empty step and a step with two keys', () => {
    const text = envText(`${T}strategy: { canary: { steps: [{}, { weight: 5, pause: 1m }] } }`);
    const issues = bad(text);
    assert.equal(issues.length, 2, JSON.stringify(issues));
    const [empty, two] = issues;
    assert.deepEqual([empty.code, empty.pos], ['bad-step', posOf(text, '{}')]);
    assert.match(empty.hint!, /\{ weight: 10 \}, \{ pause: 1m \}/);
    assert.deepEqual([two.code, two.pos], ['bad-step', posOf(text, 'pause: 1m')]);
    assert.equal(two.message, '`environments.prod.strategy.canary.steps[1]` has both `weight` and `pause`; a step does one thing');
  });

  it('reports a misspelled step key once, with did-you-mean', () => {
    const text = envText(`${T}strategy: { canary: { steps: [{ wieght: 5 }] } }`);
    assert.equal(bad(text).length, 1);
    assert.equal(oneAt(text, 'unknown-key', 'wieght').hint, 'did you mean `weight`?');
  });

  it('bad-value for weights outside 0..100, wrong-type for fractions (from the schema)', () => {
    assert.match(oneAt(envText(`${T}strategy: { canary: { steps: [{ weight: 150 }] } }`), 'bad-value', '150').message, /at most 100, not 150/);
    oneAt(envText(`${T}strategy: { canary: { steps: [{ weight: -1 }] } }`), 'bad-value', '-1');
    oneAt(envText(`${T}strategy: { canary: { steps: [{ weight: 2.5 }] } }`), 'wrong-type', '2.5');
  });

  it('bad-duration for pause and analysis steps; approval takes only true', () => {
    const i = oneAt(envText(`${T}strategy: { canary: { steps: [{ pause: soon }] } }`), 'bad-duration', 'soon');
    assert.equal(i.message, '`soon` is not a duration (environments.prod.strategy.canary.steps[0].pause)');
    oneAt(envText(`${T}strategy: { canary: { steps: [{ analysis: 0s }], analysis: { metrics: [{ name: e, condition: "requests > 1" }] } } }`), 'bad-value', '0s');
    oneAt(envText(`${T}strategy: { canary: { steps: [{ approval: false }] } }`), 'bad-value', 'false');
  });

  it('missing-analysis for an analysis step without canary analysis', () => {
    const i = oneAt(envText(`${T}strategy: { canary: { steps: [{ analysis: 30s }] } }`), 'missing-analysis', '30s');
    assert.match(i.hint!, /metrics:/);
  });

  it('missing-key for canary weights on a script target without set_weight', () => {
    const text = envText('target: { type: script, deploy: ./d.sh }\nstrategy: { canary: { steps: [{ weight: 10 }, { weight: 50 }] } }');
    const i = oneAt(text, 'missing-key', '10');
    assert.match(i.message, /no `set_weight`/);
    ok(envText('target: { type: script, deploy: ./d.sh, set_weight: ./w.sh }\nstrategy: { canary: { steps: [{ weight: 10 }] } }'));
    // A canary of pauses and approvals needs no traffic split.
    ok(envText('target: { type: script, deploy: ./d.sh }\nstrategy: { canary: { steps: [{ approval: true }] } }'));
  });
});

describe('environments: analysis', () => {
  const withMetrics = (metrics: string, target = '{ command: x }') =>
    envText(`target: ${target}\nstrategy:\n  canary:\n    steps: [{ weight: 10 }]\n    analysis:\n      metrics:\n${metrics.split('\n').map((l) => `        ${l}`).join('\n')}`);

  it('reads metrics of each source with their defaults', () => {
    const text = withMetrics(
      [
        '- { name: errors, condition: "error_rate < stable_error_rate + 0.01", min_requests: 50 }',
        '- { name: sat, source: prometheus, query: "up", address: "http://prom:9090/", condition: "result < 0.8" }',
        '- { name: page, source: web, url: /, body: "<title>", timeout: 2s, condition: "status == 200 && body_matches == 1" }',
        '- { name: up, source: web, url: "http://127.0.0.1:9/up", method: POST, status: [200, 201], condition: "status_ok == 1 && duration_ms < 500" }',
      ].join('\n'),
    );
    assert.deepEqual(canary(ok(text).environments.prod).analysis, {
      intervalMs: 1000,
      failureLimit: 1,
      inconclusiveLimit: 5,
      metrics: [
        { name: 'errors', source: 'router', condition: 'error_rate < stable_error_rate + 0.01', minRequests: 50, pos: posOf(text, '{ name: errors') },
        { name: 'sat', source: 'prometheus', query: 'up', address: 'http://prom:9090', condition: 'result < 0.8', pos: posOf(text, '{ name: sat') },
        {
          name: 'page',
          source: 'web',
          url: '/',
          method: 'GET',
          expectBody: '<title>',
          timeoutMs: 2000,
          condition: 'status == 200 && body_matches == 1',
          pos: posOf(text, '{ name: page'),
        },
        {
          name: 'up',
          source: 'web',
          url: 'http://127.0.0.1:9/up',
          method: 'POST',
          expectStatus: [200, 201],
          timeoutMs: 5000,
          condition: 'status_ok == 1 && duration_ms < 500',
          pos: posOf(text, '{ name: up'),
        },
      ],
    });
  });

  it('reads interval and limits', () => {
    const text = envText(`${T2}strategy: { canary: { steps: [{ weight: 5 }], analysis: { interval: 5s, failure_limit: 0, inconclusive_limit: 10, metrics: [{ name: e, condition: "requests > 1" }] } } }`);
    const a = canary(ok(text).environments.prod).analysis!;
    assert.deepEqual([a.intervalMs, a.failureLimit, a.inconclusiveLimit], [5000, 0, 10]);
  });

  it('missing-key for a metric without condition, with an example for its source', () => {
    const i = oneAt(withMetrics('- { name: errors }'), 'missing-key', '{ name');
    assert.equal(i.message, '`environments.prod.strategy.canary.analysis.metrics[0]` needs `condition`');
    assert.match(i.hint!, /condition: "error_rate < 0\.01"/);
    assert.match(oneAt(withMetrics('- { name: s, source: prometheus, query: up }'), 'missing-key', '{ name').hint!, /result < 0\.8/);
    assert.match(oneAt(withMetrics('- { name: w, source: web, url: / }'), 'missing-key', '{ name').hint!, /status == 200/);
  });

  it('missing-key for a prometheus metric without query, a web metric without url, a metric without name', () => {
    assert.match(oneAt(withMetrics('- { name: s, source: prometheus, condition: "result < 1" }'), 'missing-key', '{ name').message, /needs `query`/);
    assert.match(oneAt(withMetrics('- { name: w, source: web, condition: "status == 200" }'), 'missing-key', '{ name').message, /needs `url`/);
    assert.match(oneAt(withMetrics('- { condition: "error_rate < 1" }'), 'missing-key', '{ condition').message, /needs `name`/);
  });

  it('misplaced-key for keys of another source, suggesting the source', () => {
    const text = withMetrics('- { name: s, query: up, condition: "result < 1" }');
    const i = oneAt(text, 'misplaced-key', 'query');
    assert.equal(i.message, '`query` is for prometheus metrics; the source of this one is router (the default)');
    assert.equal(i.hint, 'add `source: prometheus`, or remove `query`');
    // ... and `result` is then unknown to a router metric.
    oneAt(text, 'unknown-identifier', 'result');
    const s = oneAt(withMetrics('- { name: e, status: 200, condition: "error_rate < 1" }'), 'misplaced-key', 'status');
    assert.equal(s.message, '`status` is for web metrics; the source of this one is router (the default)');
  });

  it('bad-condition points inside the condition', () => {
    const text = withMetrics('- { name: e, condition: "error_rate < 0.01 && p99_ms <" }');
    const i = oneAt(text, 'bad-condition', '" }');
    assert.equal(
      i.message,
      'bad condition in `environments.prod.strategy.canary.analysis.metrics[0]`: the condition ends too early; expected a number or a name after `<`',
    );
    assert.match(i.hint!, /error_rate < 0\.01/);
    // Single quotes with a doubled quote inside: the column still lands on the mistake.
    oneAt(withMetrics("- { name: e, condition: 'p99_ms < 5 && ''x'' < 1' }"), 'bad-condition', "''x");
    oneAt(withMetrics('- { name: e, condition: "p99_ms = 5" }'), 'bad-condition', '= 5');
  });

  it('bad-condition in a block scalar names the character', () => {
    const text = withMetrics('- name: e\n  condition: >-\n    error_rate < 0.01 &&\n    p99_ms << 5');
    const i = oneAt(text, 'bad-condition', '>-');
    assert.match(i.message, /found `<` \(at character 30\)$/);
  });

  it('unknown-identifier for a value the source does not have, with did-you-mean', () => {
    const i = oneAt(withMetrics('- { name: l, condition: "p99_ms < stable_p99 * 2" }'), 'unknown-identifier', 'stable_p99');
    assert.equal(i.message, '`stable_p99` is not a value of router metrics');
    assert.equal(i.hint, 'did you mean `stable_p99_ms`?');
    const j = oneAt(withMetrics('- { name: w, source: web, url: /, condition: "latency < 5" }'), 'unknown-identifier', 'latency');
    assert.equal(j.hint, 'web metrics have: status, status_ok, duration_ms, body_matches');
  });

  it('missing-key for body_matches without body', () => {
    const i = oneAt(withMetrics('- { name: w, source: web, url: /, condition: "body_matches == 1" }'), 'missing-key', 'body_matches');
    assert.match(i.message, /`body_matches` needs `body:`/);
  });

  it('unknown-identifier for stable_* under blue-green, where stable has no traffic', () => {
    const text = envText(`${T2}strategy:\n  blue-green:\n    analysis:\n      metrics: [{ name: l, condition: "p99_ms < stable_p99_ms" }]`);
    const i = oneAt(text, 'unknown-identifier', 'stable_p99_ms');
    assert.match(i.message, /never has a value under blue-green/);
  });

  it('bad-source for router metrics on a script target; bad-value for a path without an address', () => {
    const target = '{ type: script, deploy: x, set_weight: y }';
    oneAt(withMetrics('- { name: e, condition: "error_rate < 1" }', target), 'bad-source', '{ name');
    oneAt(withMetrics('- { name: e, source: router, condition: "error_rate < 1" }', target), 'bad-source', 'router');
    oneAt(withMetrics('- { name: w, source: web, url: /h, condition: "status == 200" }', target), 'bad-value', '/h');
    ok(withMetrics('- { name: w, source: web, url: "https://x.example/h", condition: "status == 200" }', target));
  });

  it('duplicate-metric for two metrics of one name', () => {
    const text = withMetrics('- { name: e, condition: "error_rate < 1" }\n- { name: e, condition: "p99_ms < 1" }');
    const i = oneAt(text, 'duplicate-metric', 'e, condition: "p99');
    assert.match(i.hint!, new RegExp(`line ${where(text, '{ name: e').line}`));
  });

  it('bad-value for an interval of 0, an empty metrics list, bad URLs; bad-regex for a body', () => {
    oneAt(envText(`${T2}strategy: { canary: { steps: [{ weight: 9 }], analysis: { interval: 0, metrics: [{ name: e, condition: "requests > 1" }] } } }`), 'bad-value', '0,');
    oneAt(envText(`${T2}strategy: { canary: { steps: [{ weight: 9 }], analysis: { metrics: [] } } }`), 'bad-value', '[] }');
    oneAt(withMetrics('- { name: w, source: web, url: /, body: "(", condition: "body_matches == 1" }'), 'bad-regex', '"("');
    oneAt(withMetrics('- { name: w, source: web, url: "ftp://x", condition: "status == 1" }'), 'bad-value', '"ftp');
    oneAt(withMetrics('- { name: s, source: prometheus, query: up, address: "prom:9090", condition: "result < 1" }'), 'bad-value', '"prom:');
  });
});

describe('environments: health, router, variables', () => {
  it('reads health in its short and long forms', () => {
    assert.deepEqual(prod(`${T2}health: { path: /ready }`).health.liveness?.path, '/ready');
    assert.deepEqual(
      prod(`
        target: { command: x }
        health:
          path: /ready
          readiness: { interval: 100ms, timeout: 1s, failure_threshold: 2 }
          liveness: false
          start_timeout: 2m
      `).health,
      {
        readiness: { path: '/ready', intervalMs: 100, timeoutMs: 1000, failureThreshold: 2 },
        liveness: null,
        startTimeoutMs: 120_000,
      },
    );
    assert.deepEqual(prod(`${T2}health: { liveness: { path: /live, interval: 10s } }`).health.liveness, {
      path: '/live',
      intervalMs: 10_000,
      timeoutMs: 2000,
      failureThreshold: 3,
    });
  });

  it('bad-value for a probe path without a slash and a zero interval', () => {
    assert.equal(oneAt(envText(`${T2}health: { path: healthz }`), 'bad-value', 'healthz').hint, 'write it as /healthz');
    oneAt(envText(`${T2}health: { readiness: { interval: 0s } }`), 'bad-value', '0s');
    oneAt(envText(`${T2}health: { start_timeout: later }`), 'bad-duration', 'later');
    oneAt(envText(`${T2}health: { liveness: { failure_threshold: 0 } }`), 'bad-value', '0 }');
  });

  it('reads the router, and `port:` as its shorthand', () => {
    assert.deepEqual(prod(`${T2}router: { port: 8080, host: 0.0.0.0, sticky: true }`).router, { port: 8080, host: '0.0.0.0', sticky: true });
    assert.deepEqual(prod(`${T2}port: 8080`).router, { port: 8080, host: '127.0.0.1', sticky: false });
  });

  it('conflicting-keys for port and router.port; bad-value for ports out of range', () => {
    oneAt(envText(`${T2}port: 8080\nrouter: { port: 8081 }`), 'conflicting-keys', 'port: 8080');
    assert.match(oneAt(envText(`${T2}port: 70000`), 'bad-value', '70000').message, /at most 65535/);
    oneAt(envText(`${T2}router: { port: 0 }`), 'bad-value', '0 }');
    oneAt(envText(`${T2}router: { host: "not a host" }`), 'bad-value', '"not');
  });

  it('port-conflict between environments', () => {
    const text = yml`
      environments:
        a: { target: { command: x }, port: 8080 }
        b: { target: { command: x }, router: { port: 8080 } }
        c: { target: { command: x }, strategy: { blue-green: { preview_port: 8080 } } }
        d: { target: { command: x }, router: { port: 8080, host: 127.0.0.2 } }
        e: { target: { command: x }, strategy: { blue-green: { preview_port: 9000 } } }
      ship: { deploy: { environment: a } }
    `;
    const issues = bad(text);
    assert.deepEqual(issues.map((i) => [i.code, i.pos]), [
      ['port-conflict', posOf(text, '8080', 1)],
      ['port-conflict', posOf(text, '8080', 2)],
    ]);
    assert.equal(issues[0].message, 'port 8080 is already used by the router of environment `a`');
  });

  it('misplaced-key for router, port and health on a script target', () => {
    const text = envText('target: { type: script, deploy: x }\nport: 80\nhealth: { path: /h }');
    assert.deepEqual(bad(text).map((i) => [i.code, i.pos]), [
      ['misplaced-key', posOf(text, 'port')],
      ['misplaced-key', posOf(text, 'health')],
    ]);
  });

  it('keeps variables as written', () => {
    assert.deepEqual(prod(`${T2}variables: { VERSION: 1.10, DEBUG: true, NAME: api }`).variables, {
      VERSION: '1.10',
      DEBUG: 'true',
      NAME: 'api',
    });
  });
});

describe('environments: router provider haproxy', () => {
  const H = 'router: { provider: haproxy, socket: /run/haproxy/admin.sock, backend: app }';

  it('reads socket, backend, stats_url and url; the edge stays the default', () => {
    assert.deepEqual(prod(`${T2}router: { provider: haproxy, socket: /run/haproxy/admin.sock, backend: app, stats_url: "http://127.0.0.1:8404/metrics", url: "http://127.0.0.1:8080/" }`).router, {
      provider: 'haproxy',
      host: '127.0.0.1',
      sticky: false,
      socket: '/run/haproxy/admin.sock',
      backend: 'app',
      statsUrl: 'http://127.0.0.1:8404/metrics',
      url: 'http://127.0.0.1:8080',
    });
    assert.equal(prod(`${T2}router: { provider: haproxy, socket: "127.0.0.1:9999", backend: be_app.v2 }`).router.socket, '127.0.0.1:9999');
    assert.equal(prod(`${T2}router: { provider: haproxy, socket: "[::1]:9999", backend: app }`).router.socket, '[::1]:9999');
    assert.deepEqual(prod(`${T2}router: { provider: edge, port: 8080 }`).router, { provider: 'edge', port: 8080, host: '127.0.0.1', sticky: false });
    assert.equal(prod(T2).router.provider, undefined);
  });

  it('missing-key for socket and backend, at the router', () => {
    const text = envText(`${T2}router: { provider: haproxy }`);
    const issues = bad(text);
    assert.deepEqual(issues.map((i) => [i.code, i.pos, i.message]), [
      ['missing-key', posOf(text, '{ provider'), '`environments.prod.router` needs `socket`'],
      ['missing-key', posOf(text, '{ provider'), '`environments.prod.router` needs `backend`'],
    ]);
    assert.match(issues[0].hint ?? '', /level admin/);
  });

  it('bad-value for a socket, backend or URL HAProxy would not take', () => {
    const r = (kv: string) => envText(`${T2}router: { provider: haproxy, socket: /s, backend: app, ${kv} }`);
    assert.match(oneAt(envText(`${T2}router: { provider: haproxy, socket: admin.sock, backend: app }`), 'bad-value', 'admin.sock').message, /absolute path of a unix socket nor HOST:PORT/);
    oneAt(envText(`${T2}router: { provider: haproxy, socket: "127.0.0.1:70000", backend: app }`), 'bad-value', '"127.0.0.1:70000"');
    oneAt(envText(`${T2}router: { provider: haproxy, socket: /s, backend: "my app" }`), 'bad-value', '"my app"');
    oneAt(r('stats_url: "127.0.0.1:8404"'), 'bad-value', '"127.0.0.1:8404"');
    assert.match(oneAt(r('url: "ftp://x"'), 'bad-value', '"ftp://x"').message, /not an http\(s\) URL \(environments\.prod\.router\.url\)/);
    // The schema's: a provider Ferry does not know.
    assert.match(oneAt(envText(`${T2}router: { provider: nginx }`), 'bad-value', 'nginx').hint ?? '', /edge, haproxy/);
  });

  it("misplaced-key for the edge's keys under HAProxy, and HAProxy's under the edge", () => {
    const text = envText(`${T2}port: 80\nrouter: { provider: haproxy, socket: /s, backend: app, port: 8080, sticky: true }`);
    assert.deepEqual(bad(text).map((i) => [i.code, i.pos]), [
      ['misplaced-key', posOf(text, 'port: 80')],
      ['misplaced-key', posOf(text, 'port: 8080')],
      ['misplaced-key', posOf(text, 'sticky')],
    ]);
    const edge = envText(`${T2}router: { port: 8080, backend: app, stats_url: "http://x/metrics" }`);
    const issues = bad(edge);
    assert.deepEqual(issues.map((i) => [i.code, i.pos]), [
      ['misplaced-key', posOf(edge, 'backend')],
      ['misplaced-key', posOf(edge, 'stats_url')],
    ]);
    assert.equal(issues[0].hint, 'add provider: haproxy to route through your HAProxy, or remove it');
  });

  it('unknown-identifier for latency quantiles, which HAProxy cannot give; the rest of the router values stay', () => {
    const text = envText(`
      target: { command: x }
      ${H}
      strategy:
        canary:
          steps: [{ weight: 10 }]
          analysis:
            metrics:
              - { name: errors, condition: "error_rate < 0.01 && requests > 10 && request_rate > stable_request_rate / 100" }
              - { name: latency, condition: "p99_ms < stable_p99_ms * 2" }
    `);
    const issues = bad(text);
    assert.deepEqual(issues.map((i) => [i.code, i.pos]), [
      ['unknown-identifier', posOf(text, 'p99_ms <')],
      ['unknown-identifier', posOf(text, 'stable_p99_ms')],
    ]);
    assert.match(issues[0].message, /never has a value with HAProxy as the router/);
    assert.match(issues[0].hint ?? '', /source: prometheus/);
    // With the edge's router, the same condition is fine.
    ok(text.replace(H, 'router: { port: 8080 }'));
  });

  it('backend-conflict when two environments drive one HAProxy backend', () => {
    const text = yml`
      environments:
        a: { target: { command: x }, router: { provider: haproxy, socket: /run/haproxy/admin.sock, backend: app } }
        b: { target: { command: x }, router: { provider: haproxy, socket: /run/haproxy/admin.sock, backend: app } }
        c: { target: { command: x }, router: { provider: haproxy, socket: /run/haproxy/admin.sock, backend: app2 } }
      ship: { deploy: { environment: a } }
    `;
    const issues = bad(text);
    assert.deepEqual(issues.map((i) => [i.code, i.pos]), [['backend-conflict', posOf(text, 'app }', 1)]]);
    assert.equal(issues[0].message, 'HAProxy backend `app` (/run/haproxy/admin.sock) is already driven by environment `a`');
  });
});

describe('environments: protection', () => {
  it('reads approvals, branches and freeze windows', () => {
    const text = envText(`
      target: { command: x }
      protection:
        approvals: 2
        branches: [main, "/^release-.*/"]
        freeze:
          - { cron: "0 17 * * 5", duration: 64h, timezone: europe/paris }
          - { cron: "0 0 24 12 *", duration: 2d }
    `);
    assert.deepEqual(ok(text).environments.prod.protection, {
      approvals: 2,
      branches: ['main', '/^release-.*/'],
      freeze: [
        { cron: '0 17 * * 5', durationMs: 64 * 3_600_000, timezone: 'Europe/Paris', pos: posOf(text, '{ cron: "0 17') },
        { cron: '0 0 24 12 *', durationMs: 2 * 86_400_000, pos: posOf(text, '{ cron: "0 0') },
      ],
    });
    assert.deepEqual(prod(`${T2}protection: { branches: main }`).protection.branches, ['main']);
  });

  it('bad-value for approvals above 10', () => {
    assert.match(oneAt(envText(`${T2}protection: { approvals: 11 }`), 'bad-value', '11').message, /at most 10/);
  });

  it('bad-regex for a branch pattern; bad-value for an empty branch list', () => {
    const i = oneAt(envText(`${T2}protection: { branches: [main, "/^release-(/"] }`), 'bad-regex', '"/^');
    assert.match(i.message, /missing closing \)/);
    assert.match(oneAt(envText(`${T2}protection: { branches: [] }`), 'bad-value', '[]').hint!, /freeze/);
  });

  it('bad-cron for patterns croner rejects or that never fire', () => {
    const i = oneAt(envText(`${T2}protection: { freeze: [{ cron: "0 17 * * 8", duration: 1h }] }`), 'bad-cron', '"0 17');
    assert.match(i.message, /dayOfWeek: 8/);
    assert.match(i.hint!, /0 17 \* \* 5/);
    oneAt(envText(`${T2}protection: { freeze: [{ cron: "every friday", duration: 1h }] }`), 'bad-cron', '"every');
    // 5 or 6 fields, as the freeze gate reads them: no year field.
    assert.match(oneAt(envText(`${T2}protection: { freeze: [{ cron: "0 0 0 * * * 2030", duration: 1h }] }`), 'bad-cron', '"0 0').message, /5 or 6 parts/);
    ok(envText(`${T2}protection: { freeze: [{ cron: "30 0 17 * * fri", duration: 1h }, { cron: "@weekly", duration: 1h }] }`));
    assert.match(oneAt(envText(`${T2}protection: { freeze: [{ cron: "0 0 30 2 *", duration: 1h }] }`), 'bad-cron', '"0 0').message, /never opens/);
  });

  it('bad-timezone with did-you-mean', () => {
    const i = oneAt(envText(`${T2}protection: { freeze: [{ cron: "0 17 * * 5", duration: 1h, timezone: Europe/Pariss }] }`), 'bad-timezone', 'Europe/');
    assert.equal(i.hint, 'did you mean `Europe/Paris`?');
  });

  it('missing-key for a freeze window without cron or duration', () => {
    const text = envText(`${T2}protection: { freeze: [{ timezone: UTC }] }`);
    assert.deepEqual(bad(text).map((i) => [i.code, i.pos, i.message]), [
      ['missing-key', posOf(text, '{ timezone'), '`environments.prod.protection.freeze[0]` needs `cron`'],
      ['missing-key', posOf(text, '{ timezone'), '`environments.prod.protection.freeze[0]` needs `duration`'],
    ]);
  });
});

describe('environments: names and deploy jobs', () => {
  it('bad-name for a name that cannot travel into paths and variables', () => {
    const i = one(bad('environments:\n  "../prod": { target: { command: x } }\na: { script: x }\n'), 'bad-name', 2, 3);
    assert.match(i.hint!, /letters, digits/);
  });

  it('unknown-environment still points at the deploy job', () => {
    const i = one(bad(`${SHIP.replace('prod', 'prd')}environments:\n  prod: { target: { command: x } }\n`), 'unknown-environment', 1, 32);
    assert.equal(i.hint, 'did you mean `prod`?');
  });

  it('accepts anchors and merge keys between environments', () => {
    const c = ok(yml`
      ship: { deploy: { environment: prod } }
      environments:
        staging: &base
          target: { command: node s.js, instances: 2 }
          health: { path: /ready }
        prod:
          <<: *base
          target: { command: node s.js, instances: 4 }
    `);
    assert.equal(c.environments.prod.health.readiness.path, '/ready');
    assert.equal(c.environments.prod.target.type === 'process' && c.environments.prod.target.instances, 4);
  });
});
