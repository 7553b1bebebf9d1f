// Following a job's log live over SSE with the real server, its runner and real HTTP: many
// viewers of one job (one tail reads for all of them: src/server/log-tails.ts) each get every
// line once and in order, whether they came before the job started, while it wrote or after it
// ended; a viewer that reconnects with Last-Event-ID reads on without a gap or a repeat; and
// `ferry logs --project N <pipeline> <job> -f` (a real CLI process) prints it live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SseParser } from '../../src/cli/sse.js';
import { makeRepo } from '../helpers/repo.js';
import { waitFor } from '../helpers/procs.js';
import { createSchema, PG_URL } from '../store/helpers.js';
import { testServer, type TestServer } from './harness.js';

interface SseEvent {
  type: string;
  id?: number;
  data: Record<string, unknown>;
}

/**
 * Reads a job's SSE stream until `end` (or until `stopAfter` says to hang up). Resolves with the
 * events read.
 */
function follow(server: Pick<TestServer, 'url' | 'token'>, jobId: string, opts: { lastEventId?: number; stopAfter?: (events: SseEvent[]) => boolean } = {}): Promise<SseEvent[]> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${server.token}` };
    if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
    const req = request(`${server.url}/api/jobs/${jobId}/log?follow=1`, { headers, agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      res.setEncoding('utf8');
      const events: SseEvent[] = [];
      const parser = new SseParser((e) => {
        events.push({ type: e.type, ...(e.id ? { id: Number(e.id) } : {}), data: JSON.parse(e.data) });
        if (e.type === 'end' || opts.stopAfter?.(events)) {
          req.destroy();
          resolve(events);
        }
      });
      res.on('data', (d: string) => parser.push(d));
      res.on('end', () => resolve(events));
    });
    req.on('error', reject);
    req.end();
  });
}

const text = (events: SseEvent[]) =>
  events
    .filter((e) => e.type === 'log')
    .map((e) => e.data.text)
    .join('');
const numbered = (events: SseEvent[]) => text(events).match(/^line \d+$/gm) ?? [];

async function startJob(server: TestServer, yml: string): Promise<{ pipelineId: string; jobId: string; project: number }> {
  const repo = makeRepo({ 'ferry.yml': yml });
  const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
  const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
  const p = await server.call<{ jobs: { id: string }[] }>('GET', `/api/pipelines/${started.body.pipelineId}`);
  return { pipelineId: started.body.pipelineId, jobId: p.body.jobs[0]!.id, project: project.body.id };
}

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

/** Runs the real CLI; resolves with its output and exit code. */
function ferry(args: string[], onStdout?: (all: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('many viewers of one job each get every line once, in order, whenever they came', { timeout: 120_000 }, async () => {
  const server = await testServer();
  try {
    const LINES = 300;
    // About 2 s of output in bursts, so viewers arrive before, during and after the writing.
    const { pipelineId, jobId } = await startJob(server, `counted:\n  script: |\n    i=1; while [ $i -le ${LINES} ]; do echo "line $i"; [ $((i % 30)) -eq 0 ] && sleep 0.2; i=$((i+1)); done\n`);
    const expected = Array.from({ length: LINES }, (_, i) => `line ${i + 1}`);
    const early = Array.from({ length: 40 }, () => follow(server, jobId));
    await waitFor(async () => (await server.call<{ jobs: { status: string }[] }>('GET', `/api/pipelines/${pipelineId}`)).body.jobs[0]!.status === 'running', 20_000, 'the job to run');
    await new Promise((r) => setTimeout(r, 500));
    const during = Array.from({ length: 20 }, () => follow(server, jobId));
    const all = await Promise.all([...early, ...during]);
    const late = await follow(server, jobId); // the job is over: the whole log, then end
    for (const [i, events] of [...all, late].entries()) {
      assert.deepEqual(numbered(events), expected, `viewer ${i} got every line once, in order`);
      assert.equal(events.at(-1)!.type, 'end');
      assert.equal(events.at(-1)!.data.status, 'success');
      const ids = events.filter((e) => e.type === 'log').map((e) => e.id!);
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'event ids only go up');
      assert.equal(new Set(ids).size, ids.length, 'no event twice');
    }
    assert.ok(all.some((events) => events.filter((e) => e.type === 'log').length > 3), 'the output came in several events while viewers watched');
  } finally {
    await server.close();
  }
});

test('a viewer that reconnects with Last-Event-ID reads on without a gap or a repeat', { timeout: 120_000 }, async () => {
  const server = await testServer();
  try {
    const { pipelineId, jobId } = await startJob(server, `slow:\n  script: |\n    for i in $(seq 1 12); do echo "line $i"; sleep 0.15; done\n`);
    // Hang up after the first line arrived, while the job still writes.
    const first = await follow(server, jobId, { stopAfter: (events) => numbered(events).length > 0 });
    const lastId = first.filter((e) => e.type === 'log').at(-1)!.id!;
    assert.ok(numbered(first).length < 12, 'the first connection ended before the job did');
    const rest = await follow(server, jobId, { lastEventId: lastId });
    assert.ok(rest.filter((e) => e.type === 'log').every((e) => e.id! > lastId), 'nothing from before Last-Event-ID');
    assert.equal(rest.at(-1)!.type, 'end');
    assert.deepEqual([...numbered(first), ...numbered(rest)], Array.from({ length: 12 }, (_, i) => `line ${i + 1}`));
    // Together they are the stored log, exactly.
    const whole = (await server.call<string>('GET', `/api/jobs/${jobId}/log`)).body;
    assert.equal(text(first) + text(rest), whole);
    assert.equal((await server.waitPipeline(pipelineId)).status, 'success');
  } finally {
    await server.close();
  }
});

test('ferry logs -f prints a server job live, to its end, and exits by its outcome', { timeout: 120_000 }, async () => {
  const server = await testServer();
  try {
    const { pipelineId, jobId, project } = await startJob(server, `slow:\n  script: |\n    for i in $(seq 1 8); do echo "line $i"; sleep 0.2; done; exit 3\n`);
    const client = ['--server', server.url, '--token', server.token, '--project', String(project)];
    let early = false;
    const followed = await ferry(['logs', 'latest', 'slow', '-f', ...client], (out) => {
      // Printed while the job still runs, not all at the end.
      if (out.includes('line 1') && !out.includes('line 8')) early = true;
    });
    assert.equal(followed.code, 1, `a failed job: exit 1\n${followed.stderr}`);
    assert.deepEqual(followed.stdout.match(/^line \d+$/gm), Array.from({ length: 8 }, (_, i) => `line ${i + 1}`));
    assert.match(followed.stderr, /slow of pipeline #1: failed \(exit 3\)/);
    assert.ok(early, 'lines were printed as the job wrote them');
    assert.equal((await server.waitPipeline(pipelineId)).status, 'failed');

    const whole = await ferry(['logs', '1', 'slow', ...client]);
    assert.equal(whole.code, 0);
    assert.equal(whole.stdout, (await server.call<string>('GET', `/api/jobs/${jobId}/log`)).body);

    const missing = await ferry(['logs', '7', 'slow', ...client]);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /project \d+ has no pipeline #7/);
    const typo = await ferry(['logs', '1', 'slw', ...client]);
    assert.equal(typo.code, 64);
    assert.match(typo.stderr, /has no job `slw`; its jobs: slow/);
    const local = await ferry(['logs', '1', 'slow', '-f']);
    assert.equal(local.code, 64);
    assert.match(local.stderr, /add --project/);
  } finally {
    await server.close();
  }
});

test('a viewer on one replica follows a job whose runner reports to another', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 120_000 }, async () => {
  const schema = await createSchema();
  // The job runs on A's runner and its log is recorded through A; the viewer asks B, whose bus
  // never hears of it: B's tail finds the chunks by looking every second.
  const a = await testServer({ databaseUrl: schema.url });
  const b = await testServer({ databaseUrl: schema.url, runner: false });
  try {
    const { pipelineId, jobId } = await startJob(a, `slow:\n  script: |\n    for i in $(seq 1 10); do echo "line $i"; sleep 0.2; done\n`);
    const events = await follow({ url: b.url, token: a.token }, jobId); // one store: A's token is good on B
    assert.deepEqual(numbered(events), Array.from({ length: 10 }, (_, i) => `line ${i + 1}`));
    assert.equal(events.at(-1)!.type, 'end');
    assert.equal(events.at(-1)!.data.status, 'success');
    assert.ok(events.filter((e) => e.type === 'log').length > 1, 'the lines came while the job ran, not all at the end');
    assert.equal((await a.waitPipeline(pipelineId)).status, 'success');
  } finally {
    await b.close();
    await a.close();
    await schema.drop();
  }
});
