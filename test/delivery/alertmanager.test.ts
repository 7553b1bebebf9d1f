// Alertmanager's webhook: the parser and the environment filter on a payload a real
// Alertmanager sent (test/fixtures/alertmanager/), and end to end against a real Alertmanager
// (Debian's package) routing to a webhook receiver in this test: firing, then resolved.
// FERRY_UPDATE_FIXTURES=1 writes the payload received from the live Alertmanager as the fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertNamesEnvironment, alertsForEnvironment, AlertmanagerPayloadError, parseAlertmanagerWebhook } from '../../src/delivery/alertmanager.js';
import { fixture } from '../helpers/paths.js';
import { debianBinary, freePort, killWithThisProcess } from '../helpers/procs.js';

const FIXTURE = fixture('alertmanager', 'webhook-firing.json');

test('the fixture: a firing group of two alerts, one for production of project 1', () => {
  const raw = JSON.parse(readFileSync(FIXTURE, 'utf8')) as unknown;
  const p = parseAlertmanagerWebhook(raw);
  assert.equal(p.status, 'firing');
  assert.equal(p.receiver, 'ferry');
  assert.equal(p.truncatedAlerts, 0);
  assert.equal(p.alerts.length, 2);
  for (const a of p.alerts) {
    assert.equal(a.status, 'firing');
    assert.match(a.fingerprint, /^[0-9a-f]{16}$/);
    assert.ok(a.startsAt instanceof Date && !Number.isNaN(a.startsAt.getTime()));
    // Alertmanager sends Go's zero time for "no end known".
    assert.equal(a.endsAt, null);
  }
  const prod = alertsForEnvironment(p, { name: 'production', project: 1 });
  assert.equal(prod.length, 1);
  assert.equal(prod[0]!.labels.alertname, 'FerryHighErrorRate');
  assert.equal(prod[0]!.annotations.summary, 'error rate above 5%');
  assert.equal(prod[0]!.generatorURL, 'http://127.0.0.1:9090/graph?g0.expr=up');
  // ferry_project must match when present: project 2 has no such alert; by name works too.
  assert.equal(alertsForEnvironment(p, { name: 'production', project: 2 }).length, 0);
  assert.equal(alertsForEnvironment(p, { name: 'production', project: [7, 'shop', 1] }).length, 1);
  assert.equal(alertsForEnvironment(p, { name: 'production' }).length, 1);
  // The other alert names staging by its `env` label.
  assert.equal(alertsForEnvironment(p, { name: 'staging', project: 1 }).length, 1);
  assert.equal(alertsForEnvironment(p, { name: 'dev' }).length, 0);
});

test('which labels name an environment', () => {
  const env = { name: 'production', project: '3' };
  assert.equal(alertNamesEnvironment({ ferry_environment: 'production' }, env), true);
  assert.equal(alertNamesEnvironment({ environment: 'production' }, env), true);
  assert.equal(alertNamesEnvironment({ env: 'production' }, env), true);
  // ferry_environment decides when present.
  assert.equal(alertNamesEnvironment({ ferry_environment: 'staging', environment: 'production' }, env), false);
  assert.equal(alertNamesEnvironment({ ferry_environment: 'production', ferry_project: '3' }, env), true);
  assert.equal(alertNamesEnvironment({ ferry_environment: 'production', ferry_project: '4' }, env), false);
  assert.equal(alertNamesEnvironment({ alertname: 'x' }, env), false);
  assert.equal(alertNamesEnvironment({ environment: 'Production' }, env), false);
});

test('payloads that are not Alertmanager webhooks are refused with the first problem', () => {
  const good = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  const alert = (good.alerts as Record<string, unknown>[])[0]!;
  const bad = (patch: Record<string, unknown>, alertPatch?: Record<string, unknown>) =>
    () => parseAlertmanagerWebhook({ ...good, ...patch, ...(alertPatch ? { alerts: [{ ...alert, ...alertPatch }] } : {}) });
  assert.throws(() => parseAlertmanagerWebhook(null), AlertmanagerPayloadError);
  assert.throws(() => parseAlertmanagerWebhook([]), /the body must be a JSON object/);
  assert.throws(bad({ version: '3' }), /version must be "4", got "3"/);
  assert.throws(bad({ version: 4 }), /version must be "4"/);
  assert.throws(bad({ alerts: {} }), /alerts must be an array/);
  assert.throws(bad({ status: 'burning' }), /^AlertmanagerPayloadError: not an Alertmanager webhook: status must be "firing" or "resolved"/);
  assert.throws(bad({ truncatedAlerts: -1 }), /truncatedAlerts/);
  assert.throws(bad({}, { status: 'pending' }), /alerts\[0\]\.status/);
  assert.throws(bad({}, { labels: { a: 1 } }), /alerts\[0\]\.labels\.a must be a string/);
  assert.throws(bad({}, { labels: undefined }), /alerts\[0\]\.labels is missing/);
  assert.throws(bad({}, { startsAt: 'yesterday' }), /alerts\[0\]\.startsAt `yesterday` is not an RFC 3339 time/);
  assert.throws(bad({}, { fingerprint: 12 }), /alerts\[0\]\.fingerprint/);
  // Optional parts may be missing.
  const minimal = parseAlertmanagerWebhook({ version: '4', status: 'resolved', alerts: [{ status: 'resolved', labels: {}, startsAt: '2026-01-01T00:00:00Z', endsAt: '2026-01-01T00:05:00Z', fingerprint: 'ab' }] });
  assert.equal(minimal.alerts[0]!.endsAt?.toISOString(), '2026-01-01T00:05:00.000Z');
  assert.deepEqual(minimal.alerts[0]!.annotations, {});
  assert.deepEqual(alertsForEnvironment(minimal, { name: 'x' }), []);
});

