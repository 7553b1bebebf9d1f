// A bad canary costs users (almost) nothing: the router retries on stable what the canary failed
// (a 5xx answer, a refused connection) when it is safe to, while the canary's own metrics still
// count the failures the analysis decides on. Stable is the sample app (v1), the canary the sample
// app answering 500 to everything (v2, FAIL_RATE=1), both real processes under the edge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { RouteSpec } from '../../src/edge/api.js';
import { EdgeError } from '../../src/edge/client.js';
import { startLoad } from '../helpers/load.js';
import { processesWith } from '../helpers/procs.js';
import { count, deadPort, request, requests, route, testEdge, upstream, type TestEdge } from './harness.js';

let t: TestEdge;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stable = { version: 'v1', instances: ['ok-v1'] };
const bad = (weight: number) => ({ version: 'v2', instances: ['bad-v2'], weight });
const versionOf = (a: { headers: http.IncomingHttpHeaders }) => a.headers['x-ferry-version'] as string;

before(async () => {
  t = await testEdge();
  await Promise.all([t.client.putInstance('ok-v1', t.app('v1')), t.client.putInstance('bad-v2', t.app('v2', { FAIL_RATE: '1' }))]);
  await Promise.all([t.client.waitReady('ok-v1', 10_000), t.client.waitReady('bad-v2', 10_000)]);
});

after(async () => {
  await t.close();
  assert.deepEqual(processesWith(t.marker), []);
});

async function prometheus(): Promise<string> {
  return (await fetch(`${t.edge.url}/metrics`)).text();
}

function promValue(text: string, line: string): number {
  const at = text.split('\n').find((l) => l.startsWith(`${line} `));
  assert.ok(at, `${line} in the Prometheus text`);
  return Number(at.slice(line.length + 1));
}

test('a canary failing every request at weight 50, under load: zero failed requests, its 5xx still counted', async () => {
  const r = await t.client.putRoute('web', route(stable, bad(50)));
  const url = `http://127.0.0.1:${r.port}/`;
  const load = startLoad({ url, rps: 200, concurrency: 8 });
  await sleep(2000);
  const s = await load.stop();
  assert.equal(s.failed, 0, JSON.stringify({ errors: s.errors, failures: s.failures.slice(0, 5), statuses: s.statuses }));
  assert.ok(s.sent > 150, `sent ${s.sent}`);
  assert.deepEqual(s.byVersion, { v1: s.sent }, 'every answer is stable\'s');

  const m = await t.client.routeMetrics('web');
  const v1 = m.versions.v1;
  const v2 = m.versions.v2;
  // Stable answered every request; the canary was asked about half of them and failed each.
  assert.equal(v1.requests, s.sent);
  assert.equal(v1.statusClasses['2xx'], s.sent);
  assert.equal(v1.retries, 0);
  assert.equal(v2.statusClasses['5xx'], v2.requests, JSON.stringify(v2));
  assert.equal(v2.proxyErrors, 0, 'a 5xx answer is not a proxy error');
  assert.equal(v2.retries, v2.requests, 'each of its failures was retried');
  // Binomial(n, 0.5) within ±6 sd: what the analysis sees is the canary's share of the traffic.
  const sd = Math.sqrt(s.sent * 0.25);
  assert.ok(Math.abs(v2.requests - s.sent / 2) <= 6 * sd, `canary ${v2.requests} of ${s.sent}`);
  assert.equal(v2.latencyBuckets.reduce((a, b) => a + b, 0), v2.requests);

  const text = await prometheus();
  assert.equal(promValue(text, 'ferry_edge_retries_total{route="web",reason="canary-5xx"}'), v2.retries);
  assert.equal(promValue(text, 'ferry_edge_retries_total{route="web",reason="canary-error"}'), 0);
  assert.equal(promValue(text, 'ferry_edge_requests_total{route="web",version="v2",code="5xx"}'), v2.requests);

  // Seen one by one: stable's answer, whole; the retried ones say so.
  const answers = await requests(url, 40, 4);
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.equal(versionOf(a), 'v1');
    assert.equal(a.headers['x-app-version'], 'v1');
    assert.equal(a.body, 'hello from v1\n');
  }
  const retried = count(answers, (a) => a.headers['x-ferry-retried'] as string | undefined);
  // 40 requests at 50/50 all on one side: 1 in 2^39.
  assert.ok(retried['canary-5xx'] > 0 && retried.none > 0, JSON.stringify(retried));
  assert.deepEqual(Object.keys(retried).sort(), ['canary-5xx', 'none']);
  await t.client.deleteRoute('web');
});

