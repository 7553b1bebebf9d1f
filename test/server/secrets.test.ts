// Secrets end to end: stored sealed, never returned by the API, injected at lease time into jobs
// of trusted pipelines only (environment-scoped ones into deploy jobs of that environment), and
// masked in job logs by the runner and again by the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRepo } from '../helpers/repo.js';
import { ferryCli, waitFor } from '../helpers/procs.js';
import { PG_URL } from '../store/helpers.js';
import { testServer, type TestServer } from './harness.js';
import { startPipeline } from '../../src/server/trigger.js';
import { findProject } from '../../src/store/pipelines.js';
import { createUserToken } from '../../src/store/access.js';
import { jobSecrets, setSecret } from '../../src/store/secrets.js';
import { SecretError } from '../../src/secrets/crypto.js';
import type { JobLeaseWire } from '../../src/runner/protocol.js';

// Characters that URL-encoding and base64 change, so each form is a different string.
const S = 'hunter2-Sup3r/S3cret+value&x=y';
const MULTI = '-----BEGIN TEST KEY-----\nMIIEpAIBAAKCAQEAx1yz\nQ2hhcmFjdGVycw+/abc\n-----END TEST KEY-----';
const MULTI_LINES = MULTI.split('\n');

const LEAKY = `
leak:
  script:
    - echo "len=\${#S}"
    - echo "plain $S"
    - printf '%s\\n' "$MULTI"
    - printf %s "$S" | base64
    - echo "$S" | base64
    - node -e 'process.stdout.write("url=" + encodeURIComponent(process.env.S) + "\\n")'
    - printf 'split:%s' "\${S:0:10}"; sleep 0.4; printf '%s:end\\n' "\${S:10}"
    - echo "to stderr $S" >&2
`;

/** Everything of the secrets that must not be in a log: values, encoded forms, the halves of the split write. */
const FORBIDDEN = [
  S,
  encodeURIComponent(S),
  Buffer.from(S).toString('base64'),
  Buffer.from(`${S}\n`).toString('base64'),
  S.slice(0, 10),
  S.slice(10),
  ...MULTI_LINES,
];

async function project(server: TestServer, files: Record<string, string>): Promise<number> {
  const repo = makeRepo(files);
  const p = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  return p.body.id;
}

async function put(server: TestServer, projectId: number, name: string, value: string, environment?: string, token?: string) {
  return server.call<{ created: boolean; message?: string }>('PUT', `/api/projects/${projectId}/secrets/${name}`, { value, environment }, token);
}

async function jobLog(server: TestServer, pipelineId: string, name: string): Promise<{ log: string; status: string; failureReason: string | null }> {
  const p = await server.waitPipeline(pipelineId);
  const job = p.jobs.find((j) => j.name === name)!;
  const log = await server.call<string>('GET', `/api/jobs/${job.id}/log`);
  return { log: log.body, status: job.status, failureReason: job.failureReason };
}

