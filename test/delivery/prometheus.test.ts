// The prometheus analysis source against a real Prometheus (Debian's package) scraping two
// instances of the sample app every second: exact values of counters and ratios, a rate that
// follows traffic, and what is inconclusive (no data, several series, NaN, unreachable, slow)
// or an error (bad PromQL, a range vector).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measurePrometheus, substituteQuery } from '../../src/delivery/analysis/prometheus.js';
import type { MeasureContext, Measurement } from '../../src/delivery/analysis/types.js';
import { fixture } from '../helpers/paths.js';
import { debianBinary, freePort, killWithThisProcess } from '../helpers/procs.js';

const CTX: MeasureContext = { environment: 'production', version: 'v2', stableVersion: 'v1', intervalMs: 5000, timeoutMs: 5000 };



/** The sample app on a port of its choosing; resolves once it listens. */
function startApp(version: string, failRate: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [fixture('apps', 'sample-app.mjs')], { env: { ...process.env, PORT: '0', VERSION: version, FAIL_RATE: String(failRate) }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`sample app exited with ${code}: ${out}`)));
  });
}

function hit(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

test('substituteQuery replaces the FERRY_* variables, bare or braced, and nothing else', () => {
  assert.equal(
    substituteQuery('sum(rate(x{env="$FERRY_ENVIRONMENT",v="${FERRY_VERSION}",s="$FERRY_STABLE_VERSION"}[$FERRY_INTERVAL])) $FERRY_VERSIONS $OTHER', CTX),
    'sum(rate(x{env="production",v="v2",s="v1"}[5s])) $FERRY_VERSIONS $OTHER',
  );
  assert.equal(substituteQuery('[$FERRY_INTERVAL]', { ...CTX, intervalMs: 1500 }), '[1500ms]');
  assert.equal(substituteQuery('[$FERRY_INTERVAL]', { ...CTX, intervalMs: 120_000 }), '[2m]');
  assert.equal(substituteQuery('{v="$FERRY_VERSION"}', { ...CTX, version: 'a"b' }), '{v="a\\"b"}');
  assert.equal(substituteQuery('{v="$FERRY_STABLE_VERSION"}', { ...CTX, stableVersion: undefined }), '{v=""}');
});

test('unreachable, slow or failing Prometheus is inconclusive; a bad address is an error', async (t) => {
  const port = await freePort();
  const refused = await measurePrometheus({ query: 'up', address: `http://127.0.0.1:${port}` }, CTX);
  assert.deepEqual(refused.values, {});
  assert.match(refused.inconclusive ?? '', /cannot query Prometheus at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);

  let seen = '';
  const held: Server = createServer((req, res) => {
    seen = req.url ?? '';
    if (req.url?.includes('fail')) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'error', errorType: 'timeout', error: 'query timed out in expression evaluation' }));
      return;
    }
    if (req.url?.includes('proxy')) {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>Bad Gateway</html>');
      return;
    }
    /* never answers */
  });
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
  t.after(() => {
    held.closeAllConnections();
    held.close();
  });
  const address = `http://127.0.0.1:${(held.address() as { port: number }).port}/prom/`;
  const slow = await measurePrometheus({ query: 'up', address }, { ...CTX, timeoutMs: 300 });
  assert.match(slow.inconclusive ?? '', /timed out after 300 ms/);
  // Under a path prefix, with Prometheus's own timeout passed along.
  assert.match(seen, /^\/prom\/api\/v1\/query\?query=up&timeout=/);
  const failing = await measurePrometheus({ query: 'fail', address }, CTX);
  assert.match(failing.inconclusive ?? '', /failed the query: timeout: query timed out/);
  const proxy = await measurePrometheus({ query: 'proxy', address }, CTX);
  assert.match(proxy.inconclusive ?? '', /HTTP 502: <html>Bad Gateway/);
  const aborted = new AbortController();
  aborted.abort();
  assert.match((await measurePrometheus({ query: 'up', address }, { ...CTX, signal: aborted.signal })).inconclusive ?? '', /aborted/);
  assert.match((await measurePrometheus({ query: 'up', address: 'ftp://x' }, CTX)).error ?? '', /bad Prometheus address/);
});

const bin = debianBinary('/usr/bin/prometheus', 'prometheus');

