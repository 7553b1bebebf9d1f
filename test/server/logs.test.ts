// The per-job log limit with real jobs: `ferry run`, the server's own runner, a remote runner
// process, and a runner that ignores the limit (and does not mask) speaking the protocol by hand.
// Each time: the log stops at the limit with one truncation line, the job runs on to its end
// with its own exit status, and the job says logTruncated (API, `ferry show`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogLimiter, parseByteSize, truncationLine, utf8Prefix } from '../../src/executor/log-limit.js';
import { parseConfig } from '../../src/config/load.js';
import { plan } from '../../src/pipeline/plan.js';
import { RunnerAgent } from '../../src/runner/agent.js';
import type { JobLeaseWire, LogChunkWire, OutcomeWire } from '../../src/runner/protocol.js';
import type { RunnerTransport } from '../../src/runner/transport.js';
import { makeRepo } from '../helpers/repo.js';
import { testServer, type TestServer } from './harness.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));
const LIMIT = 64 * 1024;
const LINE = truncationLine(LIMIT);

/** A job that writes ~600 KB to both streams, then writes a marker file and exits with `exit`. */
function flood(marker: string, exit = 0): string {
  return `
flood:
  script:
    - printf 'the same line of output, again and again %s\\n' $(seq 1 12000)
    - printf 'and some on stderr %s\\n' $(seq 1 3000) >&2
    - echo "written after the cut"
    - sleep 0.3 && echo ran-on > ${marker}
    - exit ${exit}
`;
}

/** The checks every path shares: the log is cut at the limit, once, with the line at its end. */
function assertCut(log: string): void {
  assert.ok(log.endsWith(LINE), `the log ends with the truncation line: …${JSON.stringify(log.slice(-200))}`);
  assert.equal(log.split('ferry: log truncated').length, 2, 'one truncation line');
  const kept = Buffer.byteLength(log) - Buffer.byteLength(LINE);
  assert.ok(kept <= LIMIT + 1 && kept > LIMIT - 1024, `${kept} bytes kept before the line (limit ${LIMIT}, +1 for the newline before it)`);
  assert.ok(!log.includes('written after the cut'));
}

function marker(): string {
  return join(mkdtempSync(join(tmpdir(), 'ferry-marker-')), 'ran-on');
}

test('LogLimiter cuts at the limit on a character boundary and says so once', () => {
  const out: { stream: string; text: string; truncated: boolean }[] = [];
  const l = new LogLimiter(10, (stream, text, truncated) => out.push({ stream, text, truncated }));
  l.write('stdout', 'abcd');
  l.write('stderr', 'éé€x'); // 6 bytes left: é and é (2 each) fit, € (3) does not
  l.write('stdout', 'more');
  l.truncate();
  assert.deepEqual(out, [
    { stream: 'stdout', text: 'abcd', truncated: false },
    { stream: 'stderr', text: 'éé', truncated: false },
    { stream: 'stderr', text: '\n', truncated: false },
    { stream: 'system', text: truncationLine(10), truncated: true },
  ]);
  assert.equal(utf8Prefix('a😀b', 3), 'a', 'never half of a four-byte character');
  assert.equal(parseByteSize('100MiB'), 100 * 1024 * 1024);
  assert.equal(parseByteSize('64 KiB'), 65536);
  assert.equal(parseByteSize('1.5kb'), 1500);
  assert.equal(parseByteSize('lots'), null);
  assert.equal(truncationLine(100 * 1024 * 1024), 'ferry: log truncated at 100 MiB (limit: FERRY_LOG_LIMIT); the job kept running, its further output was dropped\n');
});

test('ferry run: FERRY_LOG_LIMIT cuts the log, the job runs on, show and logs say so', { timeout: 120_000 }, () => {
  const done = marker();
  const repo = makeRepo({ 'ferry.yml': flood(done, 0) });
  const env = { ...process.env, NO_COLOR: '1', FERRY_BACKGROUND_INGEST: '0', DATABASE_URL: '', FERRY_LOG_LIMIT: '64KiB', FERRY_HOME: mkdtempSync(join(tmpdir(), 'ferry-home-')) };
  const ferry = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { cwd: repo.dir, env, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  const run = ferry('run');
  assert.equal(run.status, 0, run.stderr);
  assert.ok(existsSync(done), 'the job kept running after its log was cut');

  const log = ferry('logs', 'latest', 'flood');
  assert.equal(log.status, 0, log.stderr);
  assertCut(log.stdout);

  const show = ferry('show');
  assert.match(show.stdout, /flood .*passed.*log truncated \(FERRY_LOG_LIMIT\)/, show.stdout);
  const json = JSON.parse(ferry('show', '--json').stdout) as { jobs: { name: string; status: string; exitCode: number; logTruncated: boolean }[] };
  assert.deepEqual(json.jobs.map((j) => [j.name, j.status, j.exitCode, j.logTruncated]), [['flood', 'success', 0, true]]);

  const refused = spawnSync(process.execPath, [MAIN, 'run'], { cwd: repo.dir, env: { ...env, FERRY_LOG_LIMIT: 'lots' }, encoding: 'utf8' });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /FERRY_LOG_LIMIT=`lots` is not a log size: write it like 100MiB/);
});

