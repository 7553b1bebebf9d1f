// ferry server end to end: real HTTP on loopback, real git repositories, the in-process runner
// talking the runner protocol like a remote one, real job processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { makeRepo } from '../helpers/repo.js';
import { processesWith, waitFor } from '../helpers/procs.js';
import { PG_URL } from '../store/helpers.js';
import { testServer } from './harness.js';

const PIPELINE = `
stages: [build, test, package]
build:
  stage: build
  script: [mkdir -p out, echo "built for $GREETING" > out/app.txt]
  artifacts: { paths: [out/] }
unit:
  stage: test
  cache: { key: deps, paths: [.deps/] }
  script:
    - cat out/app.txt
    - printf '%s' '<testsuite name="s"><testcase classname="c" name="ok"/><testcase classname="c" name="bad"><failure message="boom"/></testcase></testsuite>' > junit.xml
  reports: { junit: junit.xml }
  allow_failure: true
package:
  stage: package
  when: manual
  script: [cat out/app.txt, echo packaged]
`;

for (const engine of ['pglite', 'postgres'] as const) {
  test(`a pipeline started through the API runs on the in-process runner [${engine}]`, { skip: engine === 'postgres' && !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 120_000 }, async () => {
    const server = await testServer({ postgres: engine === 'postgres' });
    try {
      const repo = makeRepo({ 'ferry.yml': PIPELINE });
      const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
      assert.equal(project.status, 201);
      const started = await server.call<{ pipelineId: string; number: number }>('POST', `/api/projects/${project.body.id}/pipelines`, { variables: { GREETING: 'the API' } });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      assert.equal(started.body.number, 1);
      const p = await server.waitPipeline(started.body.pipelineId);
      assert.equal(p.status, 'success', JSON.stringify(p));
      const byName = Object.fromEntries(p.jobs.map((j) => [j.name, j]));
      assert.equal(byName.build.status, 'success');
      assert.equal(byName.package.status, 'manual');
      const log = await server.call<string>('GET', `/api/jobs/${byName.unit.id}/log`);
      assert.match(log.body, /built for the API/, 'artifacts and variables travel through the runner protocol');
      // Play the manual job: it gets the build's artifacts too.
      assert.equal((await server.call('POST', `/api/jobs/${byName.package.id}/play`)).status, 200);
      await waitFor(async () => (await server.call<{ jobs: { name: string; status: string }[] }>('GET', `/api/pipelines/${started.body.pipelineId}`)).body.jobs.find((j) => j.name === 'package')!.status === 'success', 30_000, 'package to pass');
      assert.match((await server.call<string>('GET', `/api/jobs/${byName.package.id}/log`)).body, /packaged/);
      const history = await server.call<{ number: number; status: string }[]>('GET', `/api/projects/${project.body.id}/pipelines`);
      assert.equal(history.body[0].number, 1);
    } finally {
      await server.close();
    }
  });
}

test('a job log follows live over SSE, in order, to its end', { timeout: 60_000 }, async () => {
  const server = await testServer();
  try {
    const repo = makeRepo({ 'ferry.yml': 'slow:\n  script:\n    - for i in $(seq 1 20); do echo "line $i"; sleep 0.05; done\n' });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    const pipeline = await server.call<{ jobs: { id: string }[] }>('GET', `/api/pipelines/${started.body.pipelineId}`);
    const res = await fetch(`${server.url}/api/jobs/${pipeline.body.jobs[0].id}/log?follow=1`, { headers: { authorization: `Bearer ${server.token}` } });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    let raw = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) raw += decoder.decode(chunk, { stream: true });
    const events = raw.split('\n\n').filter((b) => b.startsWith('event:'));
    assert.match(events.at(-1)!, /^event: end\ndata: .*"status":"success"/);
    const text = events.filter((e) => e.startsWith('event: log')).map((e) => JSON.parse(e.split('\ndata: ')[1]).text).join('');
    const lines = text.split('\n').filter((l) => l.startsWith('line '));
    assert.deepEqual(lines, Array.from({ length: 20 }, (_, i) => `line ${i + 1}`));
  } finally {
    await server.close();
  }
});

test('cancel stops a running job within about a second and leaves no process', { timeout: 60_000 }, async () => {
  const server = await testServer({ leaseMs: 3000 });
  const marker = `ferry-server-cancel-${randomUUID()}`;
  try {
    const repo = makeRepo({ 'ferry.yml': `long:\n  script: exec -a ${marker} sleep 300\nnext:\n  needs: [long]\n  script: "true"\n` });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    await waitFor(() => processesWith(marker).length > 0, 20_000, 'the job to start');
    const t0 = Date.now();
    assert.equal((await server.call('POST', `/api/pipelines/${started.body.pipelineId}/cancel`)).status, 200);
    await waitFor(() => processesWith(marker).length === 0, 5000, 'the job process to stop');
    const stoppedIn = Date.now() - t0;
    const p = await server.waitPipeline(started.body.pipelineId);
    assert.equal(p.status, 'canceled');
    assert.deepEqual(p.jobs.map((j) => j.status), ['canceled', 'canceled']);
    assert.ok(stoppedIn < 5000, `stopped in ${stoppedIn} ms`);
  } finally {
    await server.close();
  }
});

test('a pipeline its workflow rules leave out is refused with why (422), not an internal error', async () => {
  const server = await testServer({ runner: false });
  try {
    const repo = makeRepo({ 'ferry.yml': 'workflow:\n  rules:\n    - if: $FERRY_PIPELINE_SOURCE == "push"\nbuild:\n  script: echo\n' });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const r = await server.call<{ error: string; message: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.error, 'no_pipeline');
    assert.match(r.body.message, /no workflow rule matches this trigger/);
  } finally {
    await server.close();
  }
});

test('an invalid ferry.yml is refused with every issue and its position (422)', async () => {
  const server = await testServer({ runner: false });
  try {
    const repo = makeRepo({ 'ferry.yml': 'build:\n  scirpt: echo\n' });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const r = await server.call<{ issues: { pos: { line: number }; code: string }[] }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    assert.equal(r.status, 422);
    assert.ok(r.body.issues.some((i) => i.code === 'unknown-key' && i.pos.line === 2));
    const bad = await server.call('POST', '/api/projects', { path: '/nonexistent/repo' });
    assert.equal(bad.status, 400);
  } finally {
    await server.close();
  }
});