test('X-Ferry-Track: canary gets the canary\'s real answers', async () => {
  const r = await t.client.putRoute('forced', route(stable, bad(50)));
  const answers = await requests(`http://127.0.0.1:${r.port}/`, 20, 4, { 'x-ferry-track': 'canary' });
  for (const a of answers) {
    assert.equal(a.status, 500);
    assert.equal(versionOf(a), 'v2');
    assert.equal(a.body, 'error from v2\n');
    assert.equal(a.headers['x-ferry-retried'], undefined);
  }
  const m = await t.client.routeMetrics('forced');
  assert.equal(m.versions.v2.statusClasses['5xx'], 20);
  assert.equal(m.versions.v2.retries, 0);
  assert.equal(m.versions.v1.requests, 0);
  await t.client.deleteRoute('forced');
});

test('requests that are not safe to repeat are not retried; HEAD and OPTIONS are', async () => {
  const r = await t.client.putRoute('unsafe', route(stable, bad(100)));
  const url = `http://127.0.0.1:${r.port}/`;
  const posts = await Promise.all(Array.from({ length: 10 }, () => request(url, { method: 'POST', body: 'hello' })));
  assert.deepEqual(count(posts, (a) => `${a.status} ${versionOf(a)}`), { '500 v2': 10 });
  // Not idempotent even without a body.
  assert.equal((await request(url, { method: 'DELETE' })).status, 500);
  // A GET with a body is not repeated either (the body is streamed, not kept).
  const getWithBody = await request(url, { method: 'GET', body: 'x=1', headers: { 'content-type': 'text/plain', 'content-length': '3' } });
  assert.equal(getWithBody.status, 500);
  assert.equal(versionOf(getWithBody), 'v2');
  for (const method of ['HEAD', 'OPTIONS', 'GET']) {
    const a = await request(url, { method });
    assert.equal(a.status, 200, method);
    assert.equal(versionOf(a), 'v1', method);
    assert.equal(a.headers['x-ferry-retried'], 'canary-5xx', method);
  }
  // With Content-Length: 0 a GET has no body: retried.
  const empty = await request(url, { method: 'GET', headers: { 'content-length': '0' } });
  assert.equal(empty.status, 200);
  const m = await t.client.routeMetrics('unsafe');
  assert.equal(m.versions.v2.requests, 16);
  assert.equal(m.versions.v2.retries, 4);
  assert.equal(m.versions.v1.requests, 4);
  await t.client.deleteRoute('unsafe');
});

test('retryCanaryErrors: false turns it off; it is validated and kept in the spec', async () => {
  const spec: RouteSpec = { ...route(stable, bad(100)), retryCanaryErrors: false };
  const r = await t.client.putRoute('off', spec);
  assert.equal(r.spec.retryCanaryErrors, false);
  assert.equal((await t.client.getRoute('off'))!.spec.retryCanaryErrors, false);
  const url = `http://127.0.0.1:${r.port}/`;
  assert.deepEqual(count(await requests(url, 10, 2), (a) => `${a.status} ${versionOf(a)}`), { '500 v2': 10 });
  await assert.rejects(t.client.putRoute('off', { ...route(stable, bad(100)), retryCanaryErrors: 'no' as unknown as boolean }), (e: EdgeError) => e.status === 400 && /retryCanaryErrors must be true or false/.test(e.message));
  // Absent is the default (on), and stays absent in the spec.
  const on = await t.client.putRoute('off', route(stable, bad(100)));
  assert.equal('retryCanaryErrors' in on.spec, false);
  assert.deepEqual(count(await requests(url, 10, 2), (a) => `${a.status} ${versionOf(a)}`), { '200 v1': 10 });
  await t.client.putRoute('off', { ...route(stable, bad(100)), retryCanaryErrors: true });
  assert.deepEqual(count(await requests(url, 10, 2), (a) => `${a.status} ${versionOf(a)}`), { '200 v1': 10 });
  await t.client.deleteRoute('off');
});

test('a canary that refuses connections is retried on stable, and counted as its failure', async () => {
  const dead = await deadPort();
  const r = await t.client.putRoute('down', route(stable, { version: 'v3', urls: [`http://127.0.0.1:${dead}`], weight: 50 }));
  const url = `http://127.0.0.1:${r.port}/`;
  const load = startLoad({ url, rps: 200, concurrency: 8 });
  await sleep(1000);
  const s = await load.stop();
  assert.equal(s.failed, 0, JSON.stringify({ errors: s.errors, failures: s.failures.slice(0, 5), statuses: s.statuses }));
  assert.deepEqual(s.byVersion, { v1: s.sent });
  const m = await t.client.routeMetrics('down');
  const v3 = m.versions.v3;
  assert.ok(v3.requests > 0);
  assert.equal(v3.statusClasses['5xx'], v3.requests, 'a refused connection is a 502 of the canary');
  assert.equal(v3.proxyErrors, v3.requests);
  assert.equal(v3.retries, v3.requests);
  assert.equal(m.versions.v1.requests, s.sent);
  assert.equal(promValue(await prometheus(), 'ferry_edge_retries_total{route="down",reason="canary-error"}'), v3.retries);
  await t.client.putRoute('down', route(stable, { version: 'v3', urls: [`http://127.0.0.1:${dead}`], weight: 100 }));
  const a = await request(url);
  assert.equal(a.status, 200);
  assert.equal(versionOf(a), 'v1');
  assert.equal(a.headers['x-ferry-retried'], 'canary-error');
  await t.client.deleteRoute('down');
});

