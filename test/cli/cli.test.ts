// The ferry command as people use it: the compiled CLI in a child process, real repositories,
// real jobs, real store. Checks exit codes, what is printed, and what is recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { makeRepo } from '../helpers/repo.js';
import { processesWith, waitFor } from '../helpers/procs.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));
// The background ingest is tested on its own below; elsewhere the reading commands ingest.
const ENV = { ...process.env, NO_COLOR: '1', FERRY_BACKGROUND_INGEST: '0', DATABASE_URL: '' };

function ferry(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd, env: { ...ENV, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr };
}

const PIPELINE = `
stages: [build, test, package]
build:
  stage: build
  script: [mkdir -p out, echo built > out/app.txt]
  artifacts: { paths: [out/] }
unit:
  stage: test
  script:
    - cat out/app.txt
    - printf '%s' '<testsuites><testsuite name="math"><testcase classname="math" name="adds"/><testcase classname="math" name="divides"><failure message="expected 2, got 3">at divide.js:3</failure></testcase></testsuite></testsuites>' > junit.xml
    - test "$FAIL" != yes
  reports: { junit: junit.xml }
package:
  stage: package
  when: manual
  script: [cat out/app.txt, echo packaged]
`;

test('validate: 0 for a valid file, 2 with file:line:col for an invalid one, --json for tools', () => {
  const repo = makeRepo({ 'ferry.yml': PIPELINE, 'bad.yml': 'build:\n  scirpt: echo hi\nunit:\n  needs: [buld]\n  script: true\n' });
  const ok = ferry(['validate'], repo.dir);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.stdout, /ferry\.yml is valid: 3 jobs in 3 stages/);
  const bad = ferry(['validate', 'bad.yml'], repo.dir);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.yml:2:3: .*scirpt/);
  assert.match(bad.stderr, /did you mean `script`/);
  assert.match(bad.stderr, /bad\.yml:4:11: .*buld/);
  const json = JSON.parse(ferry(['validate', 'bad.yml', '--json'], repo.dir).stdout);
  assert.equal(json.valid, false);
  assert.ok(json.issues.some((i: { code: string; line: number }) => i.code === 'unknown-need' && i.line === 4));
  assert.equal(ferry(['validate', 'missing.yml'], repo.dir).code, 2);
});

test('run outside a repository exits 3; with an invalid ferry.yml exits 2 and runs nothing', () => {
  const empty = mkdtempSync(join(tmpdir(), 'ferry-norepo-'));
  const r = ferry(['run'], empty);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /not inside a git repository/);
  const repo = makeRepo({ 'ferry.yml': 'build:\n  script: [echo hi]\n  when: sometimes\n' });
  const bad = ferry(['run'], repo.dir);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /ferry\.yml:3:9/);
  assert.ok(!existsSync(join(repo.dir, '.ferry', 'journal')) || readdirSync(join(repo.dir, '.ferry', 'journal')).length === 0);
  assert.equal(ferry(['run', '--concurrency', 'zero'], repo.dir).code, 64);
});

