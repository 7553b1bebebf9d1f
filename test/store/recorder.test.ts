import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { getJob, listAttempts, findJob } from '../../src/store/jobs.js';
import { getJobLog, getLogChunks, timedLines } from '../../src/store/logs.js';
import { openDb } from '../../src/store/open.js';
import {
  getPipeline,
  latestPipeline,
  listPipelines,
  listProjects,
  nextPipelineNumber,
  projectName,
} from '../../src/store/pipelines.js';
import { RunRecorder, planEvents } from '../../src/store/recorder.js';
import { getJobReports, getPipelineReports } from '../../src/store/reports.js';
import type { RunEvent } from '../../src/pipeline/events.js';
import { forEachDb } from './helpers.js';
import { runFixture } from './fixtures.js';
import { test } from 'node:test';

forEachDb('records a realistic run in one batch, then a manual job played by another process', async (ctx) => {
  const f = runFixture();
  const rec = new RunRecorder(ctx.db);
  const result = await rec.apply(f.events);
  assert.deepEqual(result.started.map((s) => s.number), [1]);

  const p = await getPipeline(ctx.db, { id: f.pipelineId });
  assert.ok(p);
  assert.equal(p.number, 1);
  assert.equal(p.status, 'manual');
  assert.equal(p.projectPath, '/home/dev/shop');
  assert.equal(p.projectName, 'shop');
  assert.equal(p.branch, 'main');
  assert.deepEqual(p.variables, { NODE_ENV: 'test' });
  assert.match(p.configText, /script: make/);
  assert.equal(p.startedAt?.getTime(), f.t0);
  assert.ok(p.durationMs && p.durationMs > 0);
  assert.deepEqual(p.jobCounts, { success: 2, failed: 1, manual: 1 });
  assert.equal(p.jobsTotal, 4);
  assert.deepEqual(p.jobs.map((j) => [j.name, j.status, j.attempt]), [
    ['build', 'success', 1],
    ['unit', 'success', 2],
    ['lint', 'failed', 1],
    ['deploy', 'manual', 0],
  ]);
  const [build, unit, lint, deploy] = p.jobs;
  assert.equal(build!.exitCode, 0);
  assert.equal(build!.workspace, '/tmp/ws/build');
  assert.deepEqual(unit!.needs, ['build']);
  assert.deepEqual(unit!.spec, { script: ['npm test'], retry: 1 });
  assert.equal(unit!.failureReason, null);
  assert.ok(unit!.durationMs !== null && unit!.durationMs > 0);
  assert.equal(lint!.allowFailure, true);
  assert.equal(lint!.allowedFailure, true);
  assert.equal(lint!.failureReason, 'script_failure');
  assert.equal(lint!.exitCode, 2);
  assert.equal(deploy!.when, 'manual');
  assert.equal(deploy!.startedAt, null);

  const attempts = await listAttempts(ctx.db, f.jobIds.unit);
  assert.deepEqual(attempts.map((a) => [a.number, a.status, a.exitCode, a.reason]), [
    [1, 'failed', 1, 'script_failure'],
    [2, 'success', 0, null],
  ]);
  assert.ok(attempts.every((a) => a.startedAt && a.finishedAt && a.durationMs! > 0));
  // The job's start is its current attempt's start.
  assert.equal(unit!.startedAt?.getTime(), attempts[1]!.startedAt?.getTime());

  // Logs: chunks split across events come back whole; latest attempt by default.
  assert.deepEqual(await getJobLog(ctx.db, f.jobIds.build), {
    attempt: 1,
    text: '$ make\ncompiling a.c\ncompiling b.c\nwarning: unused\ndone\n',
  });
  assert.deepEqual(await getJobLog(ctx.db, f.jobIds.unit), { attempt: 2, text: 'running tests again\nall passing\n' });
  assert.deepEqual(await getJobLog(ctx.db, f.jobIds.unit, { attempt: 1 }), { attempt: 1, text: 'running tests\n1 failing\n' });
  assert.equal((await getJobLog(ctx.db, f.jobIds.build, { streams: ['stderr'] }))?.text, 'warning: unused\n');
  assert.equal(await getJobLog(ctx.db, f.jobIds.deploy), null);
  // Consecutive output of one stream is one row: system | stdout | stderr | stdout.
  const chunks = await getLogChunks(ctx.db, f.jobIds.build);
  assert.deepEqual(chunks.map((c) => c.stream), ['system', 'stdout', 'stderr', 'stdout']);
  assert.equal(chunks[1]!.text, 'compiling a.c\ncompiling b.c\n');
  const after = await getLogChunks(ctx.db, f.jobIds.build, { afterSeq: chunks[1]!.seq });
  assert.equal(after.length, 2);

  // Reports: current attempt by default, failed cases kept with their message.
  const reports = await getPipelineReports(ctx.db, f.pipelineId);
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.jobName, 'unit');
  assert.equal(reports[0]!.attempt, 2);
  assert.equal(reports[0]!.failures, 0);
  assert.deepEqual(reports[0]!.failedCases, []);
  const all = await getPipelineReports(ctx.db, f.pipelineId, { attempt: 'all' });
  assert.deepEqual(all.map((r) => [r.jobName, r.attempt, r.tests, r.failures, r.skipped]), [
    ['unit', 1, 3, 1, 1],
    ['unit', 2, 3, 0, 1],
  ]);
  assert.equal(all[0]!.failedCases.length, 1);
  assert.equal(all[0]!.failedCases[0]!.name, 'divides');
  assert.equal(all[0]!.failedCases[0]!.message, 'expected 2 got 3\uFFFD');
  assert.equal(all[0]!.reports[0]!.file, 'junit.xml');
  assert.equal(all[0]!.timeMs, 42.5);
  assert.equal((await getJobReports(ctx.db, f.jobIds.unit, { attempt: 1 }))[0]!.failures, 1);

  // Later, another process plays the manual job: a new connection, a new recorder.
  await ctx.db.close();
  const db2 = await openDb(ctx.options);
  try {
    await new RunRecorder(db2).apply(f.playDeploy.slice(0, 2));
    let again = await getPipeline(db2, { project: '/home/dev/shop', number: 1 });
    assert.equal(again?.status, 'running', 'a played job runs the pipeline again');
    assert.equal(again?.finishedAt, null);
    await new RunRecorder(db2).apply(f.playDeploy.slice(2));
    again = await getPipeline(db2, { project: '/home/dev/shop', number: 1 });
    assert.equal(again?.status, 'success');
    const d = await findJob(db2, f.pipelineId, 'deploy');
    assert.equal(d?.status, 'success');
    assert.equal(d?.attempt, 1);
    assert.ok(d?.startedAt && d.finishedAt);
    assert.equal((await getJobLog(db2, f.jobIds.deploy))?.text, 'deploying to staging\n');
  } finally {
    await db2.close();
  }
});

