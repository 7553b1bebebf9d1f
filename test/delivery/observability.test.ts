// Releases judged and stopped by a real monitoring stack (Debian's packages), end to end:
//  - a real Prometheus scraping the edge's /metrics feeds a `source: prometheus` analysis metric
//    of canary releases: a healthy canary passes on it, a failing one is rolled back by it;
//  - a real Alertmanager delivers a firing alert naming the environment to the server's webhook
//    (with a deployer's token), which rolls the paused canary back.
// Everything listens on loopback; every process started here is stopped in the test's `after`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLoad, type Load } from '../helpers/load.js';
import { debianBinary, freePort, killWithThisProcess } from '../helpers/procs.js';
import { deliveryRig, type DeliveryRig, type ReleaseDetail } from './harness.js';

interface Detail extends ReleaseDetail {
  measurements: (ReleaseDetail['measurements'][number] & { source: string; message: string | null; at: string })[];
  transitions: (ReleaseDetail['transitions'][number] & { at: string })[];
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

async function until<T>(what: () => string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
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
  throw new Error(`timed out waiting for ${what()}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Starts a binary whose stderr is kept (the last 4 kB) for error messages. */
function daemon(bin: string, args: string[]): { child: ChildProcess; log: () => string } {
  let log = '';
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  killWithThisProcess(child);
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-4000)));
  return { child, log: () => log };
}

async function body(url: string): Promise<string> {
  return (await (await fetch(url)).text()).trim();
}

// ---- Prometheus -------------------------------------------------------------------------------

const prometheus = debianBinary('/usr/bin/prometheus', 'prometheus');

/**
 * A canary judged only by Prometheus: the error ratio of the new version's traffic as the edge
 * counts it (ferry_edge_requests_total has code="1xx".."5xx" per route and version).
 *
 * The settings follow from Prometheus' scrape lag:
 *  - scrape_interval is 1s, so measuring every 1s (`interval`) is as often as new data can come;
 *  - rate() needs two samples inside its window: [5s] holds five scrapes, so one late scrape on a
 *    busy machine does not empty it (and $FERRY_INTERVAL, 1s, would hold at most one);
 *  - the new version's series appears once the edge routes to it; the ratio has a value only
 *    once two scrapes of it are stored (1-3 s later, more on a busy machine). Until then the query
 *    returns no series (or NaN: no traffic yet), which the analysis counts as inconclusive:
 *    `inconclusive_limit: 10` leaves ten seconds for that. We do not write `or vector(0)`: it would turn "Prometheus has no data at all" (a wrong
 *    address, a scrape that fails) into a pass.
 *  - failure_limit 1: one bad evaluation is tolerated, the second rolls back (~1 s later).
 */
const PROM_CANARY = (address: string, steps: string) => `
target: { type: process, command: node app.mjs, instances: 1 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy:
  canary:
    steps: ${steps}
    analysis:
      interval: 1s
      failure_limit: 1
      inconclusive_limit: 10
      metrics:
        - name: edge-errors
          source: prometheus
          address: ${address}
          query: 'sum(rate(ferry_edge_requests_total{version="$FERRY_VERSION",code=~"5.."}[5s])) / sum(rate(ferry_edge_requests_total{version="$FERRY_VERSION"}[5s]))'
          condition: "result < 0.05"
`;

test(
  'a real Prometheus scraping the edge: a healthy canary passes on its metric, a failing one is rolled back by it',
  { skip: prometheus ? false : 'prometheus is not installed and cannot be installed here (apt-get install prometheus)', timeout: 300_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-obs-prom-'));
    let rig: DeliveryRig | undefined;
    let prom: ReturnType<typeof daemon> | undefined;
    let load: Load | undefined;
    t.after(async () => {
      await load?.stop();
      await stop(prom?.child);
      await rig?.close();
      await rm(dir, { recursive: true, force: true });
    });
    const promPort = await freePort();
    const address = `http://127.0.0.1:${promPort}`;
    rig = await deliveryRig();

    // The first release starts the edge (and takes all the traffic: no analysis).
    const first = await rig.release(PROM_CANARY(address, '[{ weight: 50 }, { analysis: 10s }]'), { VERSION: 'v1' });
    assert.equal(first.pipeline!.status, 'success', JSON.stringify(first.pipeline));
    const edge = new URL(rig.edgeAdminUrl());
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: ferry-edge
    static_configs:
      - targets: ['${edge.host}']
`,
    );
    prom = daemon(prometheus!, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn']);
    const query = async (q: string) => {
      const r = (await (await fetch(`${address}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { value: [number, string] }[] } };
      return r.data.result.map((x) => Number(x.value[1]));
    };
    await until(
      () => `Prometheus to scrape the edge at ${edge.host} (log: ${prom!.log()})`,
      async () => ((await query('up{job="ferry-edge"}'))[0] === 1 && (await query('sum(ferry_edge_requests_total{version="production#1"})')).length === 1 ? true : undefined),
    );