for (const engine of ['pglite', 'postgres'] as const) {
  test(`secrets reach the job and no form of them reaches the stored log or the API [${engine}]`, { skip: engine === 'postgres' && !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 120_000 }, async () => {
    const server = await testServer({ postgres: engine === 'postgres', env: {} });
    try {
      const id = await project(server, { 'ferry.yml': LEAKY });
      assert.equal((await put(server, id, 'S', S)).status, 201);
      assert.equal((await put(server, id, 'MULTI', MULTI)).status, 201);
      assert.equal((await put(server, id, 'S', S)).status, 200, 'a second PUT replaces');

      const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${id}/pipelines`, {});
      const { log, status } = await jobLog(server, started.body.pipelineId, 'leak');
      assert.equal(status, 'success', log);
      assert.match(log, new RegExp(`len=${S.length}\\b`), 'the job had the secret');
      for (const f of FORBIDDEN) assert.ok(!log.includes(f), `the log holds ${JSON.stringify(f)}:\n${log}`);
      assert.match(log, /plain \[MASKED\]/);
      assert.match(log, /url=\[MASKED\]/);
      assert.match(log, /to stderr \[MASKED\]/);
      assert.match(log, /split:\[MASKED\]:end/, 'a value written in two pieces, 400 ms apart, is masked as one');

      // The API never gives values back: not the list, not the pipeline's variables.
      const list = await server.call<{ name: string; environment: string; updatedBy: string }[]>('GET', `/api/projects/${id}/secrets`);
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.map((s) => [s.name, s.environment, s.updatedBy]), [['MULTI', '', 'admin'], ['S', '', 'admin']]);
      const pipeline = await server.call('GET', `/api/pipelines/${started.body.pipelineId}`);
      const everything = JSON.stringify(list.body) + JSON.stringify(pipeline.body);
      for (const f of [S, ...MULTI_LINES]) assert.ok(!everything.includes(f), `the API returned ${JSON.stringify(f)}`);
      // Nor does the store hold them in the clear.
      const rows = await server.ctx.db.query<{ sealed: string }>('SELECT sealed FROM secrets');
      assert.ok(rows.every((r) => r.sealed.startsWith('v1:') && !r.sealed.includes(S)));
      const vars = await server.ctx.db.query<{ v: string }>('SELECT variables::text AS v FROM pipelines');
      assert.ok(vars.every((r) => !r.v.includes(S)), 'lease-time injection keeps secrets out of the recorded variables');
    } finally {
      await server.close();
    }
  });
}

test('pipelines that are not trusted (forks, untrusted merge requests) get no secrets', { timeout: 120_000 }, async () => {
  const server = await testServer({ env: {} });
  try {
    const id = await project(server, { 'ferry.yml': 'show:\n  script:\n    - echo "S=[${S:-}]"\n    - echo "trusted=$FERRY_PIPELINE_TRUSTED"\n' });
    await put(server, id, 'S', S);
    const repoPath = (await server.call<{ id: number; path: string }[]>('GET', '/api/projects')).body.find((p) => p.id === id)!.path;
    const proj = (await findProject(server.ctx.db, repoPath))!;
    const fork = await startPipeline(server.ctx, proj, { source: 'merge_request_event', trusted: false });
    const untrusted = await jobLog(server, fork.pipelineId, 'show');
    assert.equal(untrusted.status, 'success');
    assert.match(untrusted.log, /S=\[\]/);
    assert.match(untrusted.log, /trusted=false/);
    // Trigger variables cannot make a pipeline trusted (the server decides on the recorded
    // pipeline variables, where the trigger's verdict is written last).
    const forged = await startPipeline(server.ctx, proj, { source: 'merge_request_event', trusted: false, variables: { FERRY_PIPELINE_TRUSTED: 'true' } });
    assert.match((await jobLog(server, forged.pipelineId, 'show')).log, /S=\[\]/);

    const own = await startPipeline(server.ctx, proj, { source: 'push', trusted: true });
    const trusted = await jobLog(server, own.pipelineId, 'show');
    assert.match(trusted.log, /S=\[\[MASKED\]\]/);
  } finally {
    await server.close();
  }
});

const DEPLOYS = `
environments:
  production: { target: { command: node app.js } }
  staging: { target: { command: node app.js } }
build:
  script: echo build
deploy_prod:
  needs: [build]
  deploy: { environment: production }
`;

test('environment secrets go only to deploy jobs of that environment and win over global ones; the server masks what a runner did not', { timeout: 60_000 }, async () => {
  const server = await testServer({ runner: false, env: {} });
  try {
    const id = await project(server, { 'ferry.yml': DEPLOYS });
    await put(server, id, 'GLOBAL_ONLY', 'global-only-value');
    await put(server, id, 'SHARED', 'global-shared-value');
    assert.equal((await put(server, id, 'SHARED', 'production-shared-value', 'production')).status, 201);
    await put(server, id, 'PROD_ONLY', 'production-only-value', 'production');
    await put(server, id, 'STAGE_ONLY', 'staging-only-value', 'staging');
    const runner = await server.call<{ token: string }>('POST', '/api/runners', { name: 'raw' });

    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${id}/pipelines`, {});
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const l = await server.call<JobLeaseWire>('POST', '/api/runner/lease', { waitMs: 2000 }, runner.body.token);
    assert.equal(l.status, 200);
    const build = l.body;
    assert.equal(build.job.name, 'build');
    assert.deepEqual([...build.secretNames!].sort(), ['GLOBAL_ONLY', 'SHARED']);
    assert.equal(build.variables.SHARED, 'global-shared-value');
    assert.equal(build.variables.PROD_ONLY, undefined);
    // Environment secrets go to the deployed application (the delivery controller's instances),
    // never to a runner: deploy jobs are not leased at all.
    assert.deepEqual(await jobSecrets(server.ctx.db, server.ctx.masterKey, id, 'production'), { GLOBAL_ONLY: 'global-only-value', SHARED: 'production-shared-value', PROD_ONLY: 'production-only-value' });
    // The store function the lease uses, directly.
    assert.deepEqual(await jobSecrets(server.ctx.db, server.ctx.masterKey, id, 'staging'), { GLOBAL_ONLY: 'global-only-value', SHARED: 'global-shared-value', STAGE_ONLY: 'staging-only-value' });

    // A runner that does not mask (old, modified): the server masks, even across two requests.
    const send = (chunks: { stream: string; text: string }[]) =>
      server.call('POST', `/api/runner/jobs/${build.jobId}/logs`, { attempt: build.attempt, chunks: chunks.map((c) => ({ ...c, at: Date.now() })) }, runner.body.token);
    assert.equal((await send([{ stream: 'stdout', text: 'token: global-sh' }])).status, 200);
    assert.equal((await send([{ stream: 'stdout', text: 'ared-value and ' }, { stream: 'stderr', text: `${Buffer.from('global-only-value').toString('base64')}\n` }])).status, 200);
    assert.equal((await send([{ stream: 'stdout', text: 'global-only' }])).status, 200);
    const report = { tests: 1, failures: 1, errors: 0, skipped: 0, timeMs: 1, cases: [{ suite: 's', classname: 'c', name: 'login', timeMs: 1, status: 'failed', message: 'expected global-shared-value' }] };
    assert.equal((await server.call('POST', `/api/runner/jobs/${build.jobId}/reports`, { attempt: build.attempt, kind: 'junit', file: 'junit.xml', report }, runner.body.token)).status, 200);
    // The end of the job flushes what the server held back (a possible start of a secret).
    assert.equal((await server.call('POST', `/api/runner/jobs/${build.jobId}/complete`, { attempt: build.attempt, outcome: { status: 'success', exitCode: 0 } }, runner.body.token)).status, 200);
    const log = (await server.call<string>('GET', `/api/jobs/${build.jobId}/log`)).body;
    assert.equal(log.replace(/\r/g, ''), 'token: [MASKED] and [MASKED]\nglobal-only');
    const stored = await server.ctx.db.query<{ r: string }>('SELECT cases::text AS r FROM test_reports WHERE job_id = $1', [build.jobId]);
    assert.equal(stored.length, 1);
    assert.ok(stored[0].r.includes('expected [MASKED]') && !stored[0].r.includes('global-shared-value'), `reports are masked too: ${stored[0].r}`);
  } finally {
    await server.close();
  }
});