forEachDb('the same run gives the same rows whether recorded in one batch or event by event', async (ctx) => {
  const a = runFixture('/src/a');
  const b = runFixture('/src/b');
  const rec = new RunRecorder(ctx.db);
  await rec.apply(a.events);
  for (const e of b.events) await rec.apply([e]);
  const pa = await getPipeline(ctx.db, { id: a.pipelineId });
  const pb = await getPipeline(ctx.db, { id: b.pipelineId });
  const strip = (p: typeof pa) =>
    p!.jobs.map((j) => ({ ...j, id: j.name, pipelineId: '', startedAt: j.startedAt?.getTime(), finishedAt: j.finishedAt?.getTime() }));
  assert.deepEqual(strip(pb), strip(pa));
  assert.equal(pb!.status, pa!.status);
  assert.equal((await getJobLog(ctx.db, b.jobIds.build))?.text, (await getJobLog(ctx.db, a.jobIds.build))?.text);
  assert.deepEqual(
    (await listAttempts(ctx.db, b.jobIds.unit)).map((x) => [x.number, x.status, x.startedAt?.getTime()]),
    (await listAttempts(ctx.db, a.jobIds.unit)).map((x) => [x.number, x.status, x.startedAt?.getTime()]),
  );
});

forEachDb('numbers pipelines per project; history newest first; latest and next', async (ctx) => {
  const rec = new RunRecorder(ctx.db);
  const base = Date.UTC(2025, 0, 1);
  const runs = [
    runFixture('/src/app', base),
    runFixture('/src/other', base + 60_000),
    runFixture('/src/app', base + 120_000),
    runFixture('https://git.example.com/team/app.git', base + 180_000),
    runFixture('/src/app', base + 240_000),
  ];
  // Two pipelines of one project in one batch, the rest one per batch.
  const r1 = await rec.apply([...runs[0]!.events, ...runs[1]!.events]);
  assert.deepEqual(r1.started.map((s) => s.number), [1, 1]);
  for (const r of runs.slice(2)) await rec.apply(r.events);
  // Replaying a pipeline.started does not create another pipeline.
  const replay = await rec.apply([runs[0]!.events[0]!]);
  assert.deepEqual(replay.started, []);

  const app = await listPipelines(ctx.db, { project: '/src/app' });
  assert.deepEqual(app.map((p) => p.number), [3, 2, 1]);
  assert.deepEqual(app.map((p) => p.id), [runs[4]!.pipelineId, runs[2]!.pipelineId, runs[0]!.pipelineId]);
  assert.deepEqual(app[0]!.jobCounts, { success: 2, failed: 1, manual: 1 });
  assert.ok(app.every((p) => p.durationMs !== null && p.durationMs > 0));

  const everything = await listPipelines(ctx.db);
  assert.deepEqual(everything.map((p) => p.id), [...runs].reverse().map((r) => r.pipelineId));
  assert.deepEqual((await listPipelines(ctx.db, { limit: 2 })).length, 2);
  assert.deepEqual((await listPipelines(ctx.db, { project: '/src/app', beforeNumber: 3 })).map((p) => p.number), [2, 1]);
  assert.deepEqual((await listPipelines(ctx.db, { project: '/src/app', branch: 'dev' })).length, 0);
  assert.deepEqual((await listPipelines(ctx.db, { status: 'manual' })).length, 5);

  assert.equal((await latestPipeline(ctx.db, '/src/app'))?.number, 3);
  assert.equal(await latestPipeline(ctx.db, '/nowhere'), null);
  assert.equal(await nextPipelineNumber(ctx.db, '/src/app'), 4);
  assert.equal(await nextPipelineNumber(ctx.db, '/nowhere'), 1);
  assert.equal((await getPipeline(ctx.db, { project: '/src/app', number: 2 }))?.id, runs[2]!.pipelineId);
  assert.equal(await getPipeline(ctx.db, { project: '/src/app', number: 9 }), null);
  assert.deepEqual((await listProjects(ctx.db)).map((p) => [p.name, p.lastNumber]), [
    ['app', 3],
    ['app', 1],
    ['other', 1],
  ]);
});

