// Instances of the sample app under the edge's supervisor: readiness gating, crash restarts with
// backoff, liveness restarts, draining stops, no process left behind, websockets through a route.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { InstanceNotReadyError } from '../../src/edge/client.js';
import { processesWith, waitFor } from '../helpers/procs.js';
import { count, request, requests, route, testEdge, type TestEdge } from './harness.js';

let t: TestEdge;

before(async () => {
  t = await testEdge();
});

after(async () => {
  await t.close();
  assert.deepEqual(processesWith(t.marker), [], 'the edge left no process behind');
});

test('an instance is routed only once it is ready', async () => {
  await t.client.putInstance('gate-v1', t.app('gate-v1'));
  await t.client.waitReady('gate-v1', 10_000);
  // The canary takes every request by weight, but answers its readiness probe only after 1.5 s.
  const started = await t.client.putInstance('gate-v2', t.app('gate-v2', { READY_AFTER_MS: '1500' }));
  assert.equal(started.state, 'starting');
  const r = await t.client.putRoute('gate', route({ version: 'gate-v1', instances: ['gate-v1'] }, { version: 'gate-v2', instances: ['gate-v2'], weight: 100 }));
  const url = `http://127.0.0.1:${r.port}/`;
  const early = await requests(url, 20, 4);
  assert.equal((await t.client.getInstance('gate-v2'))!.state, 'starting', 'still starting after the first requests');
  assert.deepEqual(count(early, (a) => a.headers['x-ferry-version'] as string), { 'gate-v1': 20 });
  const ready = await t.client.waitReady('gate-v2', 10_000);
  assert.ok(ready.readyAt);
  assert.deepEqual(count(await requests(url, 20, 4), (a) => a.headers['x-ferry-version'] as string), { 'gate-v2': 20 });
  await t.client.deleteRoute('gate');
  await Promise.all([t.client.deleteInstance('gate-v1', 0), t.client.deleteInstance('gate-v2', 0)]);
});

