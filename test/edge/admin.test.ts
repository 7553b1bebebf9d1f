// The admin API's edges: authentication, validation messages, 404/405/409, the files it writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeClient, EdgeError } from '../../src/edge/client.js';
import { startEdge } from '../../src/edge/edge.js';
import { testEdge, type TestEdge } from './harness.js';

let t: TestEdge;

before(async () => {
  t = await testEdge();
});

after(async () => {
  await t.close();
});

const call = (path: string, init: RequestInit = {}) => fetch(t.edge.url + path, init);
const authed = (path: string, init: RequestInit = {}) => call(path, { ...init, headers: { authorization: `Bearer ${t.edge.token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

test('the token, admin.json and state.json are written under FERRY_HOME/edge', () => {
  const dir = join(t.home, 'edge');
  const token = readFileSync(join(dir, 'token'), 'utf8').trim();
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(statSync(join(dir, 'token')).mode & 0o777, 0o600);
  const info = JSON.parse(readFileSync(join(dir, 'admin.json'), 'utf8'));
  assert.equal(info.url, t.edge.url);
  assert.equal(info.pid, process.pid);
  assert.ok(!Number.isNaN(Date.parse(info.startedAt)));
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')), { version: 1, instances: [], routes: [] });
});

test('everything but /healthz and /metrics needs the bearer token', async () => {
  assert.equal((await call('/healthz')).status, 200);
  assert.equal((await call('/metrics')).status, 200);
  for (const path of ['/instances', '/routes', '/instances/x', '/routes/x/metrics', '/nowhere']) {
    const none = await call(path);
    assert.equal(none.status, 401, path);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await call(path, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await call(path, { headers: { authorization: `Basic ${t.edge.token}` } })).status, 401);
  }
  const body = await (await call('/instances')).json();
  assert.doesNotMatch(JSON.stringify(body), new RegExp(t.edge.token), 'the answer never holds the token');
  assert.equal((await authed('/instances')).status, 200);
});

test('bodies are validated with every problem named', async () => {
  const bad = await authed('/instances/x', { method: 'PUT', body: JSON.stringify({ command: '', cwd: 'relative', port: 70000, readiness: { path: 'healthz', intervalMs: 0 }, logFile: '/tmp/x.log', env: { A: 1 }, surprise: true }) });
  assert.equal(bad.status, 400);
  const { error, problems } = (await bad.json()) as { error: string; problems: string[] };
  for (const p of [/command must not be empty/, /cwd must be an absolute path/, /port must be an integer from 0 to 65535/, /readiness.path must start with \//, /readiness.intervalMs must be an integer/, /readiness.timeoutMs must be an integer/, /env.A must be a string/, /surprise is not a known field/]) {
    assert.ok(problems.some((x) => p.test(x)), `${p} in ${JSON.stringify(problems)}`);
  }
  assert.match(error, /command must not be empty; /);
  const notJson = await authed('/instances/x', { method: 'PUT', body: '{nope' });
  assert.equal(notJson.status, 400);
  assert.match(((await notJson.json()) as { error: string }).error, /not valid JSON/);
  assert.equal((await authed('/instances/x', { method: 'PUT' })).status, 400);
  assert.equal((await authed('/instances/bad%20id', { method: 'PUT', body: '{}' })).status, 400);
  const route = await authed('/routes/web', { method: 'PUT', body: JSON.stringify({ stable: { version: 'v1', upstreams: [{ instance: 'ghost' }, { url: 'ftp://x' }, {}] }, canary: { version: 'v2', upstreams: [{ url: 'http://127.0.0.1:1' }], weight: 101 } }) });
  assert.equal(route.status, 400);
  const rp = ((await route.json()) as { problems: string[] }).problems;
  for (const p of [/unknown instance "ghost"/, /stable.upstreams\[1\].url must be http:\/\/HOST:PORT/, /stable.upstreams\[2\] must have exactly one of instance, url/, /canary.weight must be a number from 0 to 100/]) {
    assert.ok(rp.some((x) => p.test(x)), `${p} in ${JSON.stringify(rp)}`);
  }
});

test('unknown things are 404, wrong methods 405, and the client maps them', async () => {
  assert.equal((await authed('/instances/nope')).status, 404);
  assert.equal((await authed('/routes/nope')).status, 404);
  assert.equal((await authed('/routes/nope/metrics')).status, 404);
  assert.equal((await authed('/elsewhere')).status, 404);
  const post = await authed('/instances', { method: 'POST', body: '{}' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET');
  assert.equal(await t.client.getInstance('nope'), null);
  assert.equal(await t.client.deleteInstance('nope'), null);
  assert.equal(await t.client.getRoute('nope'), null);
  await assert.rejects(t.client.routeMetrics('nope'), (e: EdgeError) => e instanceof EdgeError && e.status === 404 && /no route nope/.test(e.message));
  await assert.rejects(new EdgeClient(t.edge.url, 'wrong').listRoutes(), (e: EdgeError) => e.status === 401);
  const h = await t.client.health();
  assert.equal(h.ok, true);
  assert.equal(h.pid, process.pid);
});

test('a second edge on the same home is refused; a client of a stopped edge says so', async () => {
  await assert.rejects(startEdge({ home: t.home, adminPort: 0, log: () => {} }), /another edge|admin/);
  await assert.rejects(new EdgeClient('http://127.0.0.1:1', 'x').health(), (e: EdgeError) => e.status === 0 && /cannot reach the edge/.test(e.message));
  assert.throws(() => EdgeClient.fromHome('/nonexistent-ferry-home'), /no edge is running/);
});