forEachDb('a batch with an event about an unknown job fails as a whole', async (ctx) => {
  const f = runFixture();
  const rec = new RunRecorder(ctx.db);
  const bad: RunEvent = { type: 'job.state', at: Date.now(), pipelineId: 'nope', jobId: 'nope:job', status: 'running', attempt: 1 };
  await assert.rejects(rec.apply([...f.events, bad]), /unknown job.*nope:job/);
  assert.equal(await getPipeline(ctx.db, { id: f.pipelineId }), null, 'nothing of the batch is kept');
  await rec.apply(f.events);
  assert.equal((await getPipeline(ctx.db, { id: f.pipelineId }))?.number, 1, 'the failed batch did not use up a number');
});

forEachDb('stores text PostgreSQL would refuse (NUL, lone surrogates)', async (ctx) => {
  const f = runFixture();
  const rec = new RunRecorder(ctx.db);
  await rec.apply(f.events.slice(0, 3));
  await rec.apply([
    { type: 'job.log', at: Date.now(), pipelineId: f.pipelineId, jobId: f.jobIds.build, attempt: 1, stream: 'stdout', text: 'a\u0000b\uD800c😀\n' },
  ]);
  assert.equal((await getJobLog(ctx.db, f.jobIds.build))?.text, 'a\uFFFDb\uFFFDc😀\n');
});

forEachDb('concurrent recorders number one project without gaps or duplicates', async (ctx) => {
  // On PostgreSQL these run on separate pool connections at once; on PGlite they serialise.
  const runs = Array.from({ length: 6 }, () => runFixture('/src/busy'));
  await Promise.all(runs.map((r) => new RunRecorder(ctx.db).apply(r.events)));
  const numbers = (await listPipelines(ctx.db, { project: '/src/busy' })).map((p) => p.number).sort((a, b) => a - b);
  assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6]);
});

test('planEvents coalesces consecutive output per job attempt and stream', () => {
  const p = 'p';
  const ev = (jobId: string, stream: 'stdout' | 'stderr', text: string, attempt = 1): RunEvent => ({ type: 'job.log', at: 1, pipelineId: p, jobId, attempt, stream, text });
  const plan = planEvents([ev('a', 'stdout', '1'), ev('b', 'stdout', 'x'), ev('a', 'stdout', '2'), ev('a', 'stderr', 'E'), ev('a', 'stdout', '3'), ev('a', 'stdout', 'r', 2)]);
  assert.deepEqual(plan.logs.map((l) => [l.jobId, l.attempt, l.stream, l.pieces.join('')]), [
    ['a', 1, 'stdout', '12'],
    ['b', 1, 'stdout', 'x'],
    ['a', 1, 'stderr', 'E'],
    ['a', 1, 'stdout', '3'],
    ['a', 2, 'stdout', 'r'],
  ]);
});

