// Pipeline schedules against a real server: a per-second cron starts pipelines with the source
// `schedule` (rules on FERRY_PIPELINE_SOURCE see it), bad crons and time zones are refused with
// a message, a deleted schedule fires no more, slots missed while no server ran make one
// pipeline, and two replicas on one PostgreSQL make one pipeline per slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Pg from 'pg';
import { makeRepo } from '../helpers/repo.js';
import { ferryCli, waitFor } from '../helpers/procs.js';
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

test('a schedule is edited, paused, resumed and run now; bad edits are refused with a message', { timeout: 120_000 }, async () => {
  await withProject({}, undefined, async (server, project) => {
    const path = `/api/projects/${project}/schedules`;
    const made = await server.call<ScheduleJson & { active: boolean }>('POST', path, { cron: '*/1 * * * * *', timezone: 'UTC', variables: { SUITE: 'full' } });
    assert.equal(made.status, 201);
    assert.equal(made.body.active, true);
    const one = `${path}/${made.body.id}`;

    // Paused: it keeps its settings and fires no more.
    await waitFor(async () => (await scheduledPipelines(server, project)).length > 0, 20_000, 'a scheduled pipeline');
    const paused = await server.call<ScheduleJson & { active: boolean; variables: Record<string, string> }>('PATCH', one, { active: false });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.active, false);
    assert.deepEqual(paused.body.variables, { SUITE: 'full' });
    const before = (await scheduledPipelines(server, project)).length;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await scheduledPipelines(server, project)).length, before, 'no pipeline while paused');

    // Edited while paused: a yearly cron; then resumed, its next run is that cron's next match.
    const edited = await server.call<ScheduleJson & { active: boolean; description: string }>('PATCH', one, { cron: '0 0 1 1 *', timezone: 'Europe/Paris', description: 'new year', variables: { SUITE: 'smoke' } });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    assert.equal(edited.body.cron, '0 0 1 1 *');
    assert.equal(edited.body.timezone, 'Europe/Paris');
    assert.equal(edited.body.description, 'new year');
    assert.equal(edited.body.active, false, 'an edit does not resume it');
    const resumed = await server.call<ScheduleJson & { active: boolean }>('PATCH', one, { active: true });
    assert.equal(resumed.body.active, true);
    const next = new Date(resumed.body.nextRunAt);
    assert.ok(next.getTime() > Date.now() && next.getTime() - Date.now() <= 366 * 24 * 3600_000, `next run ${resumed.body.nextRunAt}`);
    assert.equal(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', day: 'numeric', month: 'numeric', hour: 'numeric', minute: 'numeric' }).format(next), '01/01, 00:00');

    // Run now: a pipeline as its next run would make, from the person who asked; its times stay.
    const ran = await server.call<{ pipelineId: string; number: number }>('POST', `${one}/run`);
    assert.equal(ran.status, 201, JSON.stringify(ran.body));
    const p = await server.waitPipeline(ran.body.pipelineId);
    assert.equal(p.status, 'success');
    assert.deepEqual(p.jobs.map((j) => j.name), ['nightly']);
    assert.match((await server.call<string>('GET', `/api/jobs/${p.jobs[0]!.id}/log`)).body, /source=schedule suite=smoke by=admin/);
    const [listed] = (await server.call<ScheduleJson[]>('GET', path)).body;
    assert.equal(listed!.nextRunAt, resumed.body.nextRunAt, 'running it now does not move its next run');

    // Back to the repository's HEAD: branch null.
    assert.equal((await server.call<ScheduleJson>('PATCH', one, { branch: 'main' })).body.branch, 'main');
    assert.equal((await server.call<ScheduleJson>('PATCH', one, { branch: null })).body.branch, null);

    const refused: [body: Record<string, unknown>, status: number, message: RegExp][] = [
      [{ cron: 'every day at noon' }, 400, /^bad cron `every day at noon`/],
      [{ timezone: 'Mars/Olympus' }, 400, /`Mars\/Olympus` is not a time zone/],
      [{ branch: 'no-such-branch' }, 400, /no branch or tag `no-such-branch`/],
      [{ branch: '--upload-pack=x' }, 400, /branch/],
      [{}, 400, /fewer than 1 properties|must NOT have fewer/],
      [{ activ: false }, 400, /nothing to change: give any of cron, timezone, branch, variables, description, active/],
    ];
    for (const [body, status, message] of refused) {
      const r = await server.call<{ message: string }>('PATCH', one, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(r.body.message, message, JSON.stringify(body));
    }
    const unchanged = (await server.call<ScheduleJson[]>('GET', path)).body[0]!;
    assert.equal(unchanged.cron, '0 0 1 1 *', 'a refused edit changes nothing');
    assert.equal(unchanged.timezone, 'Europe/Paris');
    assert.equal((await server.call('PATCH', `${path}/999`, { active: false })).status, 404);
    assert.equal((await server.call('POST', `${path}/999/run`)).status, 404);
  });
});

test('ferry schedule add, edit, pause, list, resume, run and remove', { timeout: 120_000 }, async () => {
  await withProject({}, undefined, async (server, project) => {
    const ferry = (...args: string[]) => ferryCli(['schedule', ...args, '--project', String(project), '--server', server.url, '--token', server.token]);
    const added = await ferry('add', '0 3 * * *', '--timezone', 'UTC', '-v', 'SUITE=full');
    assert.equal(added.status, 0, added.stderr);
    const id = /Schedule (\d+) added/.exec(added.stdout)![1]!;
    const edited = await ferry('edit', id, '--cron', '30 4 * * *', '--branch', 'main', '-v', 'SUITE=smoke', '--description', 'early');
    assert.equal(edited.status, 0, edited.stderr);
    assert.match(edited.stdout, new RegExp(`Schedule ${id}: \`30 4 \\* \\* \\*\` \\(UTC\\) on main; next run \\d{4}-\\d\\d-\\d\\d 04:30:00 UTC`));
    assert.equal((await ferry('pause', id)).stderr, `Schedule ${id} paused.\n`);
    const list = await ferry('list');
    assert.match(list.stdout, /30 4 \* \* \*\s+UTC\s+main\s+paused\s+not yet\s+early/);
    assert.match((await ferry('resume', id)).stderr, new RegExp(`Schedule ${id} resumed; next run .* 04:30:00 UTC`));
    const ran = await ferry('run', id);
    assert.equal(ran.status, 0, ran.stderr);
    const pipelineId = /Pipeline #\d+ started \((.+)\)/.exec(ran.stdout)![1]!;
    const p = await server.waitPipeline(pipelineId);
    assert.match((await server.call<string>('GET', `/api/jobs/${p.jobs[0]!.id}/log`)).body, /source=schedule suite=smoke/);
    const cleared = await ferry('edit', id, '--default-branch', '--no-vars');
    assert.equal(cleared.status, 0, cleared.stderr);
    assert.match(cleared.stdout, /on the default branch/);
    const [s] = (await server.call<{ branch: string | null; variables: Record<string, string> }[]>('GET', `/api/projects/${project}/schedules`)).body;
    assert.deepEqual([s!.branch, s!.variables], [null, {}]);

    const nothing = await ferry('edit', id);
    assert.equal(nothing.status, 64, 'a usage error');
    assert.match(nothing.stderr, /nothing to change/);
    const bad = await ferry('edit', id, '--cron', 'soon');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /bad cron `soon`/);
    assert.equal((await ferry('remove', id)).status, 0);
    assert.equal((await ferry('pause', id)).status !== 0, true, 'a removed schedule cannot be paused');
  });
});
