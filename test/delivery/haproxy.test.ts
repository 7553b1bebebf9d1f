// HAProxy as the traffic provider of a process target, against a real HAProxy (Debian's package)
// started here in the foreground with the minimal haproxy.cfg of docs/environments.md (its
// socket and ports swapped for temporary ones). The server's delivery controller drives it
// through the runtime API while load goes to HAProxy's frontend: a healthy canary loses no
// request, a failing one is rolled back by an error_rate computed from HAProxy's own figures.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { routerValues } from '../../src/delivery/analysis/router.js';
import type { EdgeClient } from '../../src/edge/client.js';
import type { InstanceStatus } from '../../src/edge/api.js';
import { HaproxyError, HaproxyRuntime, isDrain, isMaint, parsePrometheusFigures, parseServersState, parseStatCsv, type ServerState } from '../../src/delivery/targets/haproxy-runtime.js';
import { HaproxyTraffic, slotWeights } from '../../src/delivery/targets/haproxy.js';
import type { TargetContext } from '../../src/delivery/targets/types.js';
import { startLoad } from '../helpers/load.js';
import { fromRoot } from '../helpers/paths.js';
import { debianBinary, freePort, killWithThisProcess, waitFor } from '../helpers/procs.js';
import { deliveryRig, type DeliveryRig, type EnvStatusBody } from './harness.js';

/** The haproxy.cfg the docs tell teams to start from. */
function documentedConfig(): string {
  const doc = readFileSync(fromRoot('docs', 'environments.md'), 'utf8');
  const m = /```haproxy\n([\s\S]*?)```/.exec(doc);
  assert.ok(m, 'docs/environments.md has a ```haproxy block');
  return m[1]!;
}

test('slot weights share the traffic out by track, spread over each track', () => {
  assert.deepEqual(slotWeights(2, 0, null), { stable: 256, canary: 0 });
  // 25% to 2 canary slots, 75% to 2 stable ones: 37.5 vs 12.5 per slot.
  assert.deepEqual(slotWeights(2, 2, 25), { stable: 256, canary: 85 });
  assert.deepEqual(slotWeights(3, 1, 50), { stable: 85, canary: 256 });
  assert.deepEqual(slotWeights(2, 2, 0), { stable: 256, canary: 0 });
  assert.deepEqual(slotWeights(0, 2, 100), { stable: 0, canary: 256 });
  // A tiny share still gets some traffic.
  assert.deepEqual(slotWeights(8, 1, 1), { stable: 256, canary: 21 });
  assert.deepEqual(slotWeights(1, 1, 0.01), { stable: 256, canary: 1 });
});

test('the runtime API parsers read what HAProxy 2.6 writes', () => {
  const state = parseServersState(
    '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n' +
      '4 app 1 stable1 127.0.0.1 2 4 200 1 0 1 0 2 6 0 0 0 - 18101 - 0 0 - - 0\n4 app 2 stable2 127.0.0.1 0 5 1 1 1 1 0 0 14 0 0 0 - 1 - 0 0 - - 0\n4 app 3 canary1 127.0.0.1 2 12 64 1 0 15 3 4 6 0 0 0 - 18102 - 0 0 - - 0\n\n',
  );
  assert.deepEqual(
    state.map((s) => [s.name, s.port, s.opState, s.weight, isMaint(s)]),
    [
      ['stable1', 18101, 2, 200, false],
      ['stable2', 1, 0, 1, true],
      ['canary1', 18102, 2, 64, false],
    ],
  );
  const rows = parseStatCsv('# pxname,svname,qcur,qmax,scur,hrsp_5xx,\napp,stable1,0,0,3,7,\napp,BACKEND,0,0,3,7,\n');
  assert.deepEqual(rows[0], { pxname: 'app', svname: 'stable1', qcur: '0', qmax: '0', scur: '3', hrsp_5xx: '7' });
  const prom = parsePrometheusFigures(
    [
      '# TYPE haproxy_server_http_responses_total counter',
      'haproxy_server_http_responses_total{proxy="app",server="stable1",code="2xx"} 10',
      'haproxy_server_http_responses_total{proxy="app",server="stable1",code="5xx"} 2',
      'haproxy_server_http_responses_total{proxy="other",server="stable1",code="2xx"} 99',
      'haproxy_server_connection_errors_total{proxy="app",server="stable1"} 1',
      'haproxy_server_response_errors_total{proxy="app",server="stable1"} 1',
      'haproxy_server_current_sessions{proxy="app",server="stable1"} 4',
    ].join('\n'),
    'app',
  );
  assert.deepEqual(prom.get('stable1'), { responses: { '1xx': 0, '2xx': 10, '3xx': 0, '4xx': 0, '5xx': 2, other: 0 }, errors: 2, sessions: 4 });
});