test('projectName', () => {
  assert.equal(projectName('/home/dev/shop'), 'shop');
  assert.equal(projectName('/home/dev/shop/'), 'shop');
  assert.equal(projectName('https://github.com/acme/shop.git'), 'shop');
  assert.equal(projectName('git@github.com:acme/shop.git'), 'shop');
  assert.equal(projectName(randomUUID()).length, 36);
});

void getJob;

forEachDb('coalesced log output keeps the time of every line', async (ctx) => {
  const f = runFixture('/src/timed');
  const rec = new RunRecorder(ctx.db);
  const started = f.events.find((e) => e.type === 'pipeline.started')!;
  const jobId = (started as { jobs: { jobId: string }[] }).jobs[0].jobId;
  const pipelineId = started.pipelineId;
  const log = (at: number, text: string, stream: 'stdout' | 'stderr' = 'stdout') => ({ type: 'job.log' as const, at, pipelineId, jobId, attempt: 1, stream, text });
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
  await rec.apply([
    started,
    { type: 'job.state', at: t0, pipelineId, jobId, status: 'running', attempt: 1 },
    log(t0 + 1, 'first line\nsec'),
    log(t0 + 500, 'ond line\nthird line\n'),
    log(t0 + 900, 'oops\n', 'stderr'),
    log(t0 + 1500, 'last\n'),
  ]);
  const chunks = await getLogChunks(ctx.db, jobId, { attempt: 1 });
  assert.equal(chunks.length, 3, 'stdout pieces in a row are one row');
  const lines = timedLines(chunks).map((l) => [l.at.getTime() - t0, l.stream, l.text]);
  assert.deepEqual(lines, [
    [1, 'stdout', 'first line'],
    [1, 'stdout', 'second line'],
    [500, 'stdout', 'third line'],
    [900, 'stderr', 'oops'],
    [1500, 'stdout', 'last'],
  ]);
});

forEachDb('log rows over 2 KiB are stored compressed, short ones as text, and both read back as written', async (ctx) => {
  const f = runFixture('/src/packed');
  const started = f.events.find((e) => e.type === 'pipeline.started')!;
  const jobId = (started as { jobs: { jobId: string }[] }).jobs[0].jobId;
  const pipelineId = started.pipelineId;
  const log = (at: number, text: string, stream: 'stdout' | 'stderr' = 'stdout') => ({ type: 'job.log' as const, at, pipelineId, jobId, attempt: 1, stream, text });
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
  // Many pieces of one stream (one row of up to 256 Ki characters each), multi-byte text, a NUL
  // (which PostgreSQL text cannot hold), and a short stderr row between.
  const piece = (i: number) => `line ${i}: grüße 😀 ${'x'.repeat(i % 50)}\n`.repeat(200);
  const pieces = Array.from({ length: 60 }, (_, i) => piece(i));
  await new RunRecorder(ctx.db).apply([
    started,
    { type: 'job.state', at: t0, pipelineId, jobId, status: 'running', attempt: 1 },
    ...pieces.map((p, i) => log(t0 + i, p)),
    log(t0 + 100, 'short\0\n', 'stderr'),
    log(t0 + 101, pieces[0]!),
  ]);
  const rows = await ctx.db.query<{ stream: string; text: string; packed: string | null }>('SELECT stream, text, packed FROM job_logs WHERE job_id = $1 ORDER BY seq', [jobId]);
  assert.ok(rows.length >= 4, `${rows.length} rows`);
  for (const r of rows) {
    if (r.stream === 'stderr') assert.deepEqual([r.text, r.packed], ['short\uFFFD\n', null], 'a short row stays text');
    else assert.ok(r.text === '' && r.packed !== null && r.packed.length > 0, 'a long row is packed');
  }
  const stdout = pieces.join('') + pieces[0];
  assert.equal((await getJobLog(ctx.db, jobId, { streams: ['stdout'] }))!.text, stdout);
  assert.equal((await getJobLog(ctx.db, jobId))!.text, `${pieces.join('')}short\uFFFD\n${pieces[0]}`);
  const chunks = await getLogChunks(ctx.db, jobId, { attempt: 1 });
  assert.equal(chunks.map((c) => c.text).join(''), `${pieces.join('')}short\uFFFD\n${pieces[0]}`);
  // Every piece keeps the time it came at.
  const lines = timedLines(chunks).filter((l) => l.stream === 'stdout');
  assert.equal(lines[200]!.at.getTime() - t0, 1, 'the second piece starts at its own time');
});