    // A healthy canary: Prometheus' error ratio of production#2 is 0 once it has data.
    const url = await rig.routerUrl();
    load = startLoad({ url, rps: 40, concurrency: 4 });
    const healthy = await rig.release(PROM_CANARY(address, '[{ weight: 50 }, { analysis: 10s }]'), { VERSION: 'v2' });
    let r = await load.stop();
    load = undefined;
    assert.equal(healthy.pipeline!.status, 'success', JSON.stringify(healthy.pipeline));
    assert.equal(r.failed, 0, JSON.stringify(r.errors));
    assert.ok((r.byVersion['production#2'] ?? 0) > 0, JSON.stringify(r.byVersion));
    let s = await rig.status();
    assert.equal(s.stable?.number, 2);
    const good = (await rig.releaseDetail(s.stable!.id)) as Detail;
    const measured = good.measurements.filter((m) => m.metric === 'edge-errors');
    const passed = measured.filter((m) => m.outcome === 'success');
    assert.ok(passed.length > 0, `no successful prometheus measurement: ${JSON.stringify(measured)}`);
    assert.ok(passed.every((m) => m.source === 'prometheus' && m.values.result === 0), JSON.stringify(passed));
    assert.equal(measured.filter((m) => m.outcome === 'failure').length, 0, JSON.stringify(measured));
    // What was inconclusive is only the scrape lag at the start: no series yet, or 0/0.
    for (const m of measured.filter((x) => x.outcome === 'inconclusive')) assert.match(m.message ?? '', /no data|NaN/, JSON.stringify(m));
    assert.equal(await body(url), 'hello from v2');

    // A canary whose every answer is a 500: rolled back on the prometheus metric's failures.
    load = startLoad({ url, rps: 40, concurrency: 4 });
    const failing = await rig.release(PROM_CANARY(address, '[{ weight: 50 }, { analysis: 60s }]'), { VERSION: 'v3', FAIL_RATE: '1' });
    r = await load.stop();
    load = undefined;
    assert.equal(failing.pipeline!.status, 'failed', JSON.stringify(failing.pipeline));
    assert.equal(failing.pipeline!.jobs[0]!.failureReason, 'deployment_failure');
    s = await rig.status();
    assert.equal(s.stable?.number, 2, 'v2 still serves');
    const bad = s.releases.find((x) => x.number === 3)!;
    assert.equal(bad.status, 'rolled_back', JSON.stringify(bad));
    assert.match(bad.reason ?? '', /analysis failed: edge-errors \(result < 0\.05\) failed 2 times, limit 1/);
    const detail = (await rig.releaseDetail(bad.id)) as Detail;
    const failures = detail.measurements.filter((m) => m.metric === 'edge-errors' && m.outcome === 'failure');
    assert.equal(failures.length, 2, JSON.stringify(detail.measurements));
    for (const m of failures) {
      assert.equal(m.source, 'prometheus');
      // Every answer of production#3 was a 500: the ratio is 1 (a rate, so allow rounding).
      assert.ok((m.values.result ?? 0) > 0.9, JSON.stringify(m));
    }
    const last = detail.transitions[detail.transitions.length - 1]!;
    assert.equal(last.to, 'rolled_back');
    assert.equal(last.actor, 'controller');
    // Users saw none of the canary's failures (the router answered them from stable), while
    // Prometheus, scraping the edge, saw every one.
    assert.equal(r.failed, 0, JSON.stringify(r.errors));
    for (let i = 0; i < 10; i++) assert.equal(await body(url), 'hello from v2');
    assert.equal(s.instances.filter((i) => i.release === bad.id).length, 0, 'the canary was stopped');
  },
);

// ---- Alertmanager -----------------------------------------------------------------------------

const alertmanager = debianBinary('/usr/bin/prometheus-alertmanager', 'prometheus-alertmanager');