test('without a ready stable upstream the canary\'s answer goes through; stable\'s answer is passed on whatever it is', async () => {
  await t.client.putInstance('late-v1', { ...t.app('late', { READY_AFTER_MS: '600000' }), logFile: `${t.home}/logs/late-v1.log` });
  const r = await t.client.putRoute('nostable', route({ version: 'v1', instances: ['late-v1'] }, bad(100)));
  const url = `http://127.0.0.1:${r.port}/`;
  for (const a of await requests(url, 5, 1)) {
    assert.equal(a.status, 500);
    assert.equal(versionOf(a), 'v2');
    assert.equal(a.headers['x-ferry-retried'], undefined);
  }
  assert.equal((await t.client.routeMetrics('nostable')).versions.v2.retries, 0);
  // A stable that refuses: the retry's 502 is the answer (no second retry, not back to the canary).
  const dead = await deadPort();
  await t.client.putRoute('nostable', route({ version: 'gone', urls: [`http://127.0.0.1:${dead}`] }, bad(100)));
  const a = await request(url);
  assert.equal(a.status, 502);
  assert.equal(versionOf(a), 'gone');
  assert.equal(a.headers['x-ferry-retried'], 'canary-5xx');
  const m = await t.client.routeMetrics('nostable');
  assert.equal(m.versions.gone.proxyErrors, 1);
  assert.equal(m.versions.v2.retries, 1);
  await t.client.deleteRoute('nostable');
  await t.client.deleteInstance('late-v1', 0);
});

test('sticky clients pinned to the canary are retried on stable and stay pinned; a tester\'s cookie is not', async () => {
  const r = await t.client.putRoute('pin', route(stable, bad(100), true));
  const url = `http://127.0.0.1:${r.port}/`;
  // A new client, given the canary by the weight: stable's answer, pinned to the canary all the same.
  const first = await request(url);
  assert.equal(first.status, 200);
  assert.equal(versionOf(first), 'v1');
  assert.equal(first.headers['x-ferry-retried'], 'canary-5xx');
  assert.match(String(first.headers['set-cookie']), /^ferry_track_pin=v2;/);
  // Pinned by the router: it did not ask for the canary.
  for (const a of await requests(url, 10, 2, { cookie: 'ferry_track_pin=v2' })) {
    assert.equal(a.status, 200);
    assert.equal(versionOf(a), 'v1');
    assert.equal(a.headers['x-ferry-retried'], 'canary-5xx');
    assert.equal(a.headers['set-cookie'], undefined);
  }
  // A tester's cookie names the track: the canary's real answer.
  for (const a of await requests(url, 5, 1, { cookie: 'ferry_track_pin=canary' })) {
    assert.equal(a.status, 500);
    assert.equal(versionOf(a), 'v2');
  }
  await t.client.deleteRoute('pin');
});

test('a canary 5xx whose body is still coming is not waited for; one that came whole keeps its connection', async () => {
  let connections = 0;
  const canary = await upstream('v9', (req, res) => {
    req.resume();
    if (req.url === '/endless') {
      // The head and the start of a body that never ends: the router must not wait for it.
      res.writeHead(503, { 'content-type': 'text/plain', 'x-app-version': 'v9' });
      res.write('going on');
      return;
    }
    res.writeHead(500, { 'content-type': 'text/plain', 'x-app-version': 'v9' });
    res.end('error from v9\n');
  });
  canary.server.on('connection', () => connections++);
  try {
    const r = await t.client.putRoute('body', route(stable, { version: 'v9', urls: [canary.url], weight: 100 }));
    const url = `http://127.0.0.1:${r.port}`;
    for (let i = 0; i < 20; i++) {
      const a = await request(`${url}/`);
      assert.equal(a.status, 200);
      assert.equal(a.body, 'hello from v1\n');
    }
    assert.equal(connections, 1, 'the discarded answers left the connection usable');
    const a = await request(`${url}/endless`);
    assert.equal(a.status, 200);
    assert.equal(versionOf(a), 'v1');
    assert.equal(a.headers['x-ferry-retried'], 'canary-5xx');
    const m = await t.client.routeMetrics('body');
    assert.equal(m.versions.v9.statusClasses['5xx'], 21);
    assert.equal(m.versions.v9.retries, 21);
    // Nothing left in flight to either side.
    const st = (await t.client.getRoute('body'))!;
    assert.ok(Object.values(st.inFlight).every((n) => n === 0), JSON.stringify(st.inFlight));
    await t.client.deleteRoute('body');
  } finally {
    await canary.close();
  }
});
