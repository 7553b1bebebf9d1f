import assert from 'node:assert/strict';
import { test } from 'node:test';
import { migrate } from '../../src/store/migrate.js';
import { latestVersion, migrations, type Migration } from '../../src/store/migrations/index.js';
import { openDb, type OpenInfo } from '../../src/store/open.js';
import { PostgresDb } from '../../src/store/postgres.js';
import { createSchema, forEachDb, PG_URL } from './helpers.js';

forEachDb('migrations are applied once: opening again and migrating again change nothing', async (ctx) => {
  const rows = await ctx.db.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
  assert.deepEqual(rows, migrations.map((m) => ({ version: m.version, name: m.name })));
  assert.deepEqual(await migrate(ctx.db), { applied: [], version: latestVersion });
  const tableNames = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`;
  const before = (await ctx.db.query<{ table_name: string }>(tableNames)).map((t) => t.table_name);
  await ctx.db.close();
  let info: OpenInfo | undefined;
  const again = await openDb({ ...ctx.options, onOpened: (i) => (info = i) });
  try {
    assert.deepEqual(info?.applied, []);
    assert.equal(info?.how, ctx.kind === 'pglite' ? 'existing' : 'postgres');
    const after = (await again.query<{ table_name: string }>(tableNames)).map((t) => t.table_name);
    assert.deepEqual(after, before);
    for (const t of ['job_attempts', 'job_logs', 'jobs', 'pipelines', 'projects', 'schema_migrations', 'test_reports']) assert.ok(after.includes(t), t);
  } finally {
    await again.close();
  }
});

forEachDb('a later migration is applied on top; a failing one rolls back entirely', async (ctx) => {
  const extra: Migration[] = [...migrations, { version: 900, name: 'extra', sql: 'CREATE TABLE extra (id int); CREATE INDEX extra_id ON extra (id);' }];
  assert.deepEqual(await migrate(ctx.db, extra), { applied: [900], version: 900 });
  const broken: Migration[] = [...extra, { version: 901, name: 'broken', sql: 'CREATE TABLE half (id int); SELECT no_such_function();' }];
  await assert.rejects(migrate(ctx.db, broken), /migration 901_broken failed/);
  const half = await ctx.db.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'half'`);
  assert.equal(half.length, 0);
  assert.deepEqual((await ctx.db.query<{ v: number }>('SELECT max(version) AS v FROM schema_migrations'))[0]!.v, 900);
});

forEachDb('transactions roll back on error; nested transactions use savepoints', async (ctx) => {
  await ctx.db.exec('CREATE TABLE t (x int); INSERT INTO t VALUES (1);');
  await assert.rejects(
    ctx.db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1)', [2]);
      throw new Error('boom');
    }),
    /boom/,
  );
  await ctx.db.transaction(async (tx) => {
    await tx.query('INSERT INTO t VALUES (3)');
    await assert.rejects(
      tx.transaction(async (inner) => {
        await inner.query('INSERT INTO t VALUES (4)');
        throw new Error('inner');
      }),
    );
    await tx.transaction(async (inner) => inner.query('INSERT INTO t VALUES (5)'));
  });
  const rows = await ctx.db.query<{ x: number; n: number }>('SELECT x, count(*) OVER () AS n FROM t ORDER BY x');
  assert.deepEqual(rows.map((r) => r.x), [1, 3, 5]);
  assert.equal(typeof rows[0]!.n, 'number', 'int8 is a number on both engines');
});

test('several servers migrating one PostgreSQL database at once apply each migration exactly once', { skip: PG_URL ? false : 'FERRY_TEST_DATABASE_URL is not set', timeout: 60_000 }, async () => {
  const s = await createSchema();
  // A slow migration widens the window in which the migrators overlap.
  const slow: Migration[] = [...migrations, { version: 950, name: 'slow', sql: 'SELECT pg_sleep(0.3); CREATE TABLE slow (id int);' }];
  const dbs = await Promise.all(Array.from({ length: 4 }, () => PostgresDb.open(s.url)));
  try {
    const results = await Promise.all(dbs.map((db) => migrate(db, slow)));
    const applied = results.map((r) => r.applied).sort((a, b) => b.length - a.length);
    assert.deepEqual(applied[0], [...migrations.map((m) => m.version), 950]);
    assert.deepEqual(applied.slice(1), [[], [], []]);
    assert.ok(results.every((r) => r.version === 950));
    const rows = await dbs[0]!.query<{ n: number }>('SELECT count(*) AS n FROM schema_migrations');
    assert.equal(rows[0]!.n, migrations.length + 1);
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
    await s.drop();
  }
});

test('a wrong PostgreSQL URL fails clearly, without the password', { timeout: 30_000 }, async () => {
  await assert.rejects(openDb({ url: 'postgres://someone:secret@127.0.0.1:1/nothing' }), (err: Error) => {
    assert.match(err.message, /cannot connect to PostgreSQL at postgres:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nothing/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});
