import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunEvent } from '../../src/pipeline/events.js';
import { ingestJournals, journalDir, JournalWriter } from '../../src/store/journal.js';
import { findJob } from '../../src/store/jobs.js';
import { takeLocalPipelineNumber } from '../../src/store/numbers.js';
import { getPipeline, listPipelines } from '../../src/store/pipelines.js';
import { RunRecorder } from '../../src/store/recorder.js';
import { forEachDb, tempHome } from './helpers.js';
import { runFixture } from './fixtures.js';

const withNumber = (events: RunEvent[], number: number): RunEvent[] =>
  events.map((e) => (e.type === 'pipeline.started' ? { ...e, number } : e));

forEachDb('a number taken before the run is kept unless already used', async (ctx) => {
  const rec = new RunRecorder(ctx.db);
  const [a, b, c, d] = [runFixture('/src/app'), runFixture('/src/app'), runFixture('/src/app'), runFixture('/src/app')];
  assert.equal((await rec.apply(withNumber(a.events, 5))).started[0]!.number, 5);
  assert.equal((await rec.apply(b.events)).started[0]!.number, 6, 'numbering continues after a wanted number');
  assert.equal((await rec.apply(withNumber(c.events, 6))).started[0]!.number, 7, 'a used number is not reused');
  assert.equal((await rec.apply(withNumber(d.events, 3))).started[0]!.number, 3, 'a free lower number is kept too');
  assert.deepEqual((await listPipelines(ctx.db, { project: '/src/app' })).map((p) => p.number), [7, 6, 5, 3]);
});

test('local pipeline numbers are sequential per project across concurrent callers', async (t) => {
  const home = await tempHome();
  t.after(() => rm(home, { recursive: true, force: true }));
  const got = await Promise.all(Array.from({ length: 8 }, () => takeLocalPipelineNumber(home, '/src/app')));
  assert.deepEqual(got.sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(await takeLocalPipelineNumber(home, '/src/other'), 1);
});

forEachDb('journals are ingested in order; an abandoned one is closed with its jobs failed', async (ctx) => {
  // (On PostgreSQL the journal still lives in a local home folder.)
  const home = ctx.home ?? (await tempHome());
  const f = runFixture('/src/app');
  const done = new JournalWriter(home);
  for (const e of f.events) done.push(e);
  done.close();
  const later = new JournalWriter(home);
  for (const e of f.playDeploy) later.push(e);
  later.close();
  // A run killed mid-way: no end line, a torn last line, and a writer pid that is not alive.
  const g = runFixture('/src/app');
  const cut = g.events.findIndex((e) => e.type === 'job.state' && e.status === 'running' && e.attempt === 1) + 1;
  const lines = [{ type: 'journal.header', version: 1, pid: 2 ** 22 + 4321, at: Date.now() }, ...g.events.slice(0, cut)];
  await writeFile(join(journalDir(home), `${'9'.repeat(15)}-1.ndjson`), lines.map((l) => JSON.stringify(l)).join('\n') + '\n{"type":"job.lo');

  const r = await ingestJournals(ctx.db, home);
  assert.deepEqual(r, { files: 3, events: f.events.length + f.playDeploy.length + cut + 6, live: 0 });
  assert.deepEqual(await readdir(journalDir(home)), []);
  assert.equal((await getPipeline(ctx.db, { id: f.pipelineId }))?.status, 'success');
  const abandoned = await getPipeline(ctx.db, { id: g.pipelineId });
  assert.equal(abandoned?.status, 'failed');
  assert.deepEqual(abandoned?.jobs.map((j) => j.status), ['failed', 'canceled', 'canceled', 'canceled']);
  assert.equal((await findJob(ctx.db, g.pipelineId, 'build'))?.failureReason, 'runner_system_failure');
  assert.deepEqual(await ingestJournals(ctx.db, home), { files: 0, events: 0, live: 0 });
  if (!ctx.home) await rm(home, { recursive: true, force: true });
});
