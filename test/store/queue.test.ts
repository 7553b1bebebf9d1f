// The store-driven job queue of ferry server, on PGlite and on the real PostgreSQL: pipelines
// advance by the same rules as ferry run; leases are exclusive (SKIP LOCKED), fenced by the
// attempt number, and reaped when a runner stops heart-beating.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { parseConfig } from '../../src/config/load.js';
import type { PipelineStarted, RunEvent } from '../../src/pipeline/events.js';
import { plan } from '../../src/pipeline/plan.js';
import { pipelineStartedEvent } from '../../src/pipeline/started.js';
import { getPipeline } from '../../src/store/pipelines.js';
import { advance, cancelPipeline, complete, createPipeline, heartbeat, lease, play, reapExpiredLeases } from '../../src/store/queue.js';
import { forEachDb } from './helpers.js';

function started(yml: string, project = '/srv/repo'): PipelineStarted {
  const { config, issues } = parseConfig(yml, 'ferry.yml');
  assert.ok(config, JSON.stringify(issues));
  const pipelineId = randomUUID();
  const p = plan({ config, predefined: { FERRY_BRANCH: 'main' } });
  return pipelineStartedEvent({ pipelineId, project, commit: { sha: 'a'.repeat(40), branch: 'main', tag: null }, source: 'push', configText: yml, variables: {}, plan: p });
}

const names = (s: PipelineStarted) => new Map(s.jobs.map((j) => [j.jobId, j.name]));
const runner = (id: string, tags: string[] = []) => ({ id, tags, leaseMs: 30_000 });
const ok = { status: 'success' as const, exitCode: 0 };
const fail = (code = 1) => ({ status: 'failed' as const, exitCode: code, reason: 'script_failure' as const });

async function statuses(db: Parameters<typeof advance>[0], s: PipelineStarted): Promise<Record<string, string>> {
  const p = await getPipeline(db, { id: s.pipelineId });
  return Object.fromEntries(p!.jobs.map((j) => [j.name, j.status]));
}

forEachDb('a pipeline runs through the queue in DAG order to success', async ({ db }) => {
  const s = started(`
build: { script: "true" }
unit: { needs: [build], script: "true" }
lint: { needs: [build], script: "true" }
ship: { needs: [unit, lint], script: "true" }
`);
  const { number } = await createPipeline(db, s);
  assert.equal(number, 1);
  assert.deepEqual(await statuses(db, s), { build: 'pending', unit: 'created', lint: 'created', ship: 'created' });
  const order: string[] = [];
  for (;;) {
    const { lease: l } = await lease(db, runner('r1'));
    if (!l) break;
    order.push(names(s).get(l.jobId)!);
    assert.equal(l.attempt, 1);
    assert.equal((await complete(db, { jobId: l.jobId, attempt: l.attempt, runnerId: 'r1', outcome: ok })).accepted, true);
  }
  assert.equal(order[0], 'build');
  assert.equal(order[3], 'ship');
  const p = await getPipeline(db, { id: s.pipelineId });
  assert.equal(p!.status, 'success');
  assert.ok(p!.finishedAt);
});

forEachDb('two runners never get the same job', async (ctx) => {
  const jobs = Array.from({ length: 12 }, (_, i) => `j${i}: { script: "true" }`).join('\n');
  const s = started(jobs);
  await createPipeline(ctx.db, s);
  // On PostgreSQL these run on separate pooled connections, truly at once.
  const got = await Promise.all(Array.from({ length: 16 }, (_, i) => lease(ctx.db, runner(`r${i % 4}`))));
  const leased = got.map((g) => g.lease?.jobId).filter(Boolean);
  assert.equal(leased.length, 12);
  assert.equal(new Set(leased).size, 12, 'no job handed out twice');
});

forEachDb('tags: a job goes only to a runner that has all its tags', async ({ db }) => {
  const s = started(`
gpu: { tags: [linux, gpu], script: "true" }
any: { script: "true" }
`);
  await createPipeline(db, s);
  const a = await lease(db, runner('plain', ['linux']));
  assert.equal(names(s).get(a.lease!.jobId), 'any');
  assert.equal((await lease(db, runner('plain', ['linux']))).lease, null);
  const g = await lease(db, runner('big', ['linux', 'gpu', 'ssd']));
  assert.equal(names(s).get(g.lease!.jobId), 'gpu');
});

forEachDb('the attempt fences reports: a stale or foreign completion is rejected', async ({ db }) => {
  const s = started('only: { retry: 1, script: "true" }');
  await createPipeline(db, s);
  const { lease: l } = await lease(db, runner('r1'));
  assert.equal((await complete(db, { jobId: l!.jobId, attempt: l!.attempt, runnerId: 'intruder', outcome: ok })).accepted, false);
  assert.equal((await complete(db, { jobId: l!.jobId, attempt: 7, runnerId: 'r1', outcome: ok })).accepted, false);
  assert.equal((await complete(db, { jobId: l!.jobId, attempt: l!.attempt, runnerId: 'r1', outcome: fail() })).accepted, true);
  // retry: 1 -> a second attempt is queued; the first attempt's runner cannot report again.
  assert.equal((await complete(db, { jobId: l!.jobId, attempt: 1, runnerId: 'r1', outcome: ok })).accepted, false);
  const second = await lease(db, runner('r2'));
  assert.equal(second.lease!.attempt, 2);
  assert.equal((await complete(db, { jobId: l!.jobId, attempt: 2, runnerId: 'r2', outcome: ok })).accepted, true);
  assert.equal((await getPipeline(db, { id: s.pipelineId }))!.status, 'success');
});

