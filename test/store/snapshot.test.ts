import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { migrations } from '../../src/store/migrations/index.js';
import { openDb, storePaths, type OpenInfo } from '../../src/store/open.js';
import { listPipelines } from '../../src/store/pipelines.js';
import { RunRecorder } from '../../src/store/recorder.js';
import { buildSnapshot, defaultSnapshotPath } from '../../src/store/snapshot.js';
import { tempHome } from './helpers.js';
import { runFixture } from './fixtures.js';

test('a new store starts from a snapshot, then reopens as an existing folder', { timeout: 90_000 }, async () => {
  const dir = await tempHome();
  try {
    const file = join(dir, 'snap.tar.gz');
    const built = await buildSnapshot(file);
    assert.equal(built.version, migrations[migrations.length - 1]!.version);
    assert.ok(built.bytes > 100_000);

    const home = join(dir, 'home');
    let info: OpenInfo | undefined;
    const db = await openDb({ home, snapshot: file, onOpened: (i) => (info = i) });
    assert.equal(info?.how, 'snapshot');
    assert.deepEqual(info?.applied, []);
    await new RunRecorder(db).apply(runFixture('/src/app').events);
    await db.close();

    const again = await openDb({ home, snapshot: file, onOpened: (i) => (info = i) });
    try {
      assert.equal(info?.how, 'existing');
      assert.equal((await listPipelines(again)).length, 1, 'data written after loading the snapshot persists');
    } finally {
      await again.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('migrations newer than the snapshot are applied after loading it', { timeout: 90_000 }, async () => {
  const dir = await tempHome();
  try {
    const file = join(dir, 'old.tar.gz');
    await buildSnapshot(file, { migrations: [] });
    let info: OpenInfo | undefined;
    const db = await openDb({ home: join(dir, 'home'), snapshot: file, onOpened: (i) => (info = i) });
    try {
      assert.equal(info?.how, 'snapshot');
      assert.deepEqual(info?.applied, migrations.map((m) => m.version));
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a broken snapshot or a half-made folder falls back to initdb', { timeout: 120_000 }, async () => {
  const dir = await tempHome();
  try {
    const file = join(dir, 'broken.tar.gz');
    await writeFile(file, 'not a tarball');
    const home = join(dir, 'home');
    // What a crash during a first open leaves: a data folder but no marker.
    await mkdir(storePaths(home).dataDir, { recursive: true });
    await writeFile(join(storePaths(home).dataDir, 'PG_VERSION'), '17\n');
    let info: OpenInfo | undefined;
    const db = await openDb({ home, snapshot: file, onOpened: (i) => (info = i) });
    try {
      assert.equal(info?.how, 'initdb');
      assert.match(info?.snapshotError ?? '', /broken\.tar\.gz/);
      assert.deepEqual(info?.applied, migrations.map((m) => m.version));
      await new RunRecorder(db).apply(runFixture().events);
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the default snapshot lives in <package root>/dist', () => {
  assert.match(defaultSnapshotPath(), /[\\/]dist[\\/]pglite-snapshot\.tar\.gz$/);
  assert.ok(!defaultSnapshotPath().includes(`${join('dist', 'src')}`));
});

test('a snapshot built from an edited migration is not used', { timeout: 120_000 }, async () => {
  const dir = await tempHome();
  try {
    const file = join(dir, 'edited.tar.gz');
    await buildSnapshot(file, { migrations: [{ version: 1, name: 'init', sql: 'CREATE TABLE not_the_real_schema (id int);' }] });
    let info: OpenInfo | undefined;
    const db = await openDb({ home: join(dir, 'home'), snapshot: file, onOpened: (i) => (info = i) });
    try {
      assert.equal(info?.how, 'initdb');
      assert.deepEqual(await db.query("SELECT to_regclass('not_the_real_schema') AS t"), [{ t: null }]);
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