const bin = debianBinary('/usr/sbin/haproxy', 'haproxy');

const ENV = (router: string, steps = '[{ weight: 25 }, { analysis: 3s }]') => `
target: { type: process, command: node app.mjs, instances: 2 }
health: { readiness: { path: /healthz, interval: 100ms } }
router: ${router}
strategy:
  canary:
    steps: ${steps}
    analysis:
      interval: 500ms
      failure_limit: 1
      metrics:
        - { name: errors, source: router, condition: "error_rate < 0.05", min_requests: 5 }
`;

describe('HAProxy as the traffic provider', { skip: bin ? false : 'haproxy is not installed and cannot be installed here (apt-get install haproxy)', timeout: 600_000 }, () => {
  let rig: DeliveryRig;
  let haproxy: ChildProcess | undefined;
  let dir: string;
  let api: HaproxyRuntime;
  let front: string;
  let router: string;
  let statsUrl: string;
  let socket: string;
  let unitFront: number;

  const get = async (): Promise<string> => (await (await fetch(front)).text()).trim();
  const slots = async (): Promise<ServerState[]> => (await api.serversState('app')).filter((s) => /^(stable|canary)/.test(s.name));
  /** The edge's port of each instance of release `number`. */
  const portsOf = async (number: number): Promise<number[]> => {
    const s = await rig.status();
    const rel = s.releases.find((r) => r.number === number)!;
    return (s.instances as (EnvStatusBody['instances'][number] & { port: number })[])
      .filter((i) => i.release === rel.id && i.state === 'ready')
      .map((i) => i.port)
      .sort((a, b) => a - b);
  };
  /** Ports of the slots taking new requests (`ready`), or of those not free (`held`: ready or draining). */
  const serving = (list: ServerState[], prefix: string) =>
    list
      .filter((s) => s.name.startsWith(prefix) && !isMaint(s) && !isDrain(s))
      .map((s) => s.port)
      .sort((a, b) => a - b);
  const held = (list: ServerState[], prefix: string) =>
    list
      .filter((s) => s.name.startsWith(prefix) && !isMaint(s))
      .map((s) => s.port)
      .sort((a, b) => a - b);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-haproxy-'));
    const [web, stats] = [await freePort(), await freePort()];
    unitFront = await freePort();
    socket = join(dir, 'admin.sock');
    // The documented file, and a second frontend and backend for the tests that drive HAProxy
    // without a release.
    const cfg =
      documentedConfig()
        .replaceAll('/run/haproxy/admin.sock', socket)
        .replaceAll('/var/lib/haproxy/server-state', join(dir, 'server-state'))
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${web}`)
        .replaceAll('127.0.0.1:8404', `127.0.0.1:${stats}`) +
      `\nfrontend unit\n    bind 127.0.0.1:${unitFront}\n    default_backend unit\n\nbackend unit\n    option httpchk GET /healthz\n` +
      '    server-template stable 1-2 127.0.0.1:1 disabled check\n    server-template canary 1-1 127.0.0.1:1 disabled check\n';
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    const log = openSync(join(dir, 'haproxy.log'), 'a');
    haproxy = spawn(bin!, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', log, log] });
    killWithThisProcess(haproxy);
    api = new HaproxyRuntime(socket);
    await waitFor(
      async () => {
        if (haproxy!.exitCode !== null) throw new Error(`haproxy exited ${haproxy!.exitCode}: ${readFileSync(join(dir, 'haproxy.log'), 'utf8')}`);
        return api.command('show info').then(
          () => true,
          () => false,
        );
      },
      15_000,
      "HAProxy's runtime API",
    );
    front = `http://127.0.0.1:${web}/`;
    statsUrl = `http://127.0.0.1:${stats}/metrics`;
    router = `{ provider: haproxy, socket: ${socket}, backend: app, stats_url: "${statsUrl}", url: "http://127.0.0.1:${web}" }`;
    rig = await deliveryRig();
  });

  after(async () => {
    await rig?.close();
    if (haproxy && haproxy.exitCode === null && haproxy.signalCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the first release fills stable slots and takes all the traffic', async () => {
    const { pipeline } = await rig.release(ENV(router), { VERSION: 'v1' });
    assert.equal(pipeline!.status, 'success', JSON.stringify(pipeline));
    assert.equal(await get(), 'hello from v1');
    const list = await slots();
    assert.deepEqual(serving(list, 'stable'), await portsOf(1));
    assert.deepEqual(serving(list, 'canary'), []);
  });

  test('a healthy canary moves through HAProxy under load with zero failed requests', async () => {
    const load = startLoad({ url: front, rps: 100, concurrency: 8 });
    const { pipelineId } = await rig.release(ENV(router), { VERSION: 'v2' }, { wait: false });
    // At 25%, the canary's instances hold the canary slots, beside v1's in the stable ones.
    await rig.waitRelease((s) => s.active?.number === 2 && s.active.weight === 25, 60_000);
    const during = await slots();
    assert.deepEqual(serving(during, 'canary'), await portsOf(2));
    assert.deepEqual(serving(during, 'stable'), await portsOf(1));
    const w = (prefix: string) => during.find((s) => s.name.startsWith(prefix) && !isMaint(s))!.weight;
    assert.deepEqual({ stable: w('stable'), canary: w('canary') }, slotWeights(2, 2, 25));
    const pipeline = await rig.server.waitPipeline(pipelineId, 120_000);
    const r = await load.stop();
    assert.equal(pipeline.status, 'success', JSON.stringify(pipeline));
    assert.equal(r.failed, 0, `failed requests: ${JSON.stringify(r.failures.slice(0, 5))} ${JSON.stringify(r.errors)}`);
    // HAProxy adds no X-Ferry-Version: the app's own header tells the versions apart.
    assert.ok((r.byVersion.v1 ?? 0) > 0 && (r.byVersion.v2 ?? 0) > 0, JSON.stringify(r.byVersion));
    const s = await rig.status();
    assert.equal(s.stable?.number, 2);
    const detail = await rig.releaseDetail(s.stable!.id);
    const measured = detail.measurements.filter((m) => m.metric === 'errors' && m.outcome === 'success');
    assert.ok(measured.length > 0, JSON.stringify(detail.measurements));
    assert.ok(measured.every((m) => m.values.error_rate === 0 && (m.values.requests ?? 0) >= 5), JSON.stringify(measured));
    // v2 now holds stable slots; v1's and the canary slots are free again.
    const list = await slots();
    assert.deepEqual(serving(list, 'stable'), await portsOf(2));
    assert.deepEqual(serving(list, 'canary'), []);
    await waitFor(async () => held(await slots(), 'canary').length === 0, 15_000, 'the canary slots to be freed');
    assert.deepEqual(held(await slots(), 'stable'), await portsOf(2));
    assert.equal(await get(), 'hello from v2');
    // Both of HAProxy's sources say the same of every slot.
    const fromSocket = await api.serverFigures('app');
    const fromExporter = parsePrometheusFigures(await (await fetch(statsUrl)).text(), 'app');
    for (const name of ['stable1', 'canary1']) assert.deepEqual(fromExporter.get(name)!.responses, fromSocket.get(name)!.responses, name);
  });

  test("a canary answering 5xx is rolled back on HAProxy's figures and traffic returns to stable", async () => {
    const load = startLoad({ url: front, rps: 100, concurrency: 8 });
    const { pipeline } = await rig.release(ENV(router), { VERSION: 'v3', FAIL_RATE: '1' });
    const r = await load.stop();
    assert.equal(pipeline!.status, 'failed');
    assert.equal(pipeline!.jobs[0]!.failureReason, 'deployment_failure');
    const s = await rig.status();
    assert.equal(s.stable?.number, 2, 'v2 still serves');
    const bad = s.releases.find((x) => x.number === 3)!;
    assert.equal(bad.status, 'rolled_back');
    assert.match(bad.reason ?? '', /errors/);
    const detail = await rig.releaseDetail(bad.id);
    assert.ok(
      detail.measurements.some((m) => m.metric === 'errors' && m.outcome === 'failure' && (m.values.error_rate ?? 0) > 0.5),
      JSON.stringify(detail.measurements),
    );
    // Only the canary's share failed.
    assert.ok(r.failed > 0 && r.failed < r.sent * 0.5, JSON.stringify({ sent: r.sent, failed: r.failed, byVersion: r.byVersion }));
    assert.equal(s.instances.filter((i) => i.release === bad.id).length, 0, 'the canary was stopped');
    // The canary's slots were drained, then freed before its instances stopped.
    const list = await slots();
    assert.deepEqual(serving(list, 'stable'), await portsOf(2));
    assert.deepEqual(held(list, 'canary'), []);
    // Every answer since is stable's.
    const again = startLoad({ url: front, rps: 100, concurrency: 4 });
    await new Promise((res) => setTimeout(res, 1500));
    const after = await again.stop();
    assert.equal(after.failed, 0, JSON.stringify(after.failures.slice(0, 5)));
    assert.deepEqual(Object.keys(after.byVersion), ['v2']);
  });

  test('rolling and blue-green releases move through HAProxy with zero failed requests', async () => {
    const rolling = startLoad({ url: front, rps: 60, concurrency: 4 });
    const r1 = await rig.release(
      `
target: { type: process, command: node app.mjs, instances: 2 }
health: { readiness: { path: /healthz, interval: 100ms } }
router: ${router}
strategy: { rolling: { max_surge: 1 } }
`,
      { VERSION: 'v4' },
    );
    const a = await rolling.stop();
    assert.equal(r1.pipeline!.status, 'success', JSON.stringify(r1.pipeline));
    assert.equal(a.failed, 0, JSON.stringify(a.failures.slice(0, 5)));
    assert.ok((a.byVersion.v4 ?? 0) > 0, JSON.stringify(a.byVersion));
    assert.deepEqual(serving(await slots(), 'stable'), await portsOf(4));
    await waitFor(async () => held(await slots(), 'canary').length === 0, 15_000, 'the canary slots to be freed');

    // Blue-green: smoke checks on the edge's preview, then all of HAProxy's traffic at once.
    const bg = startLoad({ url: front, rps: 60, concurrency: 4 });
    const r2 = await rig.release(
      `
target: { type: process, command: node app.mjs, instances: 2 }
health: { readiness: { path: /healthz, interval: 100ms } }
router: ${router}
strategy: { blue-green: { smoke: [{ url: /, body: "hello from v5" }], keep_warm: 1s } }
`,
      { VERSION: 'v5' },
    );
    const b = await bg.stop();
    assert.equal(r2.pipeline!.status, 'success', JSON.stringify(r2.pipeline));
    assert.equal(b.failed, 0, JSON.stringify(b.failures.slice(0, 5)));
    assert.equal(await get(), 'hello from v5');
    assert.deepEqual(serving(await slots(), 'stable'), await portsOf(5));
    // Blue is retired once keep_warm has passed; HAProxy no longer knew it.
    await rig.waitRelease((x: EnvStatusBody) => x.instances.every((i) => i.release === x.stable!.id), 20_000);
    await waitFor(async () => held(await slots(), 'stable').length === 2, 15_000, "blue's slots to be freed");
    assert.deepEqual(held(await slots(), 'stable'), await portsOf(5));
  });

  // ---- HaproxyTraffic on its own, against backend `unit`: no edge, no release ------------------

  /** Small servers standing for instances (`/slow` waits until releaseHeld()), and an edge stub. */
  async function fakeInstances(ids: Record<string, number>) {
    const servers: Server[] = [];
    const ports = new Map<string, number>();
    const held: (() => void)[] = [];
    for (const [id, status] of Object.entries(ids)) {
      const srv = createServer((req, res) => {
        const answer = () => {
          res.writeHead(req.url === '/healthz' ? 200 : status, { 'x-app-version': id });
          res.end(id);
        };
        if (req.url === '/slow') held.push(answer);
        else answer();
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      servers.push(srv);
      ports.set(id, (srv.address() as { port: number }).port);
    }
    const edge = { listInstances: async () => [...ports].map(([id, port]) => ({ id, port }) as InstanceStatus) } as unknown as EdgeClient;
    const close = async () => {
      for (const f of held.splice(0)) f();
      for (const srv of servers) {
        srv.closeAllConnections();
        await new Promise((r) => srv.close(r));
      }
    };
    return { ports, edge, close, releaseHeld: () => held.splice(0).forEach((f) => f()), heldCount: () => held.length };
  }

  function unitContext(): TargetContext {
    const yaml = `ship: { deploy: { environment: unit } }\nenvironments:\n  unit:\n    target: { command: x }\n    router: { provider: haproxy, socket: ${socket}, backend: unit }\n`;
    const { config, issues } = parseConfig(yaml, 'ferry.yml');
    assert.deepEqual(issues, []);
    return { home: dir, env: config!.environments.unit!, projectId: 7, variables: async () => ({}), log: () => undefined };
  }

  function hit(path = '/'): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: unitFront, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('a restarted controller finds which slot holds which version; figures from show stat', async (t) => {
    const apps = await fakeInstances({ 'p7-unit-r1-1': 200, 'p7-unit-r1-2': 200, 'p7-unit-r2-1': 500 });
    t.after(apps.close);
    const ctx = unitContext();
    const first = new HaproxyTraffic(apps.edge, ctx);
    await first.route({ stable: { version: 'unit#1', instances: ['p7-unit-r1-1', 'p7-unit-r1-2'] }, canary: { version: 'unit#2', instances: ['p7-unit-r2-1'], weight: 50 } });
    for (let i = 0; i < 10; i++) await hit();
    // A new controller: nothing in memory; the slots' ports tell it the versions.
    const again = new HaproxyTraffic(apps.edge, ctx);
    const m0 = await again.metrics();
    assert.ok(m0);
    assert.deepEqual(m0.versions, {});
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push(await hit());
    const m1 = (await again.metrics())!;
    const v1 = m1.versions['unit#1']!;
    const v2 = m1.versions['unit#2']!;
    assert.equal(v1.requests + v2.requests, 40);
    assert.equal(v2.requests, statuses.filter((s) => s === 500).length);
    assert.equal(v2.statusClasses['5xx'], v2.requests);
    assert.equal(v1.statusClasses['2xx'], v1.requests);
    assert.ok(v1.requests > 0 && v2.requests > 0, JSON.stringify(m1.versions));
    const values = routerValues(m0, m1, 'unit#2', 'unit#1');
    assert.equal(values.error_rate, 1);
    assert.equal(values.stable_error_rate, 0);
    // No latency histogram from HAProxy: the quantiles have no value.
    assert.equal(values.p99_ms, undefined);
    assert.equal(values.stable_p50_ms, undefined);

    // One canary slot only: a second canary instance has nowhere to go.
    await assert.rejects(
      again.route({ stable: { version: 'unit#1', instances: ['p7-unit-r1-1'] }, canary: { version: 'unit#2', instances: ['p7-unit-r2-1', 'p7-unit-r1-2'], weight: 10 } }),
      /no free `canary` slot for p7-unit-r1-2 .*server-template canary 1-8/,
    );
    await assert.rejects(api.command('set server unit/nope weight 1'), (err: Error) => err instanceof HaproxyError && /No such server/.test(err.message));
    await again.route({ stable: null });
  });

  test('a retired instance drains: its request in flight finishes before its slot goes to maintenance', async (t) => {
    const apps = await fakeInstances({ 'p7-unit-r3-1': 200, 'p7-unit-r3-2': 200 });
    t.after(apps.close);
    const traffic = new HaproxyTraffic(apps.edge, unitContext(), { drainTimeoutMs: 30_000 });
    await traffic.route({ stable: { version: 'unit#3', instances: ['p7-unit-r3-1'] } });
    const slot = async (id: string) => (await api.serversState('unit')).find((s) => s.port === apps.ports.get(id) && !isMaint(s));
    const order: string[] = [];
    const slow = hit('/slow').then((status) => {
      order.push(`answered ${status}`);
    });
    await waitFor(() => apps.heldCount() === 1, 10_000, 'the slow request to arrive');
    // Traffic moves to the other instance; the first one's slot drains with a session on it.
    await traffic.route({ stable: { version: 'unit#3', instances: ['p7-unit-r3-2'] } });
    assert.ok(isDrain((await slot('p7-unit-r3-1'))!), 'draining while its request is in flight');
    const released = traffic.release(['p7-unit-r3-1']).then(() => {
      order.push('released');
    });
    assert.equal(await hit(), 200, 'the other instance answers meanwhile');
    assert.deepEqual(order, [], 'release() waits for the request in flight');
    apps.releaseHeld();
    await Promise.all([slow, released]);
    assert.deepEqual(order, ['answered 200', 'released']);
    assert.equal(await slot('p7-unit-r3-1'), undefined, 'its slot is free again');
    await traffic.route({ stable: null });
  });
});
