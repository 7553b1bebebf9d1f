// Protection of an environment, end to end through the server: approvals with four eyes (the
// author of the change cannot approve it), branch rules, and freeze windows that only an admin
// can override, saying why. Everything people did is in the audit log, whose chain verifies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryRig, pipelineYaml, type DeliveryRig } from './harness.js';
import { startPipeline } from '../../src/server/trigger.js';
import { getProject } from '../../src/store/pipelines.js';

const TARGET = `
target: { type: process, command: node app.mjs, instances: 1 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy: rolling`;

describe('environment protection', { timeout: 300_000 }, () => {
  let rig: DeliveryRig;
  let bob: string;
  let carol: string;
  before(async () => {
    rig = await deliveryRig();
    // carol wrote the commits (the test repository's author); bob did not.
    bob = (await rig.server.call<{ token: string }>('POST', '/api/users', { name: 'bob', role: 'deployer', email: 'bob@example.test' })).body.token;
    carol = (await rig.server.call<{ token: string }>('POST', '/api/users', { name: 'carol', role: 'deployer', email: 'Author@Example.test' })).body.token;
  });
  after(async () => {
    await rig?.close();
  });

  test('a release needing an approval waits; its author and its trigger cannot approve; another deployer can', async () => {
    const { pipelineId } = await rig.release(`${TARGET}\nprotection: { approvals: 1 }`, { VERSION: 'v1' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.status === 'waiting');
    assert.match(s.active!.reason ?? '', /approvals 0\/1/);
    const id = s.active!.id;

    const byTrigger = await rig.server.call<{ message: string }>('POST', `/api/releases/${id}/approve`, {});
    assert.equal(byTrigger.status, 403, 'admin started the pipeline: four eyes refuses');
    assert.match(byTrigger.body.message, /four eyes/);
    const byAuthor = await rig.server.call<{ message: string }>('POST', `/api/releases/${id}/approve`, {}, carol);
    assert.equal(byAuthor.status, 403, 'carol is the commit author (by e-mail)');

    const ok = await rig.server.call<{ approved: boolean }>('POST', `/api/releases/${id}/approve`, { comment: 'looks good' }, bob);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const twice = await rig.server.call('POST', `/api/releases/${id}/approve`, {}, bob);
    assert.equal(twice.status, 403);

    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'success');
    const detail = await rig.releaseDetail(id);
    assert.ok(detail.transitions.some((t) => t.to === 'waiting'));
    assert.equal(detail.transitions.at(-1)!.to, 'succeeded');
  });

  test('a branch that may not deploy fails the release at once', async () => {
    const { pipeline } = await rig.release(`${TARGET}\nprotection: { branches: [release] }`, { VERSION: 'v2' });
    assert.equal(pipeline!.status, 'failed');
    const s = await rig.status();
    const r = s.releases.find((x) => x.number === 2)!;
    assert.equal(r.status, 'failed');
    assert.match(r.reason ?? '', /branch main may not deploy/);
  });

  test('a freeze window holds the release until an admin overrides it with a reason', async () => {
    const { pipelineId } = await rig.release(`${TARGET}\nprotection: { freeze: [{ cron: "* * * * *", duration: 2h }] }`, { VERSION: 'v3' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.status === 'waiting');
    assert.match(s.active!.reason ?? '', /freeze/);
    const id = s.active!.id;
    const byDeployer = await rig.server.call('POST', `/api/releases/${id}/approve`, { overrideFreeze: true, reason: 'hotfix' }, bob);
    assert.equal(byDeployer.status, 403, 'only admins override a freeze');
    const noReason = await rig.server.call('POST', `/api/releases/${id}/approve`, { overrideFreeze: true });
    assert.equal(noReason.status, 400);
    const ok = await rig.server.call('POST', `/api/releases/${id}/approve`, { overrideFreeze: true, reason: 'security hotfix' });
    assert.equal(ok.status, 200);
    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'success');
  });

  test('a pipeline from a fork (untrusted) may not deploy', async () => {
    rig.repo.write('ferry.yml', pipelineYaml(TARGET, { VERSION: 'v4' }));
    rig.repo.commit('from a fork');
    const project = (await getProject(rig.server.ctx.db, rig.projectId))!;
    const { pipelineId } = await startPipeline(rig.server.ctx, project, { source: 'merge_request_event', trusted: false });
    const p = await rig.server.waitPipeline(pipelineId, 60_000);
    assert.equal(p.status, 'failed');
    const r = (await rig.status()).releases[0]!;
    assert.equal(r.status, 'failed');
    assert.match(r.reason ?? '', /forks or untrusted merge requests may not deploy/);
  });

  test('the audit log holds who did what, and its chain verifies', async () => {
    const list = await rig.server.call<{ action: string; actor: string; reason: string | null }[]>('GET', '/api/audit?environment=production&limit=100');
    assert.equal(list.status, 200);
    const actions = list.body.map((e) => `${e.actor}:${e.action}`);
    assert.ok(actions.includes('bob:release.approved'), actions.join(' '));
    assert.ok(list.body.some((e) => e.action === 'freeze.override' && e.reason === 'security hotfix'));
    assert.ok(actions.includes('controller:release.failed'));
    assert.ok(actions.includes('controller:release.step'), 'every step of a release is audited');
    const verify = await rig.server.call<{ ok: boolean }>('GET', '/api/audit/verify');
    assert.equal(verify.body.ok, true);
    const asBob = await rig.server.call('GET', '/api/audit/verify', undefined, bob);
    assert.equal(asBob.status, 403);
  });
});