test(
  'a real Prometheus scraping the sample app: counters, ratios, rates, and what is inconclusive',
  { skip: bin ? false : 'prometheus is not installed and cannot be installed here (apt-get install prometheus)', timeout: 120_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-prom-'));
    const children: ChildProcess[] = [];
    t.after(async () => {
      await Promise.all(children.map(stop));
      await rm(dir, { recursive: true, force: true });
    });
    const stable = await startApp('v1', 0);
    children.push(stable.child);
    const canary = await startApp('v2', 1);
    children.push(canary.child);
    // Traffic before the first scrape: the counters are known exactly.
    for (let i = 0; i < 7; i++) assert.equal(await hit(canary.port), 500);
    for (let i = 0; i < 5; i++) assert.equal(await hit(stable.port), 200);

    const port = await freePort();
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['127.0.0.1:${stable.port}', '127.0.0.1:${canary.port}']
`,
    );
    let log = '';
    const prom = spawn(bin!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(prom);
    killWithThisProcess(prom);
    prom.stderr!.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-4000)));
    const address = `http://127.0.0.1:${port}`;

    // Both targets scraped at least once.
    await until(`Prometheus to scrape both apps (log: ${log})`, async () => {
      const r = (await (await fetch(`${address}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: { health: string }[] } };
      const targets = r.data.activeTargets;
      return targets.length === 2 && targets.every((x) => x.health === 'up') ? true : undefined;
    });
    const measure = (query: string, ctx: Partial<MeasureContext> = {}) => measurePrometheus({ query, address }, { ...CTX, ...ctx });
    const value = (m: Measurement) => m.values.result;
    await until('the first samples to be queryable', async () => (value(await measure('count(app_requests_total)')) === 2 ? true : undefined));

    assert.deepEqual(await measure('sum(app_requests_total{code="500"})'), { values: { result: 7 } });
    assert.equal(value(await measure('sum(app_requests_total{version="$FERRY_VERSION"})')), 7);
    assert.equal(value(await measure('sum(app_requests_total{version="${FERRY_STABLE_VERSION}", code="200"})')), 5);
    assert.equal(value(await measure('sum(app_requests_total{code="500"}) / sum(app_requests_total)')), 7 / 12);
    // A scalar.
    assert.equal(value(await measure('scalar(sum(app_requests_total{code="500"})) * 2')), 14);

    // Counters that do not move have a rate of exactly 0, once the window holds two samples.
    const rate500 = 'sum(rate(app_requests_total{version="$FERRY_VERSION",code="500"}[$FERRY_INTERVAL]))';
    await until('a window of two samples', async () => (value(await measure(rate500)) === 0 ? true : undefined));

    // Failing traffic to the canary only: its rate rises; the error ratio of the interval is 1.
    let flowing = true;
    const traffic = (async () => {
      while (flowing) {
        await hit(canary.port);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const rising = await until('the rate to follow the traffic', async () => {
        const v = value(await measure(rate500));
        return v !== undefined && v > 0 ? v : undefined;
      });
      assert.ok(rising > 0);
      const ratio = await measure('sum(rate(app_requests_total{code="500"}[$FERRY_INTERVAL])) / sum(rate(app_requests_total[$FERRY_INTERVAL]))');
      assert.deepEqual(ratio, { values: { result: 1 } });
    } finally {
      flowing = false;
      await traffic;
    }

    const none = await measure('sum(app_requests_total{version="nope"})');
    assert.deepEqual(none.values, {});
    assert.match(none.inconclusive ?? '', /^no data: `sum\(app_requests_total\{version="nope"\}\)` returned no series/);
    const several = await measure('app_requests_total');
    assert.match(several.inconclusive ?? '', /returned 2 series \(app_requests_total\{.*\}, app_requests_total\{.*\}\); aggregate it/);
    // 0/0 of a ratio with no traffic.
    const nan = await measure('sum(rate(app_requests_total{version="nope"}[5s])) / 0 or vector(0) / 0');
    assert.match(nan.inconclusive ?? '', /is NaN/);
    const bad = await measure('sum(app_requests_total');
    assert.match(bad.error ?? '', /refused the query `sum\(app_requests_total`: bad_data: /);
    const matrix = await measure('app_requests_total[1m]');
    assert.match(matrix.error ?? '', /gives a matrix/);
  },
);
