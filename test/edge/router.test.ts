// The router on its own: upstreams are HTTP servers in this process (fixed `url` upstreams), the
// routes are set through the admin API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { EdgeError } from '../../src/edge/client.js';
import { count, deadPort, request, requests, route, testEdge, upstream, type TestEdge } from './harness.js';

let t: TestEdge;
let v1: Awaited<ReturnType<typeof upstream>>;
let v2: Awaited<ReturnType<typeof upstream>>;

before(async () => {
  t = await testEdge();
  v1 = await upstream('v1');
  v2 = await upstream('v2');
});

after(async () => {
  await t.close();
  await v1.close();
  await v2.close();
});

test('a canary of weight 20 gets about 20% of 2000 requests', async () => {
  const r = await t.client.putRoute('weights', route({ version: 'v1', urls: [v1.url] }, { version: 'v2', urls: [v2.url], weight: 20 }));
  const answers = await requests(`http://127.0.0.1:${r.port}/`, 2000);
  const by = count(answers, (a) => a.headers['x-ferry-version'] as string);
  // Binomial(2000, 0.2): mean 400, sd 17.9; ±6 sd fails by chance about once in 10^9 runs.
  assert.ok(by.v2 >= 293 && by.v2 <= 507, JSON.stringify(by));
  assert.equal(by.v1 + by.v2, 2000);
  // The version header is the router's, and it agrees with the app's own.
  assert.ok(answers.every((a) => a.headers['x-ferry-version'] === a.headers['x-app-version']));
});

test('X-Ferry-Track overrides the weight', async () => {
  const r = await t.client.putRoute('override', route({ version: 'v1', urls: [v1.url] }, { version: 'v2', urls: [v2.url], weight: 0 }));
  const url = `http://127.0.0.1:${r.port}/`;
  for (const a of await requests(url, 50, 8, { 'x-ferry-track': 'canary' })) assert.equal(a.headers['x-ferry-version'], 'v2');
  for (const a of await requests(url, 50, 8)) assert.equal(a.headers['x-ferry-version'], 'v1');
  await t.client.putRoute('override', route({ version: 'v1', urls: [v1.url] }, { version: 'v2', urls: [v2.url], weight: 100 }));
  for (const a of await requests(url, 50, 8, { 'x-ferry-track': 'stable' })) assert.equal(a.headers['x-ferry-version'], 'v1');
  for (const a of await requests(url, 50, 8)) assert.equal(a.headers['x-ferry-version'], 'v2');
});

test('a sticky route keeps a client on the version it first got', async () => {
  const r = await t.client.putRoute('sticky', route({ version: 'v1', urls: [v1.url] }, { version: 'v2', urls: [v2.url], weight: 50 }, true));
  const url = `http://127.0.0.1:${r.port}/`;
  const seen = new Set<string>();
  for (let client = 0; client < 12; client++) {
    const first = await request(url);
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    const m = /^(ferry_track_sticky=[^;]+)/.exec(setCookie);
    assert.ok(m, `a cookie is set: ${setCookie}`);
    assert.match(setCookie, /HttpOnly/);
    const version = first.headers['x-ferry-version'] as string;
    seen.add(version);
    for (let i = 0; i < 10; i++) {
      const again = await request(url, { headers: { cookie: `other=1; ${m[1]}` } });
      assert.equal(again.headers['x-ferry-version'], version);
      assert.equal(again.headers['set-cookie'], undefined, 'no new cookie for a pinned client');
    }
  }
  // 12 clients at 50/50 all on one side: 1 in 2048.
  assert.equal(seen.size, 2, 'both versions were chosen for some client');
  // A cookie for a version that is not routed any more is chosen for again.
  const stale = await request(url, { headers: { cookie: 'ferry_track_sticky=v0' } });
  assert.match(String(stale.headers['set-cookie']), /ferry_track_sticky=v[12]/);
  // Testers may pin by track name.
  for (let i = 0; i < 10; i++) assert.equal((await request(url, { headers: { cookie: 'ferry_track_sticky=canary' } })).headers['x-ferry-version'], 'v2');
});