async function runOnServer(server: TestServer, exit: number): Promise<{ job: { id: string; status: string; exitCode: number | null; logTruncated: boolean }; log: string; done: string }> {
  const done = marker();
  const repo = makeRepo({ 'ferry.yml': flood(done, exit) });
  const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
  const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
  const p = (await server.waitPipeline(started.body.pipelineId, 90_000)) as unknown as { jobs: { id: string; status: string; exitCode: number | null; logTruncated: boolean }[] };
  const job = p.jobs[0]!;
  return { job, log: (await server.call<string>('GET', `/api/jobs/${job.id}/log`)).body, done };
}

test("the server's own runner: the log is cut at --log-limit, the job's exit status is its own", { timeout: 120_000 }, async () => {
  const server = await testServer({ logLimit: LIMIT });
  try {
    const { job, log, done } = await runOnServer(server, 3);
    assertCut(log);
    assert.ok(existsSync(done), 'the job kept running after its log was cut');
    assert.equal(job.status, 'failed');
    assert.equal(job.exitCode, 3, 'the exit status is the script\'s, not the limit\'s');
    assert.equal(job.logTruncated, true);
    const [attempt] = await server.ctx.db.query<{ log_bytes: number; log_truncated: boolean }>('SELECT log_bytes, log_truncated FROM job_attempts WHERE job_id = $1', [job.id]);
    assert.ok(attempt!.log_truncated && attempt!.log_bytes <= LIMIT, JSON.stringify(attempt));
  } finally {
    await server.close();
  }
});