test('the master key file is created 0600 on first start and reused: secrets set before a restart work after it', { timeout: 120_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-secrets-home-'));
  const first = await testServer({ home, env: {} });
  let id: number;
  try {
    assert.equal(first.masterKey.source, 'created');
    assert.equal(statSync(join(home, 'master.key')).mode & 0o777, 0o600);
    id = await project(first, { 'ferry.yml': 'check:\n  script:\n    - test "$S" = "before-the-restart" && echo same-value-after-restart\n' });
    await put(first, id, 'S', 'before-the-restart');
  } finally {
    await first.close();
  }
  const second = await testServer({ home, env: {} });
  try {
    assert.equal(second.masterKey.source, 'file');
    assert.equal(second.masterKey.fingerprint, first.masterKey.fingerprint);
    const token = (await createUserToken(second.ctx.db, 'admin2', 'admin')).token; // the first start's token was for `first` only
    const started = await second.call<{ pipelineId: string }>('POST', `/api/projects/${id}/pipelines`, {}, token);
    assert.equal(started.status, 201);
    let p: { status: string; jobs: { id: string; status: string }[] };
    await waitFor(async () => {
      p = (await second.call<typeof p>('GET', `/api/pipelines/${started.body.pipelineId}`, undefined, token)).body;
      return !['created', 'running'].includes(p.status);
    }, 60_000, 'the pipeline to end');
    const job = p!.jobs[0];
    const log = (await second.call<string>('GET', `/api/jobs/${job.id}/log`, undefined, token)).body;
    assert.equal(job.status, 'success', log);
    assert.match(log, /same-value-after-restart/);
  } finally {
    await second.close();
  }
  // FERRY_MASTER_KEY wins over the key file; a malformed one stops the start.
  const envHome = mkdtempSync(join(tmpdir(), 'ferry-secrets-home-'));
  const withEnv = await testServer({ home: envHome, env: { FERRY_MASTER_KEY: randomBytes(32).toString('hex') }, runner: false });
  try {
    assert.equal(withEnv.masterKey.source, 'env');
    assert.equal(existsSync(join(envHome, 'master.key')), false);
  } finally {
    await withEnv.close();
  }
  await assert.rejects(testServer({ home: envHome, env: { FERRY_MASTER_KEY: 'not-a-key' }, runner: false }), (err: Error) => err instanceof SecretError && !err.message.includes('not-a-key'));
});