test('metrics per version: status classes, proxy errors, latency buckets', async () => {
  const slow = await upstream('slow', (req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(req.url === '/fail' ? 503 : 200, { 'x-app-version': 'slow' });
      res.end('slow\n');
    }, 40);
  });
  try {
    const r = await t.client.putRoute('metrics', route({ version: 'v1', urls: [v1.url] }, { version: 'slow', urls: [slow.url], weight: 0 }));
    const url = `http://127.0.0.1:${r.port}`;
    await requests(`${url}/`, 30, 8);
    await requests(`${url}/`, 10, 5, { 'x-ferry-track': 'canary' });
    await requests(`${url}/fail`, 5, 5, { 'x-ferry-track': 'canary' });
    const m = await t.client.routeMetrics('metrics');
    assert.equal(m.bucketsMs.length, m.versions.v1.latencyBuckets.length);
    assert.equal(m.bucketsMs[m.bucketsMs.length - 1], null, 'Infinity is null in JSON');
    assert.equal(m.versions.v1.requests, 30);
    assert.equal(m.versions.v1.statusClasses['2xx'], 30);
    assert.equal(m.versions.slow.requests, 15);
    assert.equal(m.versions.slow.statusClasses['2xx'], 10);
    assert.equal(m.versions.slow.statusClasses['5xx'], 5);
    assert.equal(m.versions.slow.proxyErrors, 0, 'an upstream 5xx is not a proxy error');
    for (const v of Object.values(m.versions)) assert.equal(v.latencyBuckets.reduce((a, b) => a + b, 0), v.requests);
    // Every slow answer took at least 40 ms: none is in a bucket below 40.
    const below40 = m.bucketsMs.findIndex((b) => b !== null && b >= 40);
    assert.equal(m.versions.slow.latencyBuckets.slice(0, below40).reduce((a, b) => a + b, 0), 0, JSON.stringify(m.versions.slow));
    assert.ok(m.versions.slow.latencySumMs >= 15 * 40);
  } finally {
    await slow.close();
  }
  // An upstream nobody listens on: 502, counted as 5xx and as a proxy error of its version.
  const dead = await deadPort();
  const r = await t.client.putRoute('dead', route({ version: 'gone', urls: [`http://127.0.0.1:${dead}`] }));
  const a = await request(`http://127.0.0.1:${r.port}/`, { method: 'POST', body: 'x' });
  assert.equal(a.status, 502);
  assert.equal(a.headers['x-ferry-version'], 'gone');
  const m = await t.client.routeMetrics('dead');
  assert.equal(m.versions.gone.statusClasses['5xx'], 1);
  assert.equal(m.versions.gone.proxyErrors, 1);
  // And the same figures in Prometheus text.
  const text = await (await fetch(`${t.edge.url}/metrics`)).text();
  assert.match(text, /ferry_edge_requests_total\{route="metrics",version="slow",code="5xx"\} 5/);
  assert.match(text, /ferry_edge_proxy_errors_total\{route="dead",version="gone"\} 1/);
  assert.match(text, /ferry_edge_request_duration_seconds_count\{route="metrics",version="v1"\} 30/);
});

test('an idempotent request that meets a refused connection is retried on another upstream', async () => {
  const dead = await deadPort();
  const r = await t.client.putRoute('retry', route({ version: 'v1', urls: [`http://127.0.0.1:${dead}`, v1.url] }));
  const url = `http://127.0.0.1:${r.port}/`;
  // Round-robin sends every other request to the dead address first.
  for (const a of await requests(url, 40, 4)) assert.equal(a.status, 200);
  // A request with a body is never repeated: half of them fail.
  const posts = await Promise.all(Array.from({ length: 10 }, () => request(url, { method: 'POST', body: 'hello' })));
  assert.deepEqual(count(posts, (p) => String(p.status)), { 200: 5, 502: 5 });
});

