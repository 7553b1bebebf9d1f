// The delivery commands as a user types them (the built CLI, a real server and edge): status,
// releases, promote, abort, and rollback, which redeploys the previous good release from its kept
// files without running its pipeline again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deliveryRig, type DeliveryRig } from './harness.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

const ROLLING = `
target: { type: process, command: node app.mjs, instances: 1 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy: rolling`;

const PAUSED = `
target: { type: process, command: node app.mjs, instances: 1 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy: { canary: { steps: [{ weight: 20 }, { pause: {} }] } }`;

describe('ferry status, releases, promote, abort, rollback', { timeout: 300_000 }, () => {
  let rig: DeliveryRig;
  // Asynchronous: the server runs in this process and must answer while the command waits.
  const ferry = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, FERRY_SERVER: rig.server.url, FERRY_TOKEN: rig.server.token }, timeout: 60_000 }, (error, out, err) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err });
      });
    });
  const answer = async () => (await (await fetch(await rig.routerUrl())).text()).trim();

  before(async () => {
    rig = await deliveryRig();
  });
  after(async () => {
    await rig?.close();
  });

  test('status shows what serves an environment and where', async () => {
    assert.equal((await rig.release(ROLLING, { VERSION: 'v1' })).pipeline!.status, 'success');
    assert.equal((await rig.release(ROLLING, { VERSION: 'v2' })).pipeline!.status, 'success');
    const s = (await ferry('status', 'production'));
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^production at http:\/\/127\.0\.0\.1:\d+/);
    assert.match(s.out, /serving: +#2 succeeded/);
    assert.match(s.out, /p\d+-production-r2-1 +ready/);
    const json = JSON.parse((await ferry('status', 'production', '--json')).out) as { stable: { number: number } };
    assert.equal(json.stable.number, 2);
  });

  test('rollback redeploys the previous good release; releases lists them all', async () => {
    const r = (await ferry('rollback', 'production', '--reason', 'v2 breaks checkout'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /release #3 redeploys rel_/);
    const s = await rig.waitRelease((x) => x.stable?.number === 3);
    assert.equal(await answer(), 'hello from v1');
    assert.equal(s.instances.length, 1, 'v2 was retired');
    const list = (await ferry('releases', 'production'));
    assert.match(list.out, /#3 succeeded/);
    assert.match(list.out, /#2 succeeded/);
    // Back to v2 by number.
    assert.equal((await ferry('rollback', 'production', '--to', '2')).code, 0);
    await rig.waitRelease((x) => x.stable?.number === 4);
    assert.equal(await answer(), 'hello from v2');
    const audit = await rig.server.call<{ action: string; reason: string | null }[]>('GET', '/api/audit?environment=production');
    assert.ok(audit.body.some((e) => e.action === 'release.rolled_back' && e.reason === 'v2 breaks checkout'));
  });

  test('promote moves a paused canary on; abort puts traffic back; both say when nothing is under way', async () => {
    const first = await rig.release(PAUSED, { VERSION: 'v5' }, { wait: false });
    await rig.waitRelease((x) => x.active?.weight === 20);
    const p = (await ferry('promote', 'production'));
    assert.equal(p.code, 0, p.err);
    assert.equal((await rig.server.waitPipeline(first.pipelineId)).status, 'success');
    assert.equal(await answer(), 'hello from v5');

    const second = await rig.release(PAUSED, { VERSION: 'v6' }, { wait: false });
    await rig.waitRelease((x) => x.active?.weight === 20);
    const a = (await ferry('abort', 'production', '--reason', 'not today'));
    assert.equal(a.code, 0, a.err);
    assert.equal((await rig.server.waitPipeline(second.pipelineId)).status, 'failed');
    const s = await rig.status();
    assert.equal(s.releases[0]!.status, 'aborted');
    assert.equal(s.releases[0]!.reason, 'not today');
    assert.equal(await answer(), 'hello from v5');

    // Canceling the pipeline stops its release the same way; the deploy job is canceled.
    const third = await rig.release(PAUSED, { VERSION: 'v7' }, { wait: false });
    await rig.waitRelease((x) => x.active?.weight === 20);
    assert.equal((await rig.server.call('POST', `/api/pipelines/${third.pipelineId}/cancel`)).status, 200);
    const canceled = await rig.server.waitPipeline(third.pipelineId);
    assert.equal(canceled.status, 'canceled');
    assert.equal(canceled.jobs[0]!.status, 'canceled');
    assert.equal((await rig.status()).releases[0]!.status, 'aborted');
    assert.equal(await answer(), 'hello from v5');

    const none = (await ferry('promote', 'production'));
    assert.equal(none.code, 1);
    assert.match(none.err, /no release of production is under way \(#\d+ serves it\)/);
    // The application's own output, with the environment's secrets masked.
    const put = await rig.server.call('PUT', `/api/projects/${rig.projectId}/secrets/VERSION`, { value: 'v-secret-8127364', environment: 'production' });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal((await rig.release(ROLLING, { VERSION: 'v8' })).pipeline!.status, 'success');
    assert.equal(await answer(), 'hello from v-secret-8127364', 'the secret reached the application');
    const logs = await ferry('app-logs', 'production');
    assert.equal(logs.code, 0, logs.err);
    assert.match(logs.out, /==> p\d+-production-r\d+-1 <==/);
    assert.match(logs.out, /sample-app \[MASKED\] listening on 127\.0\.0\.1:\d+/);
    assert.doesNotMatch(logs.out, /v-secret-8127364/);

    const unknown = (await ferry('status', 'staging'));
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.err, /no releases to staging/);
  });
});