forEachDb('a runner that stops heart-beating loses the job: retried per policy, late reports rejected', async ({ db }) => {
  const s = started(`
kept: { retry: { max: 1, when: [runner_system_failure] }, script: "true" }
lost: { script: "true" }
`);
  await createPipeline(db, s);
  const t0 = Date.now();
  const a = (await lease(db, { id: 'dying', tags: [], leaseMs: 1000 }, t0)).lease!;
  const b = (await lease(db, { id: 'dying', tags: [], leaseMs: 1000 }, t0)).lease!;
  assert.equal(await heartbeat(db, { jobId: a.jobId, attempt: 1, runnerId: 'dying', leaseMs: 1000 }, t0 + 500), 'ok');
  assert.equal((await reapExpiredLeases(db, t0 + 1200)).filter((e) => e.type === 'job.state').length, 1, 'only b expired at 1.2 s');
  const events: RunEvent[] = await reapExpiredLeases(db, t0 + 5000);
  assert.ok(events.some((e) => e.type === 'job.log' && e.text.includes('runner lost')));
  assert.equal(await heartbeat(db, { jobId: a.jobId, attempt: 1, runnerId: 'dying', leaseMs: 1000 }, t0 + 5001), 'lost');
  assert.equal((await complete(db, { jobId: b.jobId, attempt: 1, runnerId: 'dying', outcome: ok })).accepted, false);
  const st = await statuses(db, s);
  assert.equal(st.lost, 'failed');
  assert.equal(st.kept, 'pending', 'retried: its policy covers a lost runner');
  const p = await getPipeline(db, { id: s.pipelineId });
  assert.equal(p!.jobs.find((j) => j.name === 'lost')!.failureReason, 'runner_system_failure');
});

forEachDb('manual jobs wait until played; an allowed failure does not hold the pipeline', async ({ db }) => {
  const s = started(`
stages: [build, test, deploy]
build: { stage: build, script: "true" }
flaky: { stage: test, allow_failure: true, script: "true" }
deploy: { stage: deploy, when: manual, allow_failure: false, script: "true" }
notify: { stage: deploy, needs: [deploy], script: "true" }
`);
  await createPipeline(db, s);
  const r = runner('r');
  const run = async (outcome = ok) => {
    const { lease: l } = await lease(db, r);
    assert.ok(l, 'a job is ready');
    await complete(db, { jobId: l.jobId, attempt: l.attempt, runnerId: r.id, outcome: names(s).get(l.jobId) === 'flaky' ? fail() : outcome });
    return names(s).get(l.jobId);
  };
  assert.equal(await run(), 'build');
  assert.equal(await run(), 'flaky');
  assert.equal((await lease(db, r)).lease, null);
  let p = await getPipeline(db, { id: s.pipelineId });
  assert.equal(p!.status, 'manual', 'a blocking manual job holds the pipeline');
  assert.equal(p!.jobs.find((j) => j.name === 'flaky')!.allowedFailure, true);
  const deploy = s.jobs.find((j) => j.name === 'deploy')!.jobId;
  assert.equal((await play(db, deploy)).played, true);
  assert.equal((await play(db, deploy)).played, false, 'only once');
  assert.equal(await run(), 'deploy');
  assert.equal(await run(), 'notify');
  p = await getPipeline(db, { id: s.pipelineId });
  assert.equal(p!.status, 'success');
});

forEachDb('cancel: waiting jobs at once, running ones through their heartbeat', async ({ db }) => {
  const s = started(`
a: { script: "true" }
b: { script: "true" }
c: { needs: [a], script: "true" }
`);
  await createPipeline(db, s);
  const l = (await lease(db, runner('r'))).lease!;
  await cancelPipeline(db, s.pipelineId);
  let st = await statuses(db, s);
  assert.equal(st[names(s).get(l.jobId)!], 'running');
  assert.ok(Object.values(st).filter((x) => x === 'canceled').length === 2);
  assert.equal((await lease(db, runner('r2'))).lease, null, 'nothing left to lease');
  assert.equal(await heartbeat(db, { jobId: l.jobId, attempt: 1, runnerId: 'r', leaseMs: 1000 }), 'cancel');
  await complete(db, { jobId: l.jobId, attempt: 1, runnerId: 'r', outcome: { status: 'canceled', exitCode: null } });
  st = await statuses(db, s);
  assert.deepEqual(Object.values(st).sort(), ['canceled', 'canceled', 'canceled']);
  assert.equal((await getPipeline(db, { id: s.pipelineId }))!.status, 'canceled');
});
