// Remote runners on hosts of their own: each runner runs in a network namespace this test makes
// (test/helpers/netns.ts) and reaches the server only over a virtual link, never over this
// machine's loopback. Two such runners share jobs by their tags; and a runner cut off from the
// network mid-job loses its lease, the job is retried on the other host, and when the link comes
// back the cut-off runner stops its job and reports nothing (the attempt number fences it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRepo } from '../helpers/repo.js';
import { createTestNetwork, netnsUnavailable, type TestHost, type TestNetwork } from '../helpers/netns.js';
import { processesWith, stopAll, waitFor } from '../helpers/procs.js';
import { testServer, type TestServer } from './harness.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));
const skip = netnsUnavailable();

function runnerOn(net: TestNetwork, host: TestHost, server: TestServer, token: string, tags: string[]): ChildProcess {
  // The server's URL on the bridge: the only way from the namespace to this machine.
  const url = new URL(server.url);
  url.hostname = net.address;
  const args = [MAIN, 'runner', '--server', url.toString(), '--token', token, '-j', '1', '--tags', tags.join(','), '--work-dir', mkdtempSync(join(tmpdir(), 'ferry-runner-'))];
  const child = net.spawnIn(host, process.execPath, args, { env: { ...process.env, RUNNER_HOST: host.address }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  return child;
}

/** A server listening on the test network's bridge, a network of `hosts` hosts, cleaned up after. */
async function withNetwork(hosts: number, serverOpts: Parameters<typeof testServer>[0], fn: (net: TestNetwork, server: TestServer, children: ChildProcess[]) => Promise<void>): Promise<void> {
  const net = createTestNetwork(hosts);
  const children: ChildProcess[] = [];
  let server: TestServer | undefined;
  try {
    server = await testServer({ runner: false, ...serverOpts, host: net.address });
    await fn(net, server, children);
  } finally {
    await stopAll(children);
    await server?.close();
    net.destroy();
  }
}

test('runners on two hosts of their own take the jobs their tags match, over the network', { skip, timeout: 120_000 }, async () => {
  await withNetwork(2, {}, async (net, server, children) => {
    const [a, b] = net.hosts as [TestHost, TestHost];
    const ta = await server.call<{ token: string }>('POST', '/api/runners', { name: 'host-a' });
    const tb = await server.call<{ token: string }>('POST', '/api/runners', { name: 'host-b' });
    children.push(runnerOn(net, a, server, ta.body.token, ['alpha']), runnerOn(net, b, server, tb.body.token, ['beta']));
    // Each job names the network links it sees: its host's, and no other.
    const job = (name: string, tag: string) => `${name}: { tags: [${tag}], script: 'echo "host=$RUNNER_HOST links=$(ls /sys/class/net | tr "\\n" " ")"' }`;
    const repo = makeRepo({ 'ferry.yml': [job('a1', 'alpha'), job('a2', 'alpha'), job('b1', 'beta'), job('b2', 'beta')].join('\n') + '\n' });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    const p = await server.waitPipeline(started.body.pipelineId, 90_000);
    assert.equal(p.status, 'success', JSON.stringify(p.jobs));
    for (const j of p.jobs) {
      const host = j.name.startsWith('a') ? a : b;
      const other = host === a ? b : a;
      const log = (await server.call<string>('GET', `/api/jobs/${j.id}/log`)).body;
      assert.match(log, new RegExp(`host=${host.address.replace(/\./g, '\\.')} links=.*\\b${host.link}\\b`), `${j.name} ran on ${host.namespace}`);
      assert.doesNotMatch(log, new RegExp(`\\b${other.link}\\b`), `${j.name} saw only its own host's links`);
    }
    const runners = (await server.call<{ name: string; lastSeenAt: string | null }[]>('GET', '/api/runners')).body;
    assert.deepEqual(runners.map((r) => r.name).sort(), ['host-a', 'host-b']);
    assert.ok(runners.every((r) => r.lastSeenAt), 'both were seen');
  });
});

test('a runner cut off mid-job: the job is retried on the other host, and the cut-off runner reports nothing', { skip, timeout: 180_000 }, async () => {
  await withNetwork(2, { leaseMs: 2000 }, async (net, server, children) => {
    const [a, b] = net.hosts as [TestHost, TestHost];
    const marker = `ferry-cut-off-${randomUUID()}`;
    const ta = await server.call<{ token: string }>('POST', '/api/runners', { name: 'cut-off' });
    const tb = await server.call<{ token: string }>('POST', '/api/runners', { name: 'still-connected' });
    children.push(runnerOn(net, a, server, ta.body.token, ['shared']));
    const repo = makeRepo({
      'ferry.yml': `work:\n  tags: [shared]\n  retry: { max: 1, when: [runner_system_failure] }\n  script:\n    - echo "attempt on $RUNNER_HOST"\n    - if [ "$RUNNER_HOST" = ${a.address} ]; then exec -a ${marker} sleep 300; fi\n`,
    });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    await waitFor(() => processesWith(marker).length > 0, 30_000, 'the job to start on host A');
    net.cut(a);
    children.push(runnerOn(net, b, server, tb.body.token, ['shared']));
    const p = await server.waitPipeline(started.body.pipelineId, 90_000);
    assert.equal(p.status, 'success', JSON.stringify(p.jobs));
    const attempts = () => server.ctx.db.query<{ number: number; status: string; reason: string | null }>('SELECT number, status, reason FROM job_attempts WHERE job_id = $1 ORDER BY number', [p.jobs[0]!.id]);
    const expected = [
      [1, 'failed', 'runner_system_failure'],
      [2, 'success', null],
    ];
    assert.deepEqual((await attempts()).map((x) => [x.number, x.status, x.reason]), expected);
    assert.match((await server.call<string>('GET', `/api/jobs/${p.jobs[0]!.id}/log?attempt=2`)).body, new RegExp(`attempt on ${b.address.replace(/\./g, '\\.')}`));
    assert.ok(processesWith(marker).length > 0, 'cut off, runner A still runs its job: it cannot know');

    // The link comes back: A's next heartbeat is answered "lost"; it stops the job and
    // reports nothing, so the first attempt stays as the server decided.
    net.mend(a);
    await waitFor(() => processesWith(marker).length === 0, 60_000, 'runner A to stop the job it lost');
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual((await attempts()).map((x) => [x.number, x.status, x.reason]), expected);
  });
});