test('a remote runner process cuts at the limit the lease gives it', { timeout: 120_000 }, async () => {
  const server = await testServer({ runner: false, logLimit: LIMIT });
  let child: ChildProcess | undefined;
  try {
    const r = await server.call<{ token: string }>('POST', '/api/runners', { name: 'remote' });
    child = spawn(process.execPath, [MAIN, 'runner', '--server', server.url, '--token', r.body.token, '-j', '1', '--work-dir', mkdtempSync(join(tmpdir(), 'ferry-runner-'))], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    child.stderr!.on('data', (d) => (said += d));
    const { job, log, done } = await runOnServer(server, 0).catch((err: Error) => {
      throw new Error(`${err.message.slice(0, 300)}\nthe runner said: ${said}`);
    });
    assertCut(log);
    assert.ok(existsSync(done));
    assert.deepEqual([job.status, job.exitCode, job.logTruncated], ['success', 0, true]);
  } finally {
    if (child && child.exitCode === null) {
      const closed = new Promise((resolve) => child!.once('close', resolve));
      child.kill('SIGTERM');
      await closed;
    }
    await server.close();
  }
});

test('the server enforces the limit on a runner that ignores it, and the cut never leaves half a secret', { timeout: 60_000 }, async () => {
  const server = await testServer({ runner: false, logLimit: LIMIT, env: {} });
  try {
    const repo = makeRepo({ 'ferry.yml': 'talk:\n  script: echo hi\n' });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const secret = 'SUPERSECRETVALUE123';
    assert.equal((await server.call('PUT', `/api/projects/${project.body.id}/secrets/TOKEN`, { value: secret })).status, 201);
    const runner = await server.call<{ token: string }>('POST', '/api/runners', { name: 'rogue' });
    await server.call('POST', `/api/projects/${project.body.id}/pipelines`, {});
    const l = (await server.call<JobLeaseWire>('POST', '/api/runner/lease', { waitMs: 5000 }, runner.body.token)).body;
    assert.equal(l.logLimit, LIMIT, 'the lease tells the runner the limit');
    const send = async (chunks: Omit<LogChunkWire, 'at'>[]) => {
      const r = await server.call<{ accepted: number; truncated?: boolean }>('POST', `/api/runner/jobs/${l.jobId}/logs`, { attempt: l.attempt, chunks: chunks.map((c) => ({ ...c, at: Date.now() })) }, runner.body.token);
      assert.equal(r.status, 200);
      return r.body;
    };
    // 5 bytes short of the limit, then the secret in two requests, unmasked: the server masks it
    // whole first, so the cut falls inside "[MASKED]", never inside the secret.
    assert.equal((await send([{ stream: 'stdout', text: 'x'.repeat(LIMIT - 5) }])).truncated, undefined);
    assert.equal((await send([{ stream: 'stdout', text: secret.slice(0, 3) }])).truncated, undefined);
    assert.equal((await send([{ stream: 'stdout', text: `${secret.slice(3)}\n` }, { stream: 'stderr', text: 'y'.repeat(50_000) }])).truncated, true);
    assert.deepEqual(await send([{ stream: 'stdout', text: 'z'.repeat(50_000) }]), { accepted: 0, truncated: true });
    const done = await server.call('POST', `/api/runner/jobs/${l.jobId}/complete`, { attempt: l.attempt, outcome: { status: 'success', exitCode: 0 } }, runner.body.token);
    assert.equal(done.status, 200);

    const log = (await server.call<string>('GET', `/api/jobs/${l.jobId}/log`)).body;
    assert.equal(log, `${'x'.repeat(LIMIT - 5)}[MASK\n${LINE}`);
    assert.ok(!log.includes('SUP'));
    const p = await server.call<{ jobs: { status: string; logTruncated: boolean }[] }>('GET', `/api/pipelines/${l.pipelineId}`);
    assert.deepEqual(p.body.jobs.map((j) => [j.status, j.logTruncated]), [['success', true]]);
  } finally {
    await server.close();
  }
});

test('the runner masks before it cuts, and sends nothing past the limit', { timeout: 60_000 }, async () => {
  const secret = 'SUPERSECRETVALUE123';
  // The secret over and over: wherever the cut falls, it falls in the middle of one.
  const text = `job:\n  script:\n    - for i in $(seq 1 20000); do printf '%s\\n' "$TOKEN"; done\n    - echo after\n`;
  const { config } = parseConfig(text, 'ferry.yml');
  const job = plan({ config: config!, predefined: {} }).jobs[0]!;
  const lease: JobLeaseWire = { jobId: 'j1', pipelineId: 'p1', attempt: 1, job, variables: { TOKEN: secret }, secretNames: ['TOKEN'], heartbeatMs: 1000, logLimit: LIMIT };
  const sent: LogChunkWire[] = [];
  let outcome: OutcomeWire | undefined;
  let leased = false;
  const transport = {
    lease: async (_req: unknown, signal: AbortSignal) => {
      if (!leased) return ((leased = true), lease);
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return null;
    },
    heartbeat: async () => 'ok' as const,
    logs: async (_j: string, _a: number, chunks: LogChunkWire[]) => (sent.push(...chunks), { accepted: chunks.length }),
    report: async () => undefined,
    complete: async (_j: string, _a: number, o: OutcomeWire) => void (outcome = o),
    source: async (_j: string, _a: number, dir: string) => void spawnSync('mkdir', ['-p', dir]),
    artifactStore: () => ({ save: async () => 0, restore: async () => false }),
    cacheStore: () => ({ save: async () => 0, restore: async () => false }),
  } as unknown as RunnerTransport;
  const agent = new RunnerAgent({ transport, concurrency: 1, workDir: mkdtempSync(join(tmpdir(), 'ferry-agent-')) });
  agent.start();
  const until = Date.now() + 30_000;
  while (!outcome && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  await agent.stop();
  assert.deepEqual(outcome, { status: 'success', exitCode: 0, reason: undefined });
  const log = sent.map((c) => c.text).join('');
  assert.ok(!log.includes('SUP'), `no piece of the secret: …${JSON.stringify(log.slice(-120))}`);
  assert.ok(log.endsWith(LINE));
  assert.equal(sent.filter((c) => c.truncated).length, 1, 'the cut is marked once, on the last chunk');
  assert.ok(sent.at(-1)!.truncated);
  assert.ok(Buffer.byteLength(log) <= LIMIT + 1 + Buffer.byteLength(LINE), 'nothing past the limit was sent');
  assert.ok(!log.includes('$ echo after'));
});
