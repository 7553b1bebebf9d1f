// Runs a store test once per engine: PGlite in a temp folder, and PostgreSQL (a fresh schema per
// test) when FERRY_TEST_DATABASE_URL is set.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import type { Db, DbKind } from '../../src/store/db.js';
import { migrations } from '../../src/store/migrations/index.js';
import { openDb, type OpenDbOptions } from '../../src/store/open.js';
import { buildSnapshot } from '../../src/store/snapshot.js';

export const PG_URL = process.env.FERRY_TEST_DATABASE_URL;

export interface DbContext {
  kind: DbKind;
  /** Opened and migrated. Closed after the test (closing it earlier is fine). */
  db: Db;
  /** Options that open this same store again (PGlite: close `db` first, the folder is locked). */
  options: OpenDbOptions;
  /** PGlite: the temp home folder. */
  home?: string;
  /** PostgreSQL: the URL with this test's search_path. */
  url?: string;
  schema?: string;
}

/** A snapshot of the current schema, built once and shared by test processes (keyed by content),
 * so each test opens a new PGlite folder in ~1 s instead of running initdb. */
let snapshotPromise: Promise<string> | undefined;
export function testSnapshot(): Promise<string> {
  snapshotPromise ??= (async () => {
    const key = createHash('sha256')
      .update(migrations.map((m) => `${m.version}:${m.sql}`).join('\n'))
      .update(process.version)
      .digest('hex')
      .slice(0, 16);
    const path = join(tmpdir(), `ferry-test-snapshot-${key}.tar.gz`);
    if (!existsSync(path)) await buildSnapshot(path);
    return path;
  })();
  return snapshotPromise;
}

export async function tempHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ferry-store-'));
}

export function urlWithSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

export async function createSchema(): Promise<{ schema: string; url: string; drop: () => Promise<void> }> {
  if (!PG_URL) throw new Error('FERRY_TEST_DATABASE_URL is not set');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await admin.end();
  }
  return {
    schema,
    url: urlWithSchema(PG_URL, schema),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

type Body = (ctx: DbContext) => Promise<void>;

/** Registers `name` once per engine; the body gets an opened, migrated, empty store. */
export function forEachDb(name: string, fn: Body, opts: { timeout?: number } = {}): void {
  const timeout = opts.timeout ?? 60_000;
  test(`${name} [pglite]`, { timeout }, async () => {
    const home = await tempHome();
    const options: OpenDbOptions = { home, snapshot: await testSnapshot() };
    const db = await openDb(options);
    try {
      await fn({ kind: 'pglite', db, options, home });
    } finally {
      await db.close();
      await rm(home, { recursive: true, force: true });
    }
  });
  test(`${name} [postgres]`, { timeout, skip: PG_URL ? false : 'FERRY_TEST_DATABASE_URL is not set' }, async () => {
    const s = await createSchema();
    const options: OpenDbOptions = { url: s.url };
    try {
      const db = await openDb(options);
      try {
        await fn({ kind: 'postgres', db, options, url: s.url, schema: s.schema });
      } finally {
        await db.close();
      }
    } finally {
      await s.drop();
    }
  });
}
