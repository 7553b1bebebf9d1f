// Numbered log batches through the real server: a runner has two in flight, so they can arrive
// out of order; the server records them in their order, a batch sent twice once, and a malformed
// body is refused. The runner's real transport sends them (the binary wire form).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobLeaseWire } from '../../src/runner/protocol.js';
import { LOG_BATCH_TYPE } from '../../src/runner/log-batch.js';
import { RunnerTransport } from '../../src/runner/transport.js';
import { makeRepo } from '../helpers/repo.js';
import { createSchema, PG_URL } from '../store/helpers.js';
import { testServer, type TestServer } from './harness.js';

test('batches are recorded in their order whatever order they arrive in, and once each', { timeout: 60_000 }, async () => {
  const server = await testServer({ runner: false });
  try {
    await outOfOrder(server, server);
  } finally {
    await server.close();
  }
});

test('two replicas on one PostgreSQL: a batch on one waits for the batch before it on the other', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 60_000 }, async () => {
  const schema = await createSchema();
  const a = await testServer({ databaseUrl: schema.url, runner: false });
  const b = await testServer({ databaseUrl: schema.url, runner: false });
  try {
    await outOfOrder(a, b);
  } finally {
    await b.close();
    await a.close();
    await schema.drop();
  }
});

/** Batch 2 goes to `second` before batch 1 goes to `first`; then a repeat, a wide batch, a bad body. */
async function outOfOrder(first: TestServer, second: TestServer): Promise<void> {
  const repo = makeRepo({ 'ferry.yml': 'talk:\n  script: echo hi\n' });
  const project = await first.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
  const runner = await first.call<{ token: string }>('POST', '/api/runners', { name: 'r' });
  await first.call('POST', `/api/projects/${project.body.id}/pipelines`, {});
  const l = (await first.call<JobLeaseWire>('POST', '/api/runner/lease', { waitMs: 5000 }, runner.body.token)).body;
  const t = new RunnerTransport(first.url, runner.body.token);
  const t2 = new RunnerTransport(second.url, runner.body.token);
  const line = (text: string) => [{ stream: 'stdout' as const, at: Date.now(), text }];

  // Batch 2 first: it waits for batch 1.
  let secondDone = false;
  const later = t2.logs(l.jobId, l.attempt, line('two\n'), 2).then((a) => ((secondDone = true), a));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(secondDone, false, 'batch 2 waits for batch 1');
  const firstAnswer = await t.logs(l.jobId, l.attempt, line('one\n'), 1);
  assert.deepEqual([firstAnswer, await later], [{ accepted: 1 }, { accepted: 1 }]);

  // Batch 1 again (its first answer was lost on the way back, say): not recorded twice.
  assert.deepEqual(await t.logs(l.jobId, l.attempt, line('one\n'), 1), { accepted: 0 });
  // Multi-byte text of several pieces survives the wire and the store (compressed there).
  const wide = 'ü€😀\n'.repeat(40_000);
  assert.ok((await t.logs(l.jobId, l.attempt, line(wide), 3)).accepted > 1, 'the wide text arrives in several pieces');

  // A malformed body says what is wrong.
  const bad = await fetch(`${first.url}/api/runner/jobs/${l.jobId}/logs`, { method: 'POST', headers: { authorization: `Bearer ${runner.body.token}`, 'content-type': LOG_BATCH_TYPE }, body: '{"attempt":1,"chunks":[{"stream":"stdout","at":1,"bytes":50}]}\nshort' });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /chunk 0 says 50 bytes but the body ends 5 bytes on/);

  await t.complete(l.jobId, l.attempt, { status: 'success', exitCode: 0 });
  const log = (await first.call<string>('GET', `/api/jobs/${l.jobId}/log`)).body;
  assert.equal(log, `one\ntwo\n${wide}`);
}
