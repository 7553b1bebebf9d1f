// Pipeline schedules against a real server: a per-second cron starts pipelines with the source
// `schedule` (rules on FERRY_PIPELINE_SOURCE see it), bad crons and time zones are refused with
// a message, a deleted schedule fires no more, slots missed while no server ran make one
// pipeline, and two replicas on one PostgreSQL make one pipeline per slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Pg from 'pg';
import { makeRepo } from '../helpers/repo.js';
import { waitFor } from '../helpers/procs.js';
import { createSchema, PG_URL } from '../store/helpers.js';
import { testServer, type TestServer } from './harness.js';

const PIPELINE = `
nightly:
  rules: [{ if: '$FERRY_PIPELINE_SOURCE == "schedule"' }]
  script: echo "source=$CI_PIPELINE_SOURCE suite=$SUITE by=$FERRY_TRIGGERED_BY"
by-hand:
  rules: [{ if: '$FERRY_PIPELINE_SOURCE != "schedule"' }]
  script: echo not scheduled
`;

interface ScheduleJson {
  id: number;
  cron: string;
  timezone: string;
  branch: string | null;
  createdAt: string;
  nextRunAt: string;
  lastRunAt: string | null;
  lastPipelineId: string | null;
  lastPipeline: { number: number; status: string } | null;
  lastError: string | null;
}

async function addProject(server: TestServer, files: Record<string, string> = { 'ferry.yml': PIPELINE }): Promise<number> {
  const repo = makeRepo(files);
  const p = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
  assert.ok(p.status === 201 || p.status === 200, JSON.stringify(p.body));
  return p.body.id;
}

/** A server (closed after `fn`) with one project. */
async function withProject(opts: Parameters<typeof testServer>[0], files: Record<string, string> | undefined, fn: (server: TestServer, project: number) => Promise<void>): Promise<void> {
  const server = await testServer(opts);
  try {
    await fn(server, await addProject(server, files));
  } finally {
    await server.close();
  }
}

async function scheduledPipelines(server: TestServer, project: number): Promise<{ id: string; number: number; source: string; createdAt: string }[]> {
  const r = await server.call<{ id: string; number: number; source: string; createdAt: string }[]>('GET', `/api/projects/${project}/pipelines?limit=200`);
  return r.body.filter((p) => p.source === 'schedule');
}

test('a per-second schedule starts pipelines with source schedule; deleting it stops them', { timeout: 120_000 }, async () => {
  await withProject({}, undefined, async (server, project) => {
    const made = await server.call<ScheduleJson>('POST', `/api/projects/${project}/schedules`, { cron: '*/1 * * * * *', timezone: 'utc', branch: 'main', variables: { SUITE: 'full' }, description: 'every second' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.timezone, 'UTC', 'the time zone is stored by its canonical name');
    assert.ok(Date.parse(made.body.nextRunAt) - Date.now() <= 1000);

    await waitFor(async () => (await scheduledPipelines(server, project)).length > 0, 20_000, 'a scheduled pipeline');
    const [first] = await scheduledPipelines(server, project);
    const p = await server.waitPipeline(first!.id);
    assert.equal(p.status, 'success');
    assert.deepEqual(p.jobs.map((j) => j.name), ['nightly'], 'rules on FERRY_PIPELINE_SOURCE see the schedule');
    const log = (await server.call<string>('GET', `/api/jobs/${p.jobs[0]!.id}/log`)).body;
    assert.match(log, /source=schedule suite=full by=admin/);

    const [listed] = (await server.call<ScheduleJson[]>('GET', `/api/projects/${project}/schedules`)).body;
    assert.equal(listed!.id, made.body.id);
    assert.ok(listed!.lastPipeline && listed!.lastRunAt && listed!.lastError === null, JSON.stringify(listed));
    assert.ok(Date.parse(listed!.nextRunAt) > Date.parse(listed!.lastRunAt!));

    assert.equal((await server.call('DELETE', `/api/projects/${project}/schedules/${made.body.id}`)).status, 200);
    const after = (await scheduledPipelines(server, project)).length;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await scheduledPipelines(server, project)).length, after, 'no pipeline after the delete');
    assert.equal((await server.call('DELETE', `/api/projects/${project}/schedules/${made.body.id}`)).status, 404);
  });
});