test('bodies stream both ways without being buffered', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const echo = await upstream('echo', (req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk\n');
      void gate.then(() => res.end('last chunk\n'));
      return;
    }
    let n = 0;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.on('data', (c: Buffer) => {
      n += c.length;
      res.write(c);
    });
    req.on('end', () => res.end(`\n${n} bytes`));
  });
  try {
    const r = await t.client.putRoute('stream', route({ version: 'echo', urls: [echo.url] }));
    const url = `http://127.0.0.1:${r.port}`;
    // The first chunk arrives while the upstream still holds the end of its answer.
    const first = await new Promise<string>((resolve, reject) => {
      http.get(`${url}/stream`, (res) => {
        res.once('data', (c: Buffer) => {
          resolve(c.toString());
          release();
          res.resume();
        });
      }).on('error', reject);
    });
    assert.equal(first, 'first chunk\n');
    const big = Buffer.alloc(3 << 20, 'x');
    const a = await request(`${url}/echo`, { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(a.body.length, big.length + `\n${big.length} bytes`.length);
    // Chunked uploads too.
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${url}/echo`, { method: 'POST' }, (res) => {
        let s = '';
        res.on('data', (c) => (s += c));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.write('abc');
      setTimeout(() => req.end('def'), 20);
    });
    assert.equal(chunked, 'abcdef\n6 bytes');
  } finally {
    release();
    await echo.close();
  }
});

test('a reconfiguration applies to new requests; those in flight finish where they started', async () => {
  const slow = await upstream('slow', (req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'x-app-version': 'slow' });
      res.end('slow\n');
    }, 300);
  });
  try {
    const r = await t.client.putRoute('swap', route({ version: 'slow', urls: [slow.url] }));
    const url = `http://127.0.0.1:${r.port}/`;
    const inFlight = Promise.all(Array.from({ length: 5 }, () => request(url)));
    await new Promise((res) => setTimeout(res, 100));
    const during = await t.client.getRoute('swap');
    assert.equal(during!.inFlight[slow.url], 5, JSON.stringify(during));
    await t.client.putRoute('swap', route({ version: 'v1', urls: [v1.url] }));
    assert.equal((await request(url)).headers['x-ferry-version'], 'v1');
    for (const a of await inFlight) {
      assert.equal(a.status, 200);
      assert.equal(a.headers['x-ferry-version'], 'slow');
    }
    assert.equal((await t.client.getRoute('swap'))!.inFlight[slow.url] ?? 0, 0);
  } finally {
    await slow.close();
  }
});

test('hop-by-hop headers stay on their side; the client sees X-Ferry-Version', async () => {
  let seen: http.IncomingHttpHeaders = {};
  const h = await upstream('h', (req, res) => {
    seen = req.headers;
    req.resume();
    res.writeHead(200, { 'x-app-version': 'h', connection: 'close', 'set-cookie': ['a=1', 'b=2'] });
    res.end('ok');
  });
  try {
    const r = await t.client.putRoute('headers', route({ version: 'h', urls: [h.url] }));
    const a = await request(`http://127.0.0.1:${r.port}/x?y=1`, { headers: { 'x-custom': 'kept', 'proxy-connection': 'keep-alive', te: 'trailers' } });
    assert.equal(seen['x-custom'], 'kept');
    assert.equal(seen['proxy-connection'], undefined);
    assert.equal(seen['te'], undefined);
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['host'], `127.0.0.1:${r.port}`, 'the client\'s Host reaches the app');
    assert.deepEqual(a.headers['set-cookie'], ['a=1', 'b=2']);
    assert.notEqual(a.headers['connection'], 'close', 'the upstream closing its connection does not close the client\'s');
    assert.equal(a.headers['x-ferry-version'], 'h');
  } finally {
    await h.close();
  }
});

test('route changes that cannot apply are refused, and deleted routes stop listening', async () => {
  const r = await t.client.putRoute('fixed', route({ version: 'v1', urls: [v1.url] }));
  await assert.rejects(t.client.putRoute('fixed', { ...route({ version: 'v1', urls: [v1.url] }), port: r.port === 65000 ? 65001 : 65000 }), (e: EdgeError) => e.status === 409 && /port cannot change/.test(e.message));
  // The same spec again, with port 0 or its own port, changes nothing.
  assert.equal((await t.client.putRoute('fixed', route({ version: 'v1', urls: [v1.url] }))).port, r.port);
  assert.equal((await t.client.putRoute('fixed', { ...route({ version: 'v1', urls: [v1.url] }), port: r.port })).port, r.port);
  await t.client.deleteRoute('fixed');
  assert.equal(await t.client.getRoute('fixed'), null);
  await assert.rejects(request(`http://127.0.0.1:${r.port}/`), /ECONNREFUSED/);
  assert.equal(await t.client.deleteRoute('fixed'), null, 'deleting twice is fine');
});
