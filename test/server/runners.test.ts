// Remote runners as separate processes: jobs shared by tags, a runner killed in the middle of a
// job (its job is retried elsewhere and its late report refused), a server killed with kill -9
// and started again, and two server replicas on one PostgreSQL never running a job twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { makeRepo } from '../helpers/repo.js';
import { freePort, processesWith, stopAll, waitFor } from '../helpers/procs.js';
import { createSchema, PG_URL } from '../store/helpers.js';
import { testServer } from './harness.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

function runner(server: string, token: string, opts: { tags?: string[]; mark: string; concurrency?: number }): ChildProcess {
  const args = [MAIN, 'runner', '--server', server, '--token', token, '-j', String(opts.concurrency ?? 1), '--work-dir', mkdtempSync(join(tmpdir(), 'ferry-runner-'))];
  if (opts.tags) args.push('--tags', opts.tags.join(','));
  return spawn(process.execPath, args, { env: { ...process.env, RUNNER_MARK: opts.mark }, stdio: ['ignore', 'ignore', 'pipe'] });
}

test('two remote runners share the jobs by their tags', { timeout: 120_000 }, async () => {
  const server = await testServer({ runner: false });
  const children: ChildProcess[] = [];
  try {
    const a = await server.call<{ token: string }>('POST', '/api/runners', { name: 'alpha-box' });
    const b = await server.call<{ token: string }>('POST', '/api/runners', { name: 'beta-box' });
    children.push(runner(server.url, a.body.token, { tags: ['alpha', 'linux'], mark: 'A' }), runner(server.url, b.body.token, { tags: ['beta', 'linux'], mark: 'B' }));
    const jobs = ['a1', 'a2', 'a3'].map((n) => `${n}: { tags: [alpha], script: 'echo "ran-on=$RUNNER_MARK"' }`).concat(['b1', 'b2', 'b3'].map((n) => `${n}: { tags: [beta], script: 'echo "ran-on=$RUNNER_MARK"' }`), ['any: { tags: [linux], script: "true" }']);
    const repo = makeRepo({ 'ferry.yml': jobs.join('\n') + '\n' });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    const p = await server.waitPipeline(started.body.pipelineId, 90_000);
    if (p.status !== 'success') {
      const first = (await server.call<string>('GET', `/api/jobs/${p.jobs[0].id}/log`)).body;
      assert.fail(`pipeline ${p.status}; the first job's log:\n${first}`);
    }
    for (const j of p.jobs.filter((x) => x.name !== 'any')) {
      const log = (await server.call<string>('GET', `/api/jobs/${j.id}/log`)).body;
      assert.match(log, new RegExp(`ran-on=${j.name.startsWith('a') ? 'A' : 'B'}`), `${j.name} ran on the runner with its tag`);
    }
    const listed = await server.call<{ name: string; tags: string[]; info: { concurrency?: number } }[]>('GET', '/api/runners');
    assert.deepEqual(listed.body.find((r) => r.name === 'alpha-box')!.tags, ['alpha', 'linux']);
  } finally {
    await stopAll(children);
    await server.close();
  }
});

test('a runner killed mid-job: its lease runs out, the job is retried on another runner', { timeout: 120_000 }, async () => {
  const server = await testServer({ runner: false, leaseMs: 2000 });
  const marker = `ferry-runner-killed-${randomUUID()}`;
  const children: ChildProcess[] = [];
  try {
    const a = await server.call<{ token: string }>('POST', '/api/runners', { name: 'doomed' });
    const b = await server.call<{ token: string }>('POST', '/api/runners', { name: 'survivor' });
    const doomed = runner(server.url, a.body.token, { mark: 'A' });
    children.push(doomed);
    const repo = makeRepo({
      'ferry.yml': `work:\n  retry: { max: 1, when: [runner_system_failure] }\n  script:\n    - echo "attempt on $RUNNER_MARK"\n    - if [ "$RUNNER_MARK" = A ]; then exec -a ${marker} sleep 300; fi\n`,
    });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    await waitFor(() => processesWith(marker).length > 0, 30_000, 'the job to start on the doomed runner');
    doomed.kill('SIGKILL');
    // Its job process lives on (its own process group); the runner's next start cleans it up.
    children.push(runner(server.url, b.body.token, { mark: 'B' }));
    const p = await server.waitPipeline(started.body.pipelineId, 90_000);
    assert.equal(p.status, 'success', JSON.stringify(p.jobs));
    const attempts = await server.ctx.db.query<{ number: number; status: string; reason: string | null }>('SELECT number, status, reason FROM job_attempts WHERE job_id = $1 ORDER BY number', [p.jobs[0].id]);
    assert.deepEqual(
      attempts.map((x) => [x.number, x.status, x.reason]),
      [
        [1, 'failed', 'runner_system_failure'],
        [2, 'success', null],
      ],
    );
    const log = (await server.call<string>('GET', `/api/jobs/${p.jobs[0].id}/log?attempt=1`)).body;
    assert.match(log, /runner lost/);
    for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL');
  } finally {
    await stopAll(children);
    await server.close();
  }
});