test('run, history, show, logs and play: a pipeline recorded and inspected end to end', () => {
  const repo = makeRepo({ 'ferry.yml': PIPELINE });
  const run = ferry(['run'], repo.dir);
  assert.equal(run.code, 0, run.out);
  assert.match(run.stdout, /\[unit\] built/);
  assert.match(run.stdout, /Recorded as pipeline #1/);
  assert.match(run.stdout, /ferry play package/);

  const failed = ferry(['run', '-v', 'FAIL=yes'], repo.dir);
  assert.equal(failed.code, 1, failed.out);
  assert.match(failed.stdout, /expected 2, got 3/, 'the failed test is shown');

  const history = ferry(['history'], repo.dir);
  assert.equal(history.code, 0, history.out);
  assert.match(history.stdout, /^2\s+failed\s+main/m);
  // An optional manual job (GitLab's default for `when: manual`) does not hold the pipeline.
  assert.match(history.stdout, /^1\s+passed\s+main.*2\/3 passed/m);

  const show = ferry(['show', '2'], repo.dir);
  assert.match(show.stdout, /pipeline #2 failed/);
  assert.match(show.stdout, /unit\s+test\s+failed.*exit 1.*tests: 1 passed, 1 failed/);
  assert.match(show.stdout, /math.*divides/);

  const logs = ferry(['logs', '1', 'unit'], repo.dir);
  assert.equal(logs.code, 0);
  assert.match(logs.stdout, /\$ cat out\/app\.txt\nbuilt/);
  assert.equal(ferry(['logs', '1', 'nope'], repo.dir).code, 64);
  const timed = ferry(['logs', '1', 'unit', '--timestamps'], repo.dir).stdout.trim().split('\n');
  assert.ok(timed.length >= 3);
  for (const line of timed) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [OES] /, line);
  assert.ok(timed.some((l) => / O built$/.test(l)));

  const play = ferry(['play', 'package', '--pipeline', '1'], repo.dir);
  assert.equal(play.code, 0, play.out);
  assert.match(play.stdout, /\[package\] packaged/);
  assert.match(ferry(['show', '1'], repo.dir).stdout, /package\s+package\s+passed/);
  const again = ferry(['play', 'package', '--pipeline', '1'], repo.dir);
  assert.equal(again.code, 3, 'nothing left to play');
});

test('--json prints one event per line, from pipeline.started to a summary', () => {
  const repo = makeRepo({ 'ferry.yml': 'a:\n  script: echo hello\n' });
  const r = ferry(['run', '--json'], repo.dir);
  assert.equal(r.code, 0, r.out);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(events[0].type, 'pipeline.started');
  assert.ok(events.some((e) => e.type === 'job.log' && e.text.includes('hello')));
  assert.ok(events.some((e) => e.type === 'pipeline.finished' && e.status === 'success'));
});

test('Ctrl-C stops the run: exit 130, jobs recorded canceled, no process left', async () => {
  const marker = `ferry-sigint-${randomUUID()}`;
  const repo = makeRepo({ 'ferry.yml': `long:\n  script: exec -a ${marker} sleep 300\nafter:\n  needs: [long]\n  script: "true"\n` });
  const child = spawn(process.execPath, [MAIN, 'run'], { cwd: repo.dir, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await waitFor(() => processesWith(marker).length > 0, 20_000, 'the job to start');
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(code, 130, out);
  await waitFor(() => processesWith(marker).length === 0, 5000, 'no survivor');
  const show = ferry(['show'], repo.dir);
  assert.match(show.stdout, /pipeline #1 canceled/);
  assert.match(show.stdout, /long\s+test\s+canceled/);
});

test('kill -9 of ferry run: the next command records the run as failed and stops its jobs', async () => {
  const marker = `ferry-kill9-${randomUUID()}`;
  const repo = makeRepo({ 'ferry.yml': `quick:\n  script: echo quick-done\nlong:\n  needs: [quick]\n  script: exec -a ${marker} sleep 300\n` });
  const child = spawn(process.execPath, [MAIN, 'run'], { cwd: repo.dir, env: ENV, stdio: 'ignore' });
  await waitFor(() => processesWith(marker).length > 0, 20_000, 'the long job to start');
  // Kill only once the run has journaled the long job's process (quick's and long's notes), so
  // the test is about a run killed mid-job, however slowly this machine runs.
  const journalDir = join(repo.dir, '.ferry', 'journal');
  await waitFor(
    () => readdirSync(journalDir).some((f) => (readFileSync(join(journalDir, f), 'utf8').match(/"journal\.process"/g) ?? []).length >= 2),
    20_000,
    "the long job's process to be journaled",
  );
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  assert.ok(processesWith(marker).length > 0, 'the job outlives a killed ferry (its own process group)');
  const show = ferry(['show'], repo.dir);
  assert.equal(show.code, 0, show.out);
  assert.match(show.stdout, /pipeline #1 failed/);
  assert.match(show.stdout, /quick\s+test\s+passed/);
  assert.match(show.stdout, /long\s+test\s+failed/);
  assert.match(ferry(['logs', '1', 'long'], repo.dir).stdout, /stopped \(killed or crashed\)/);
  await waitFor(() => processesWith(marker).length === 0, 5000, 'the orphaned job to be stopped');
});

test('the background ingest records a finished run into the store by itself', async () => {
  const repo = makeRepo({ 'ferry.yml': 'a:\n  script: echo hi\n' });
  const r = ferry(['run'], repo.dir, { FERRY_BACKGROUND_INGEST: '1' });
  assert.equal(r.code, 0, r.out);
  const journal = join(repo.dir, '.ferry', 'journal');
  await waitFor(() => readdirSync(journal).length === 0 && !existsSync(join(repo.dir, '.ferry', 'db.lock')), 60_000, 'the journal to be ingested');
  assert.match(ferry(['history'], repo.dir).stdout, /^1\s+passed/m);
});

test('--help of every command shows examples', () => {
  const dir = tmpdir();
  for (const cmd of ['run', 'validate', 'history', 'show', 'logs', 'play', 'demo']) {
    const r = ferry([cmd, '--help'], dir);
    assert.equal(r.code, 0, `${cmd}: ${r.out}`);
    assert.match(r.stdout, /Examples:/, cmd);
  }
  assert.match(ferry(['--help'], dir).stdout, /ferry run/);
});

test('recorded on PostgreSQL when DATABASE_URL is set', { skip: !process.env.FERRY_TEST_DATABASE_URL && 'FERRY_TEST_DATABASE_URL is not set' }, async () => {
  const schema = `t_cli_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: process.env.FERRY_TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    const url = new URL(process.env.FERRY_TEST_DATABASE_URL!);
    url.searchParams.set('options', `-c search_path=${schema}`);
    const env = { DATABASE_URL: url.toString() };
    const repo = makeRepo({ 'ferry.yml': 'a:\n  script: echo on-postgres\n' });
    const r = ferry(['run'], repo.dir, env);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, /Recorded as pipeline #1/);
    const rows = await admin.query(`SELECT number, status FROM ${schema}.pipelines`);
    assert.deepEqual(rows.rows, [{ number: 1, status: 'success' }]);
    assert.match(ferry(['logs', 'latest', 'a'], repo.dir, env).stdout, /on-postgres/);
    assert.match(ferry(['run'], repo.dir, env).stdout, /Recorded as pipeline #2/);
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
});

test('a repository without ferry.yml, or with it uncommitted, gets a clear error (exit 2)', () => {
  const repo = makeRepo({ 'README.md': 'hi' });
  const none = ferry(['run'], repo.dir);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no ferry\.yml at the root/);
  assert.equal(ferry(['run', '--dirty'], repo.dir).code, 2);
  repo.write('ferry.yml', 'a:\n  script: echo from-the-working-tree\n');
  const uncommitted = ferry(['run'], repo.dir);
  assert.equal(uncommitted.code, 2);
  assert.match(uncommitted.stderr, /not committed.*--dirty/s);
  const dirty = ferry(['run', '--dirty'], repo.dir);
  assert.equal(dirty.code, 0, dirty.out);
  assert.match(dirty.stdout, /from-the-working-tree/);
});