test('a crashing instance is restarted with exponential backoff, and waitReady says why it fails', async () => {
  await t.client.putInstance('crash', t.app('crash', { CRASH_ON_START: '1' }, { restartBackoffMs: { initial: 50, max: 200 } }));
  const err = await t.client.waitReady('crash', 20_000, { maxExits: 4 }).then(
    () => assert.fail('waitReady should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof InstanceNotReadyError, String(err));
  assert.match(err.message, /instance crash exited \d+ times without becoming ready/);
  assert.match(err.message, /last exit: code 1/);
  assert.match(err.message, /crashing on start as asked/, 'the log tail is in the message');
  const s = await t.client.getInstance('crash');
  assert.ok(s!.restarts >= 3);
  assert.equal(s!.lastExit?.code, 1);
  const log = readFileSync(s!.spec.logFile, 'utf8');
  // Every line has a timestamp and its stream.
  for (const line of log.trim().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr|ferry) /);
  assert.match(log, /Z stderr sample-app crash: crashing on start as asked/);
  // The delays double up to the maximum.
  const delays = [...log.matchAll(/restarting in (\d+) ms/g)].map((m) => Number(m[1]));
  assert.deepEqual(delays.slice(0, 4), [50, 100, 200, 200]);
  const gone = await t.client.deleteInstance('crash', 0);
  assert.equal(gone!.state, 'stopped');
});

test('an instance failing its liveness probe is restarted', async () => {
  // FAIL_RATE=1 answers 500 on / (the liveness path) while /healthz (readiness) passes.
  await t.client.putInstance('sick', t.app('sick', { FAIL_RATE: '1' }, { liveness: { path: '/', intervalMs: 30, timeoutMs: 500, failureThreshold: 3 } }));
  await t.client.waitReady('sick', 10_000);
  await waitFor(async () => (await t.client.getInstance('sick'))!.restarts >= 1, 10_000, 'a liveness restart');
  const s = (await t.client.getInstance('sick'))!;
  assert.equal(s.lastExit?.signal ?? `code ${s.lastExit?.code}`, 'code 0', 'stopped with SIGTERM, which the app handles by exiting 0');
  assert.match(readFileSync(s.spec.logFile, 'utf8'), /liveness probe \/ failed 3 times in a row: restarting/);
  await t.client.waitReady('sick', 10_000, { maxExits: 10 });
  await t.client.deleteInstance('sick', 0);
});

test('deleting an instance waits for its requests in flight, then stops its whole process group', async () => {
  // A background child in the instance's group: it must not survive the instance.
  const spec = t.app('drain', { DELAY_MS: '400' });
  spec.command = `sleep 300 & ${spec.command}`;
  await t.client.putInstance('drain', spec);
  await t.client.waitReady('drain', 10_000);
  const pid = (await t.client.getInstance('drain'))!.pid!;
  const r = await t.client.putRoute('drain', route({ version: 'drain', instances: ['drain'] }));
  const inFlight = requests(`http://127.0.0.1:${r.port}/`, 6, 6);
  await waitFor(async () => ((await t.client.getRoute('drain'))!.inFlight[`http://127.0.0.1:${(await t.client.getInstance('drain'))!.port}`] ?? 0) === 6, 5_000, 'requests in flight');
  // The caller first routes elsewhere (here: nowhere), then deletes; the requests in flight finish.
  const deleted = t.client.deleteInstance('drain', 5_000);
  for (const a of await inFlight) assert.equal(a.status, 200);
  const status = await deleted;
  assert.equal(status!.state, 'stopped');
  assert.equal(await t.client.getInstance('drain'), null);
  assert.throws(() => process.kill(pid, 0), 'the instance process is gone');
  const log = readFileSync(status!.spec.logFile, 'utf8');
  assert.match(log, /Z ferry stopping: SIGTERM\n.*Z stdout sample-app drain: SIGTERM, stopping\n.*Z ferry stopped \(exit code 0\)\n$/s, 'what it said while stopping is logged');
  await waitFor(() => processesWith(`sleep 300`).every((p) => {
    try {
      return !readFileSync(`/proc/${p}/environ`, 'utf8').includes(`FERRY_INSTANCE_ID=drain\0`);
    } catch {
      return true;
    }
  }), 5_000, 'the background child to be gone');
  // Not routable any more: 503 from the router itself.
  const a = await request(`http://127.0.0.1:${r.port}/`);
  assert.equal(a.status, 503);
  await t.client.deleteRoute('drain');
});

test('websocket upgrades pass through the route', async () => {
  await t.client.putInstance('ws', t.app('ws'));
  await t.client.waitReady('ws', 10_000);
  const r = await t.client.putRoute('ws', route({ version: 'ws', instances: ['ws'] }));
  const echoed = await new Promise<string>((resolve, reject) => {
    const s = net.connect(r.port, '127.0.0.1');
    let got = '';
    s.on('error', reject);
    s.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    s.on('data', (d) => {
      got += d;
      if (got.includes('\r\n\r\n') && !got.includes('ping-pong')) s.write('ping-pong');
      if (got.endsWith('ping-pong')) {
        s.destroy();
        resolve(got);
      }
    });
  });
  assert.match(echoed, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(echoed, /X-Ferry-Version: ws\r\n/i);
  assert.ok(echoed.endsWith('\r\n\r\nping-pong'));
  const m = await t.client.routeMetrics('ws');
  assert.equal(m.versions.ws.statusClasses['1xx'], 1);
  await waitFor(async () => Object.values((await t.client.getRoute('ws'))!.inFlight).every((n) => n === 0), 5_000, 'the websocket to be counted out');
  await t.client.deleteRoute('ws');
  await t.client.deleteInstance('ws', 0);
});

test('PUT of an instance is idempotent; another spec under the same id is a conflict', async () => {
  const spec = t.app('same');
  const first = await t.client.putInstance('same', spec);
  const again = await t.client.putInstance('same', { ...spec, env: { ...spec.env } });
  assert.equal(again.pid, first.pid, 'the same process');
  const relabelled = await t.client.putInstance('same', { ...spec, labels: { ...spec.labels, role: 'canary' } });
  assert.equal(relabelled.pid, first.pid, 'labels change in place');
  assert.equal(relabelled.spec.labels.role, 'canary');
  assert.deepEqual((await t.client.listInstances({ role: 'canary' })).map((i) => i.id), ['same']);
  assert.deepEqual(await t.client.listInstances({ role: 'nope' }), []);
  await assert.rejects(t.client.putInstance('same', { ...spec, env: { VERSION: 'other' } }), /409 .*different spec/);
  await t.client.deleteInstance('same', 0);
});
