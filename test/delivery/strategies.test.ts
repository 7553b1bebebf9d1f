// Releases carried out for real: the server's delivery controller drives the edge (a separate
// process) which runs the sample app and routes real HTTP traffic, sent by a load generator on
// loopback while each release happens. Healthy releases must lose no request; bad ones must be
// rolled back by the analysis without anyone acting.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startLoad } from '../helpers/load.js';
import { deliveryRig, type DeliveryRig, type EnvStatusBody } from './harness.js';
import { EdgeClient } from '../../src/edge/client.js';
import { routeName } from '../../src/delivery/targets/names.js';

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

  test("a canary's approval step is passed by an approval, not by ferry promote, not even --full", async () => {
    const { pipelineId } = await rig.release(CANARY(ERRORS, '[{ weight: 10 }, { approval: true }, { weight: 60 }]'), { VERSION: 'v10' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.number === 10 && x.active.weight === 10);
    const id = s.active!.id;
    // The admin started the pipeline: it may promote, but a promotion is not four eyes.
    assert.equal((await rig.server.call('POST', `/api/releases/${id}/promote`, { full: true })).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
    const held = await rig.releaseDetail(id);
    assert.equal(held.status, 'progressing');
    assert.equal(held.weight, 10, 'still at the approval step, at 10%');
    const other = await rig.userToken('deployer');
    assert.equal((await rig.server.call('POST', `/api/releases/${id}/approve`, {}, other)).status, 200);
    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'success');
    assert.equal(await body(await rig.routerUrl()), 'hello from v10');
  });

  const HOME = '        - { name: home, source: web, url: /, condition: "status == 200" }';
  const previewRoute = async () => EdgeClient.fromHome(rig.server.home).getRoute(`${routeName(rig.projectId, 'production')}-preview`);

  test('steps after { weight: 100 } run at full traffic; a web metric with a path asks the new version', async () => {
    const { pipeline } = await rig.release(CANARY(HOME, '[{ weight: 100 }, { analysis: 2s }]'), { VERSION: 'v11' });
    assert.equal(pipeline!.status, 'success');
    const r = (await rig.status()).releases.find((x) => x.number === 11)!;
    const d = await rig.releaseDetail(r.id);
    const home = d.measurements.filter((m) => m.metric === 'home');
    assert.ok(home.length >= 2, `the analysis step after 100% measured: ${JSON.stringify(d.measurements)}`);
    assert.ok(home.every((m) => m.outcome === 'success' && m.values.status === 200));
    assert.equal(await previewRoute(), null, 'the preview route of the web checks is gone with the release');
  });

  test('a web metric with a path fails a canary whose own answers fail, though stable answers most requests', async () => {
    const { pipeline } = await rig.release(CANARY(HOME, '[{ weight: 10 }, { analysis: 20s }]'), { VERSION: 'v12', FAIL_RATE: '1' });
    assert.equal(pipeline!.status, 'failed');
    const r = (await rig.status()).releases.find((x) => x.number === 12)!;
    assert.equal(r.status, 'rolled_back');
    const d = await rig.releaseDetail(r.id);
    assert.ok(d.measurements.some((m) => m.metric === 'home' && m.outcome === 'failure' && m.values.status === 500), JSON.stringify(d.measurements));
    assert.equal(await previewRoute(), null);
    assert.equal(await body(await rig.routerUrl()), 'hello from v11');
  });

  test('ferry abort stops a rolling release between batches and brings the old release back', async () => {
    const ROLLING = `target: { type: process, command: node app.mjs, instances: 3 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy: { rolling: { max_surge: 1, max_unavailable: 0 } }`;
    // Each new instance takes 1.5 s to be ready: time to ask for an abort after the first batch.
    const { pipelineId } = await rig.release(ROLLING, { VERSION: 'v13', READY_AFTER_MS: '1500' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.number === 13 && x.active.step >= 1, 60_000);
    const abort = await rig.server.call('POST', `/api/releases/${s.active!.id}/abort`, { reason: 'stop the rollout' });
    assert.equal(abort.status, 200, JSON.stringify(abort.body));
    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'failed');
    const d = await rig.releaseDetail(s.active!.id);
    assert.ok(['aborted', 'rolled_back'].includes(d.status), d.status);
    assert.ok(d.step < 3, `stopped before the last batch (step ${d.step})`);
    assert.equal(await body(await rig.routerUrl()), 'hello from v11');
    const after = await rig.status();
    assert.ok(after.instances.every((x) => !x.id.includes('-r13-')), `no instance of #13 left: ${JSON.stringify(after.instances)}`);
  });
});