test('bad crons, time zones and branches are refused with a message that says why', { timeout: 60_000 }, async () => {
  await withProject({ runner: false }, undefined, async (server, project) => {
    const refused: [body: Record<string, string>, message: RegExp][] = [
      [{ cron: 'every day at noon' }, /^bad cron `every day at noon`: .+; five fields \(minute hour day-of-month month day-of-week\), or six with seconds first/],
      [{ cron: '0 0 30 2 *' }, /bad cron `0 0 30 2 \*`: it never/],
      [{ cron: '0 3 * * *', timezone: 'Mars/Olympus' }, /`Mars\/Olympus` is not a time zone: use an IANA name/],
      [{ cron: '0 3 * * *', branch: 'no-such-branch' }, /no branch or tag `no-such-branch`/],
      // never an option to git
      [{ cron: '0 3 * * *', branch: '--upload-pack=x' }, /pattern/],
    ];
    for (const [body, message] of refused) {
      const r = await server.call<{ message: string }>('POST', `/api/projects/${project}/schedules`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.message, message);
    }
    assert.equal((await server.call<ScheduleJson[]>('GET', `/api/projects/${project}/schedules`)).body.length, 0);
  });
});

test('slots missed while no server ran make one pipeline, and the next run is counted from now', { timeout: 60_000 }, async () => {
  await withProject({ runner: false }, undefined, async (server, project) => {
    const made = await server.call<ScheduleJson>('POST', `/api/projects/${project}/schedules`, { cron: '0 * * * *' });
    assert.equal(made.status, 201);
    // As if the server had been down for three days: 72 hourly slots missed.
    await server.ctx.db.query("UPDATE schedules SET next_run_at = now() - interval '3 days' WHERE id = $1", [made.body.id]);
    await waitFor(async () => (await scheduledPipelines(server, project)).length > 0, 10_000, 'the catch-up run');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await scheduledPipelines(server, project)).length, 1, 'one run, not one per missed slot');
    const [s] = (await server.call<ScheduleJson[]>('GET', `/api/projects/${project}/schedules`)).body;
    assert.ok(Date.parse(s!.nextRunAt) > Date.now(), `next run ${s!.nextRunAt} is in the future`);
  });
});

test('a schedule whose branch has no ferry.yml says so instead of making a pipeline', { timeout: 60_000 }, async () => {
  await withProject({ runner: false }, { 'README.md': 'no pipeline here\n' }, async (server, project) => {
    const made = await server.call<ScheduleJson>('POST', `/api/projects/${project}/schedules`, { cron: '*/1 * * * * *' });
    assert.equal(made.status, 201);
    let s: ScheduleJson | undefined;
    await waitFor(async () => Boolean((s = (await server.call<ScheduleJson[]>('GET', `/api/projects/${project}/schedules`)).body[0])?.lastError), 10_000, 'the failed run');
    assert.match(s!.lastError!, /no ferry\.yml/);
    assert.equal((await scheduledPipelines(server, project)).length, 0);
  });
});

test('two server replicas on one PostgreSQL make one pipeline per slot', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 120_000 }, async () => {
  const schema = await createSchema();
  // Both replicas fire schedules; neither runs jobs (the pipelines are only counted).
  const a = await testServer({ databaseUrl: schema.url, runner: false });
  const b = await testServer({ databaseUrl: schema.url, runner: false });
  try {
    const project = await addProject(a);
    const made = await a.call<ScheduleJson>('POST', `/api/projects/${project}/schedules`, { cron: '*/1 * * * * *' });
    assert.equal(made.status, 201);
    const from = Date.parse(made.body.createdAt);
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal((await a.call('DELETE', `/api/projects/${project}/schedules/${made.body.id}`)).status, 200);
    const to = Date.now();
    const slots = Math.floor(to / 1000) - Math.floor(from / 1000);
    const fired = await scheduledPipelines(a, project);
    assert.ok(fired.length <= slots, `${fired.length} pipelines for ${slots} slots: a slot fired twice`);
    // A loaded machine fires slots late, and the next one is counted from the late run, so some
    // slots are skipped; the pipelines still come about once a second.
    assert.ok(fired.length >= slots / 2, `${fired.length} pipelines for ${slots} slots: slots were missed`);
    // Each pipeline records the slot it is for: no slot made two (fired by both replicas).
    const pg = new Pg.Client({ connectionString: schema.url });
    await pg.connect();
    const rows = await pg.query<{ at: string }>(`SELECT variables->>'FERRY_SCHEDULED_AT' AS at FROM pipelines WHERE source = 'schedule'`).finally(() => pg.end());
    const at = rows.rows.map((r) => r.at);
    assert.equal(at.length, fired.length);
    assert.ok(at.every((t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/.test(t)), `slots: ${at.join(', ')}`);
    assert.equal(new Set(at).size, at.length, `slots fired: ${at.sort().join(', ')}`);
  } finally {
    await b.close();
    await a.close();
    await schema.drop();
  }
});
