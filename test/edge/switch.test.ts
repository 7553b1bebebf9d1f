// The reason the edge exists: a release switch under continuous load loses no request. v1 serves,
// v2 comes in as a canary, takes everything, and v1 is deleted (drained, then stopped) while the
// load runs; then the same again with two instances per version and a crash in the middle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLoad } from '../helpers/load.js';
import { processesWith } from '../helpers/procs.js';
import { route, testEdge, type TestEdge } from './harness.js';

let t: TestEdge;

before(async () => {
  t = await testEdge();
});

after(async () => {
  await t.close();
  assert.deepEqual(processesWith(t.marker), []);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('stable v1 → canary v2 → stable v2 → v1 deleted, under load: zero failed requests', async () => {
  // Slow-ish answers so that requests are in flight at every switch, and v1 takes its time to stop.
  await Promise.all([t.client.putInstance('web-v1', t.app('v1', { DELAY_MS: '20', STOP_DELAY_MS: '100' })), t.client.putInstance('web-v2', t.app('v2', { DELAY_MS: '20' }))]);
  await Promise.all([t.client.waitReady('web-v1', 10_000), t.client.waitReady('web-v2', 10_000)]);
  const r = await t.client.putRoute('web', route({ version: 'v1', instances: ['web-v1'] }));
  const load = startLoad({ url: `http://127.0.0.1:${r.port}/`, rps: 300, concurrency: 16 });
  await sleep(400);
  await t.client.putRoute('web', route({ version: 'v1', instances: ['web-v1'] }, { version: 'v2', instances: ['web-v2'], weight: 50 }));
  await sleep(400);
  await t.client.putRoute('web', route({ version: 'v2', instances: ['web-v2'] }));
  const deleted = await t.client.deleteInstance('web-v1', 5_000);
  assert.equal(deleted!.state, 'stopped');
  await sleep(400);
  const s = await load.stop();
  assert.equal(s.failed, 0, JSON.stringify({ errors: s.errors, failures: s.failures.slice(0, 5), statuses: s.statuses }));
  assert.ok(s.sent > 200, `sent ${s.sent}`);
  assert.ok(s.byVersion.v1 > 0 && s.byVersion.v2 > 0, JSON.stringify(s.byVersion));
  const m = await t.client.routeMetrics('web');
  assert.equal(m.versions.v1.proxyErrors + m.versions.v2.proxyErrors, 0);
  assert.equal(m.versions.v1.requests + m.versions.v2.requests, s.sent);
  await t.client.deleteRoute('web');
  await t.client.deleteInstance('web-v2', 0);
});

test('an instance killed under load: its requests are retried on its sibling, none fails', async () => {
  const ids = ['kill-a', 'kill-b'];
  await Promise.all(ids.map((id) => t.client.putInstance(id, { ...t.app('k1'), logFile: `${t.home}/logs/${id}.log` })));
  await Promise.all(ids.map((id) => t.client.waitReady(id, 10_000)));
  const r = await t.client.putRoute('kill', route({ version: 'k1', instances: ids }));
  const load = startLoad({ url: `http://127.0.0.1:${r.port}/`, rps: 300, concurrency: 16 });
  await sleep(300);
  // SIGKILL: no graceful close; pooled connections to it die and new ones are refused until
  // the supervisor notices and stops routing to it.
  process.kill((await t.client.getInstance('kill-a'))!.pid!, 'SIGKILL');
  await sleep(600);
  const s = await load.stop();
  assert.equal(s.failed, 0, JSON.stringify({ errors: s.errors, failures: s.failures.slice(0, 5), statuses: s.statuses }));
  const a = (await t.client.getInstance('kill-a'))!;
  assert.equal(a.lastExit?.signal, 'SIGKILL');
  await t.client.deleteRoute('kill');
  await Promise.all(ids.map((id) => t.client.deleteInstance(id, 0)));
});