test("jobs never see the server's FERRY_MASTER_KEY", { timeout: 60_000 }, async () => {
  const before = process.env.FERRY_MASTER_KEY;
  const key = randomBytes(32).toString('hex');
  process.env.FERRY_MASTER_KEY = key; // the server's own runner inherits the server's environment
  try {
    const server = await testServer({ env: process.env });
    try {
      assert.equal(server.masterKey.source, 'env');
      const id = await project(server, { 'ferry.yml': 'peek:\n  script:\n    - echo "key=[${FERRY_MASTER_KEY:-}]"\n' });
      const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${id}/pipelines`, {});
      const { log } = await jobLog(server, started.body.pipelineId, 'peek');
      assert.match(log, /key=\[\]/);
      assert.ok(!log.includes(key));
    } finally {
      await server.close();
    }
  } finally {
    if (before === undefined) delete process.env.FERRY_MASTER_KEY;
    else process.env.FERRY_MASTER_KEY = before;
  }
});

test('a sealed value copied to another secret does not decrypt, and the job fails saying which secret', { timeout: 60_000 }, async () => {
  const server = await testServer({ env: {} });
  try {
    const id = await project(server, { 'ferry.yml': 'use:\n  script: echo "should not run"\n' });
    const key = server.ctx.masterKey!;
    await setSecret(server.ctx.db, key, { projectId: id, name: 'A', value: 'value-of-a' });
    await setSecret(server.ctx.db, key, { projectId: id, name: 'B', value: 'value-of-b' });
    assert.deepEqual(await jobSecrets(server.ctx.db, key, id), { A: 'value-of-a', B: 'value-of-b' });
    await server.ctx.db.query("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'A') WHERE name = 'B'");
    await assert.rejects(jobSecrets(server.ctx.db, key, id), (err: Error) => err instanceof SecretError && err.code === 'decrypt-failed' && err.message.includes(`${id}//B`) && !err.message.includes('value-of'));

    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${id}/pipelines`, {});
    const { log, status, failureReason } = await jobLog(server, started.body.pipelineId, 'use');
    assert.equal(status, 'failed');
    assert.equal(failureReason, 'unmet_prerequisites');
    assert.match(log, /cannot give this job its secrets: cannot decrypt the secret for \d+\/\/B/);
    assert.doesNotMatch(log, /should not run|value-of/);
  } finally {
    await server.close();
  }
});

test('the secrets API: roles, validation, delete; values never in a response', { timeout: 60_000 }, async () => {
  const server = await testServer({ runner: false, env: {} });
  try {
    const id = await project(server, { 'ferry.yml': 'a:\n  script: "true"\n' });
    const dev = (await server.call<{ token: string }>('POST', '/api/users', { name: 'dev', role: 'developer' })).body.token;
    const viewer = (await server.call<{ token: string }>('POST', '/api/users', { name: 'view', role: 'viewer' })).body.token;
    const created = await put(server, id, 'API_KEY', 'api-key-value-123');
    assert.equal(created.status, 201);
    assert.ok(!JSON.stringify(created.body).includes('api-key-value-123'));
    assert.equal((await put(server, id, 'API_KEY', 'x-value', undefined, dev)).status, 403, 'developers cannot write secrets');
    assert.equal((await server.call('GET', `/api/projects/${id}/secrets`, undefined, dev)).status, 200, 'developers can list them');
    assert.equal((await server.call('GET', `/api/projects/${id}/secrets`, undefined, viewer)).status, 403);
    assert.equal((await server.call('GET', `/api/projects/${id}/secrets`, undefined, null as never)).status, 401);

    for (const [name, value, env, re] of [
      ['lower', 'some-value', undefined, /upper-case letters/],
      ['FERRY_TOKEN', 'some-value', undefined, /reserved/],
      ['OK_NAME', 'x'.repeat(70_000), undefined, /at most 65536 bytes/],
      ['OK_NAME', 'a\u0000b-value', undefined, /NUL/],
      ['OK_NAME', 'some-value', 'prod env!', /invalid environment/],
    ] as const) {
      const r = await put(server, id, name, value, env);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.message!, re);
      assert.ok(!r.body.message!.includes(value), 'the message never repeats the value');
    }
    assert.equal((await put(server, 999, 'OK_NAME', 'some-value')).status, 404);

    assert.equal((await server.call('DELETE', `/api/projects/${id}/secrets/API_KEY?environment=production`)).status, 404, 'only the named environment');
    assert.equal((await server.call('DELETE', `/api/projects/${id}/secrets/API_KEY`, undefined, dev)).status, 403);
    assert.equal((await server.call('DELETE', `/api/projects/${id}/secrets/API_KEY`)).status, 200);
    assert.deepEqual((await server.call('GET', `/api/projects/${id}/secrets`)).body, []);

    const openapi = await server.call<{ paths: Record<string, Record<string, { tags: string[]; summary: string }>> }>('GET', '/api/openapi.json');
    const ops = Object.entries(openapi.body.paths ?? {}).filter(([p]) => p.includes('/secrets')).flatMap(([, o]) => Object.values(o));
    assert.equal(openapi.status, 200);
    assert.equal(ops.length, 3);
    for (const o of ops) assert.ok(o.tags.includes('secrets') && o.summary);
  } finally {
    await server.close();
  }
});

test('ferry secret set reads the value from standard input; list shows names only; rm deletes', { timeout: 60_000 }, async () => {
  const server = await testServer({ runner: false, env: {} });
  try {
    const id = await project(server, { 'ferry.yml': 'a:\n  script: "true"\n' });
    const ferry = (args: string[], input = '') => ferryCli(['secret', ...args, '--project', String(id), '--server', server.url, '--token', server.token], { input });
    const set = await ferry(['set', 'DB_PASSWORD'], 'from-stdin-value\n');
    assert.equal(set.status, 0, set.stderr);
    assert.match(set.stderr, /DB_PASSWORD created/);
    const scoped = await ferry(['set', 'DB_PASSWORD', '--env', 'production'], 'line one\nline two\n');
    assert.equal(scoped.status, 0, scoped.stderr);
    assert.deepEqual(await jobSecrets(server.ctx.db, server.ctx.masterKey, id, 'production'), { DB_PASSWORD: 'line one\nline two' });
    assert.deepEqual(await jobSecrets(server.ctx.db, server.ctx.masterKey, id), { DB_PASSWORD: 'from-stdin-value' }, 'one trailing newline is dropped');
    const list = await ferry(['list']);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /DB_PASSWORD\s+\(every job\)/);
    assert.match(list.stdout, /DB_PASSWORD\s+production/);
    assert.ok(!list.stdout.includes('from-stdin-value'));
    assert.equal((await ferry(['set', 'DB_PASSWORD'], '')).status, 64, 'an empty value is refused');
    const bad = await ferry(['set', 'bad-name'], 'value');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /invalid secret name/);
    assert.equal((await ferry(['rm', 'DB_PASSWORD', '--env', 'production'])).status, 0);
    assert.deepEqual((await jobSecrets(server.ctx.db, server.ctx.masterKey, id, 'production')), { DB_PASSWORD: 'from-stdin-value' });
  } finally {
    await server.close();
  }
});