// ---------------------------------------------------------------------------------------------



async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

const bin = debianBinary('/usr/bin/prometheus-alertmanager', 'prometheus-alertmanager');

test(
  'a real Alertmanager: firing alerts reach the webhook, parse, and filter by environment; then resolve',
  { skip: bin ? false : 'prometheus-alertmanager is not installed and cannot be installed here (apt-get install prometheus-alertmanager)', timeout: 120_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-am-'));
    const received: { raw: string; body: unknown }[] = [];
    const hook: Server = createServer((req: IncomingMessage, res) => {
      let raw = '';
      req.setEncoding('utf8').on('data', (s: string) => (raw += s));
      req.on('end', () => {
        if (req.url === '/hook' && req.method === 'POST') received.push({ raw, body: JSON.parse(raw) });
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    let am: ChildProcess | undefined;
    t.after(async () => {
      if (am && am.exitCode === null && am.signalCode === null) {
        const exited = new Promise((r) => am!.once('exit', r));
        am.kill('SIGTERM');
        const k = setTimeout(() => am!.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(k);
      }
      hook.closeAllConnections();
      hook.close();
      await rm(dir, { recursive: true, force: true });
    });

    const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
    await writeFile(
      join(dir, 'alertmanager.yml'),
      `route:
  receiver: ferry
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ferry
    webhook_configs:
      - url: ${hookUrl}
        send_resolved: true
`,
    );
    const port = await freePort();
    let log = '';
    am = spawn(
      bin!,
      [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    killWithThisProcess(am);
    am.stderr!.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-4000)));
    const api = `http://127.0.0.1:${port}/api/v2`;
    await until(`Alertmanager to start (log: ${log})`, async () => ((await fetch(`${api}/status`)).ok ? true : undefined));

    const startsAt = new Date(Date.now() - 60_000).toISOString();
    const alerts = [
      {
        labels: { alertname: 'FerryHighErrorRate', ferry_environment: 'production', ferry_project: '1', severity: 'page' },
        annotations: { summary: 'error rate above 5%' },
        startsAt,
        generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=up',
      },
      { labels: { alertname: 'FerryHighErrorRate', env: 'staging', ferry_project: '1', severity: 'ticket' }, annotations: { summary: 'error rate above 5%' }, startsAt },
    ];
    const post = await fetch(`${api}/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
    assert.equal(post.status, 200, await post.text());

    // Alertmanager may flush the group before it has taken in the second alert (a busy machine):
    // its next notification, a group_interval later, carries both.
    const firing = await until('a firing webhook with both alerts', () =>
      received.find((r) => (r.body as { status: string; alerts: unknown[] }).status === 'firing' && (r.body as { alerts: unknown[] }).alerts.length === 2),
    );
    if (process.env.FERRY_UPDATE_FIXTURES === '1') await writeFile(FIXTURE, firing.raw.endsWith('\n') ? firing.raw : `${firing.raw}\n`);
    const p = parseAlertmanagerWebhook(firing.body);
    assert.equal(p.receiver, 'ferry');
    assert.deepEqual(p.groupLabels, { alertname: 'FerryHighErrorRate' });
    assert.equal(p.alerts.length, 2, firing.raw);
    assert.equal(p.alerts.every((a) => a.status === 'firing' && a.startsAt.toISOString() === startsAt && a.endsAt === null), true);
    const prod = alertsForEnvironment(p, { name: 'production', project: 1 });
    assert.deepEqual(prod.map((a) => a.labels.severity), ['page']);
    assert.deepEqual(alertsForEnvironment(p, { name: 'staging', project: [1] }).map((a) => a.labels.severity), ['ticket']);
    assert.equal(alertsForEnvironment(p, { name: 'production', project: 2 }).length, 0);

    // Resolve the production alert: the next notification carries it as resolved, and it no
    // longer counts against production.
    const resolvedAt = new Date(Date.now() - 1000).toISOString();
    const r2 = await fetch(`${api}/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ ...alerts[0], endsAt: resolvedAt }]) });
    assert.equal(r2.status, 200);
    const next = await until('a notification with the production alert resolved', () =>
      received
        .map((r) => parseAlertmanagerWebhook(r.body))
        .find((x) => x.alerts.some((a) => a.status === 'resolved' && a.labels.ferry_environment === 'production')),
    );
    const resolved = next.alerts.find((a) => a.labels.ferry_environment === 'production')!;
    assert.equal(resolved.endsAt?.toISOString(), resolvedAt);
    assert.equal(resolved.fingerprint, prod[0]!.fingerprint);
    assert.deepEqual(alertsForEnvironment(next, { name: 'production', project: 1 }), []);
    assert.equal(alertsForEnvironment(next, { name: 'staging', project: 1 }).length, 1);
  },
);
