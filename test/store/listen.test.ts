// LISTEN/NOTIFY on the real PostgreSQL: a NOTIFY sent by another connection (another server
// replica, here a plain pg client) reaches the listener, and after unlisten nothing does.
// markQueued sends `ferry_jobs` in the transaction that queues jobs; the server wakes its
// waiting runners on it (src/server/routes/runner.ts).
import assert from 'node:assert/strict';
import pg from 'pg';
import { test } from 'node:test';
import { PostgresDb } from '../../src/store/postgres.js';
import { createSchema, PG_URL } from './helpers.js';

test('a NOTIFY from another connection reaches db.listen, and stops after unlisten', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set' }, async () => {
  const schema = await createSchema();
  const db = await PostgresDb.open(schema.url);
  const other = new pg.Client({ connectionString: PG_URL });
  await other.connect();
  try {
    let heard = 0;
    let wake: () => void = () => undefined;
    const unlisten = await db.listen('ferry_jobs', () => {
      heard++;
      wake();
    });
    const first = new Promise<void>((resolve) => (wake = resolve));
    await other.query("SELECT pg_notify('ferry_jobs', '')");
    await first; // hangs (and the test times out) if the notification never arrives
    assert.equal(heard, 1);

    // Another channel is not ours.
    await other.query("SELECT pg_notify('something_else', '')");
    await unlisten();
    await other.query("SELECT pg_notify('ferry_jobs', '')");
    // A round trip on the listener's former server: anything still delivered would be by now.
    await other.query('SELECT pg_sleep(0.2)');
    assert.equal(heard, 1, 'nothing after unlisten, nothing from another channel');
  } finally {
    await other.end();
    await db.close();
    await schema.drop();
  }
});

test('db.listen refuses what is not a channel name (it is spliced into LISTEN)', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set' }, async () => {
  const schema = await createSchema();
  const db = await PostgresDb.open(schema.url);
  try {
    await assert.rejects(db.listen('x; DROP TABLE jobs', () => undefined), /not a channel name/);
  } finally {
    await db.close();
    await schema.drop();
  }
});