const PAUSED_CANARY = `
target: { type: process, command: node app.mjs, instances: 1 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy:
  canary:
    steps: [{ weight: 10 }, { pause: {} }]
`;

test(
  'a real Alertmanager delivers a firing alert naming the environment to the server, which rolls the paused canary back',
  { skip: alertmanager ? false : 'prometheus-alertmanager is not installed and cannot be installed here (apt-get install prometheus-alertmanager)', timeout: 300_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-obs-am-'));
    let rig: DeliveryRig | undefined;
    let am: ReturnType<typeof daemon> | undefined;
    t.after(async () => {
      await stop(am?.child);
      await rig?.close();
      await rm(dir, { recursive: true, force: true });
    });
    rig = await deliveryRig();
    const first = await rig.release(PAUSED_CANARY, { VERSION: 'v1' });
    assert.equal(first.pipeline!.status, 'success', JSON.stringify(first.pipeline));

    // Alertmanager calls the webhook as a deployer (the least role the hook accepts), sends as
    // soon as an alert arrives (group_wait 0s) and not again for an hour.
    const deployer = await rig.userToken('deployer', 'alertmanager');
    await writeFile(
      join(dir, 'alertmanager.yml'),
      `route:
  receiver: ferry
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ferry
    webhook_configs:
      - url: ${rig.server.url}/api/hooks/alertmanager
        send_resolved: false
        http_config:
          authorization:
            credentials: ${deployer}
`,
    );
    const port = await freePort();
    am = daemon(alertmanager!, [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn']);
    const api = `http://127.0.0.1:${port}/api/v2`;
    await until(() => `Alertmanager to start (log: ${am!.log()})`, async () => ((await fetch(`${api}/status`)).ok ? true : undefined));

    // The canary takes 10% and waits for a promotion that never comes.
    const { pipelineId } = await rig.release(PAUSED_CANARY, { VERSION: 'v2' }, { wait: false });
    const s = await rig.waitRelease((x) => x.active?.number === 2 && x.active.weight === 10);
    const canaryId = s.active!.id;
    const url = await rig.routerUrl();
    const bodies = await Promise.all(Array.from({ length: 60 }, () => body(url)));
    assert.ok(bodies.includes('hello from v2') && bodies.includes('hello from v1'), 'both versions serve while paused');

    const post = await fetch(`${api}/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ labels: { alertname: 'CanaryErrorBudgetBurn', ferry_environment: 'production', severity: 'page' }, annotations: { summary: 'error budget burning' }, startsAt: new Date().toISOString() }]),
    });
    assert.equal(post.status, 200, await post.text());

    const p = await rig.server.waitPipeline(pipelineId, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\nAlertmanager log: ${am!.log()}`);
    });
    assert.equal(p.status, 'failed', `${JSON.stringify(p)}\nAlertmanager log: ${am.log()}`);
    const detail = (await rig.releaseDetail(canaryId)) as Detail;
    assert.equal(detail.status, 'rolled_back', JSON.stringify(detail.transitions));
    assert.equal(detail.reason, 'alert firing: CanaryErrorBudgetBurn');
    const last = detail.transitions[detail.transitions.length - 1]!;
    assert.equal(last.to, 'rolled_back');
    assert.equal(last.actor, 'alertmanager');

    // All the traffic is on v1 again, and the canary's instance is gone.
    const after = await rig.status();
    assert.equal(after.stable?.number, 1);
    assert.equal(after.active, null);
    assert.equal(after.instances.filter((i) => i.release === canaryId).length, 0, JSON.stringify(after.instances));
    const load = startLoad({ url, rps: 50, concurrency: 4 });
    await new Promise((r) => setTimeout(r, 1000));
    const r = await load.stop();
    assert.equal(r.failed, 0, JSON.stringify(r));
    assert.deepEqual(Object.keys(r.byVersion), ['production#1'], JSON.stringify(r.byVersion));

    // Alertmanager saw its notification accepted (a 401/403 would count as failed).
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const sent = /alertmanager_notifications_total\{integration="webhook"\} (\d+)/.exec(metrics);
    const failed = /alertmanager_notifications_failed_total\{integration="webhook"\} (\d+)/.exec(metrics);
    assert.ok(Number(sent?.[1]) >= 1, metrics);
    assert.equal(Number(failed?.[1]), 0, am.log());
  },
);