function serverProcess(home: string, port: number, env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [MAIN, 'server', '--home', home, '--listen', `127.0.0.1:${port}`, '--lease', '2', '-j', '2'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
}

async function tokenOf(child: ChildProcess): Promise<string> {
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await waitFor(() => /fry_[A-Za-z0-9_-]+/.test(err) || /Ferry server on/.test(err), 60_000, 'the server to start');
  return /fry_[A-Za-z0-9_-]+/.exec(err)?.[0] ?? '';
}

async function api<T>(port: number, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return (await res.json()) as T;
}


test('kill -9 of the server mid-pipeline: after a restart the pipeline ends cleanly and no job process is left', { timeout: 180_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-crash-'));
  const marker = `ferry-server-crash-${randomUUID()}`;
  const port = await freePort();
  let child = serverProcess(home, port);
  try {
    const token = await tokenOf(child);
    const repo = makeRepo({ 'ferry.yml': `first:\n  script: echo first\nslow:\n  needs: [first]\n  script: exec -a ${marker} sleep 300\nafter:\n  needs: [slow]\n  when: always\n  script: echo after-ran\n` });
    const project = await api<{ id: number }>(port, token, 'POST', '/api/projects', { path: repo.dir });
    const started = await api<{ pipelineId: string }>(port, token, 'POST', `/api/projects/${project.id}/pipelines`, {});
    await waitFor(() => processesWith(marker).length > 0, 60_000, 'the slow job to start');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    child = serverProcess(home, port);
    await tokenOf(child);
    let p: { status: string; jobs: { name: string; status: string; failureReason: string | null }[] };
    await waitFor(async () => {
      p = await api(port, token, 'GET', `/api/pipelines/${started.pipelineId}`);
      return !['running', 'created'].includes(p.status);
    }, 60_000, 'the pipeline to end after the restart');
    assert.equal(p!.status, 'failed');
    const byName = Object.fromEntries(p!.jobs.map((j) => [j.name, j]));
    assert.equal(byName.first.status, 'success');
    assert.equal(byName.slow.status, 'failed');
    assert.equal(byName.slow.failureReason, 'runner_system_failure');
    assert.equal(byName.after.status, 'success', 'when: always still runs');
    await waitFor(() => processesWith(marker).length === 0, 10_000, 'the orphaned job process to be stopped by the restarted server');
  } finally {
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('close', () => resolve());
      child.kill('SIGTERM');
    });
  }
});

test('two server replicas on one PostgreSQL run every job exactly once', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 180_000 }, async () => {
  const schema = await createSchema();
  const out = join(mkdtempSync(join(tmpdir(), 'ferry-replicas-')), 'ran.log');
  const [p1, p2] = [await freePort(), await freePort()];
  const env = { DATABASE_URL: schema.url };
  const s1 = serverProcess(mkdtempSync(join(tmpdir(), 'ferry-r1-')), p1, env);
  const token = await tokenOf(s1);
  const s2 = serverProcess(mkdtempSync(join(tmpdir(), 'ferry-r2-')), p2, env);
  await tokenOf(s2);
  try {
    const jobs = Array.from({ length: 24 }, (_, i) => `j${i}:\n  script: echo "j${i} $PPID" >> ${out}\n`).join('');
    const repo = makeRepo({ 'ferry.yml': jobs });
    const project = await api<{ id: number }>(p1, token, 'POST', '/api/projects', { path: repo.dir });
    const started = await api<{ pipelineId: string }>(p2, token, 'POST', `/api/projects/${project.id}/pipelines`, {});
    await waitFor(async () => (await api<{ status: string }>(p1, token, 'GET', `/api/pipelines/${started.pipelineId}`)).status === 'success', 120_000, 'the pipeline to pass');
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const names = lines.map((l) => l.split(' ')[0]);
    assert.equal(names.length, 24, 'no job ran twice');
    assert.equal(new Set(names).size, 24);
    const runnersUsed = new Set(lines.map((l) => l.split(' ')[1]));
    assert.ok(runnersUsed.size >= 2, 'both replicas took jobs');
  } finally {
    for (const s of [s1, s2]) {
      await new Promise<void>((resolve) => {
        if (s.exitCode !== null || s.signalCode !== null) return resolve();
        s.once('close', () => resolve());
        s.kill('SIGTERM');
      });
    }
    await schema.drop();
  }
});
