// Releases carried out for real: the server's delivery controller drives the edge (a separate
// process) which runs the sample app and routes real HTTP traffic, sent by a load generator on
// loopback while each release happens. Healthy releases must lose no request; bad ones must be
// rolled back by the analysis without anyone acting.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLoad } from '../helpers/load.js';
import { deliveryRig, type DeliveryRig, type EnvStatusBody } from './harness.js';

const CANARY = (analysis: string, steps = '[{ weight: 25 }, { analysis: 2s }, { weight: 50 }, { analysis: 2s }]') => `
target: { type: process, command: node app.mjs, instances: 2 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy:
  canary:
    steps: ${steps}
    analysis:
      interval: 500ms
      failure_limit: 1
      metrics:
${analysis}
`;

const ERRORS = '        - { name: errors, source: router, condition: "error_rate < 0.05", min_requests: 5 }';
const LATENCY = '        - { name: latency, source: router, condition: "p99_ms < 200", min_requests: 5 }';

async function body(url: string): Promise<string> {
  const res = await fetch(url);
  return (await res.text()).trim();
}

describe('releases under real traffic', { timeout: 600_000 }, () => {
  let rig: DeliveryRig;
  before(async () => {
    rig = await deliveryRig();
  });
  after(async () => {
    await rig?.close();
  });

  test('the first release of an environment takes all its traffic', async () => {
    const { pipeline } = await rig.release(CANARY(ERRORS), { VERSION: 'v1' });
    assert.equal(pipeline!.status, 'success', JSON.stringify(pipeline));
    const s = await rig.status();
    assert.equal(s.stable?.number, 1);
    assert.equal(s.stable?.status, 'succeeded');
    assert.equal(await body(await rig.routerUrl()), 'hello from v1');
  });

  test('a healthy canary completes under load with zero failed requests', async () => {
    const load = startLoad({ url: await rig.routerUrl(), rps: 150, concurrency: 8 });
    const { pipeline } = await rig.release(CANARY(ERRORS), { VERSION: 'v2' });
    const r = await load.stop();
    assert.equal(pipeline!.status, 'success', JSON.stringify(pipeline));
    assert.equal(r.failed, 0, `failed requests: ${JSON.stringify(r.errors)}`);
    assert.ok((r.byVersion['production#2'] ?? 0) > 0 && (r.byVersion['production#1'] ?? 0) > 0, JSON.stringify(r.byVersion));
    const s = await rig.status();
    assert.equal(s.stable?.number, 2);
    const detail = await rig.releaseDetail(s.stable!.id);
    assert.ok(detail.measurements.some((m) => m.metric === 'errors' && m.outcome === 'success'), 'the analysis measured the canary');
    assert.equal(await body(await rig.routerUrl()), 'hello from v2');
  });

  test('a canary that answers 5xx is rolled back by the analysis', async () => {
    const load = startLoad({ url: await rig.routerUrl(), rps: 150, concurrency: 8 });
    const { pipeline } = await rig.release(CANARY(ERRORS), { VERSION: 'v3', FAIL_RATE: '1' });
    const r = await load.stop();
    assert.equal(pipeline!.status, 'failed');
    assert.equal(pipeline!.jobs[0]!.failureReason, 'deployment_failure');
    const s = await rig.status();
    assert.equal(s.stable?.number, 2, 'v2 still serves');
    const bad = s.releases.find((x) => x.number === 3)!;
    assert.equal(bad.status, 'rolled_back');
    assert.match(bad.reason ?? '', /errors/);
    const detail = await rig.releaseDetail(bad.id);
    assert.ok(detail.measurements.some((m) => m.metric === 'errors' && m.outcome === 'failure' && (m.values.error_rate ?? 0) > 0.5));
    // The router answered the canary's failures from stable: users saw none of them, while the
    // analysis counted every one (error_rate above).
    assert.equal(r.failed, 0, JSON.stringify(r.errors));
    assert.equal(Object.keys(r.byVersion).join(), 'production#2');
    for (let i = 0; i < 20; i++) assert.equal(await body(await rig.routerUrl()), 'hello from v2');
    assert.equal(s.instances.filter((i) => i.release === bad.id).length, 0, 'the canary was stopped');
  });

  test('a slow canary is rolled back on p99 latency', async () => {
    const load = startLoad({ url: await rig.routerUrl(), rps: 100, concurrency: 16 });
    const { pipeline } = await rig.release(CANARY(LATENCY), { VERSION: 'v4', DELAY_MS: '400' });
    const r = await load.stop();
    assert.equal(pipeline!.status, 'failed');
    const s = await rig.status();
    const slow = s.releases.find((x) => x.number === 4)!;
    assert.equal(slow.status, 'rolled_back');
    assert.match(slow.reason ?? '', /latency/);
    assert.equal(r.failed, 0, 'slow is not failed: every request was answered');
    assert.equal(s.stable?.number, 2);
  });

  test('a release that crashes on start never takes traffic', async () => {
    const load = startLoad({ url: await rig.routerUrl(), rps: 100, concurrency: 8 });
    const { pipeline } = await rig.release(CANARY(ERRORS), { VERSION: 'v5', CRASH_ON_START: '1' });
    const r = await load.stop();
    assert.equal(pipeline!.status, 'failed');
    const s = await rig.status();
    const crashed = s.releases.find((x) => x.number === 5)!;
    assert.equal(crashed.status, 'failed');
    const detail = await rig.releaseDetail(crashed.id);
    assert.ok(!detail.progress.tookTraffic);
    assert.equal(r.failed, 0);
    assert.equal(r.byVersion['production#5'] ?? 0, 0);
  });

  test('a rolling release completes under load with zero failed requests', async () => {
    const load = startLoad({ url: await rig.routerUrl(), rps: 150, concurrency: 8 });
    const { pipeline } = await rig.release(
      `
target: { type: process, command: node app.mjs, instances: 3 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }
`,
      { VERSION: 'v6' },
    );
    const r = await load.stop();
    assert.equal(pipeline!.status, 'success', JSON.stringify(pipeline));
    assert.equal(r.failed, 0, JSON.stringify(r.errors));
    assert.ok((r.byVersion['production#6'] ?? 0) > 0);
    const s = await rig.status();
    assert.equal(s.instances.filter((i) => i.release === s.stable!.id).length, 3);
    assert.equal(await body(await rig.routerUrl()), 'hello from v6');
  });

  test('a blue-green release switches under load with zero failed requests and keeps blue warm', async () => {
    const load = startLoad({ url: await rig.routerUrl(), rps: 150, concurrency: 8 });
    const { pipeline } = await rig.release(
      `
target: { type: process, command: node app.mjs, instances: 2 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy: { blue-green: { smoke: [{ url: /, body: "hello from v7" }], keep_warm: 2s } }
`,
      { VERSION: 'v7' },
    );
    const r = await load.stop();
    assert.equal(pipeline!.status, 'success', JSON.stringify(pipeline));
    assert.equal(r.failed, 0, JSON.stringify(r.errors));
    assert.equal(await body(await rig.routerUrl()), 'hello from v7');
    // Blue (v6) is retired once keep_warm has passed.
    const s = await rig.waitRelease((x: EnvStatusBody) => x.instances.every((i) => i.release === x.stable!.id), 20_000);
    assert.equal(s.instances.length, 2);
  });

  test('a firing Alertmanager alert naming the environment rolls the release back', async () => {
    const { pipelineId } = await rig.release(CANARY(ERRORS, '[{ weight: 10 }, { pause: {} }]'), { VERSION: 'v8' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.number === 8 && x.active.weight === 10);
    const alert = {
      version: '4',
      groupKey: '{}:{}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'ferry',
      groupLabels: {},
      commonLabels: {},
      commonAnnotations: {},
      externalURL: 'http://127.0.0.1:9093',
      alerts: [{ status: 'firing', labels: { alertname: 'HighErrorRate', ferry_environment: 'production' }, annotations: {}, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint: 'abc' }],
    };
    const posted = await rig.server.call<{ rollingBack: string[] }>('POST', '/api/hooks/alertmanager', alert);
    assert.equal(posted.status, 200, JSON.stringify(posted.body));
    assert.deepEqual(posted.body.rollingBack, [s.active!.id]);
    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'failed');
    const detail = await rig.releaseDetail(s.active!.id);
    assert.equal(detail.status, 'rolled_back');
    assert.match(detail.reason ?? '', /HighErrorRate/);
    assert.equal(await body(await rig.routerUrl()), 'hello from v7');
  });

  test('a paused canary waits for ferry promote', async () => {
    const { pipelineId } = await rig.release(CANARY(ERRORS, '[{ weight: 10 }, { pause: {} }, { weight: 60 }]'), { VERSION: 'v9' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.number === 9 && x.active.weight === 10);
    const promoted = await rig.server.call('POST', `/api/releases/${s.active!.id}/promote`, {});
    assert.equal(promoted.status, 200);
    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'success');
    assert.equal(await body(await rig.routerUrl()), 'hello from v9');
    const audit = await rig.server.call<{ ok: boolean; entries: number }>('GET', '/api/audit/verify');
    assert.equal(audit.body.ok, true);
    assert.ok(audit.body.entries > 10);
  });
});
