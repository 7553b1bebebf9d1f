// The audit log's hash chain on PGlite and PostgreSQL: appends, verification, tampering found
// at the right entry, no fork under concurrent appends from two connections; and `ferry audit`
// end to end as a child process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AUDIT_ACTIONS, appendAudit, auditHash, canonicalJson, GENESIS_HASH, listAudit, verifyAudit } from '../../src/store/audit.js';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/open.js';
import { forEachDb } from './helpers.js';
import { ferryCli } from '../helpers/procs.js';

async function fill(db: Db, n: number, environment = 'production'): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await appendAudit(db, {
      actor: i % 2 ? 'alice' : 'controller',
      action: i % 2 ? 'release.approved' : 'release.step',
      projectId: 1,
      environment: i === n ? 'staging' : environment,
      subject: `rel-${i}`,
      reason: `entry ${i}`,
      detail: { z: i, a: { y: [1, 'two', null], b: true }, when: new Date(Date.UTC(2026, 0, i)) },
    });
  }
}

test('canonical JSON sorts keys at every depth and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: undefined } }), '{"a":{"d":[3,{"x":2,"y":1}]},"b":1}');
  assert.equal(canonicalJson({ s: 'nul\u0000here' }), '{"s":"nul\uFFFDhere"}');
  assert.equal(AUDIT_ACTIONS.includes('release.rolled_back'), true);
});

forEachDb('audit: appends chain from the genesis hash and verify in pages', async ({ db }) => {
  assert.deepEqual(await verifyAudit(db), { ok: true, entries: 0 });
  const first = await appendAudit(db, { actor: 'alice', action: 'secret.set', projectId: 3, subject: 'NPM_TOKEN', detail: { environment: '' } });
  assert.equal(first.seq, 1);
  assert.equal(first.prevHash, GENESIS_HASH);
  assert.match(first.hash, /^[0-9a-f]{64}$/);
  assert.equal(first.hash, auditHash(first));
  await fill(db, 6);
  assert.deepEqual(await verifyAudit(db), { ok: true, entries: 7 });
  assert.deepEqual(await verifyAudit(db, { pageSize: 2 }), { ok: true, entries: 7 });
  assert.deepEqual(await verifyAudit(db, { pageSize: 7 }), { ok: true, entries: 7 });

  const all = await listAudit(db, { limit: 100 });
  assert.deepEqual(all.map((e) => e.seq), [7, 6, 5, 4, 3, 2, 1]);
  for (let i = 0; i < all.length - 1; i++) assert.equal(all[i]!.prevHash, all[i + 1]!.hash);
  // Stored in canonical form; what comes back hashes to what was stored.
  assert.deepEqual(all[0]!.detail, { a: { b: true, y: [1, 'two', null] }, when: '2026-01-06T00:00:00.000Z', z: 6 });
  assert.equal(all[0]!.environment, 'staging');
  assert.equal((await listAudit(db, { environment: 'production', limit: 100 })).length, 5);
  assert.deepEqual((await listAudit(db, { environment: 'production', limit: 2, beforeSeq: 5 })).map((e) => e.seq), [4, 3]);
  assert.deepEqual((await listAudit(db, { projectId: 3, limit: 10 })).map((e) => e.subject), ['NPM_TOKEN']);
  // Times never go back along the chain, even with the default `at`.
  for (let i = 0; i < all.length - 1; i++) assert.ok(all[i]!.at.getTime() >= all[i + 1]!.at.getTime());
});

forEachDb('audit: a changed field is a hash mismatch, a re-hashed entry a broken link, a removed one a gap', async ({ db }) => {
  await fill(db, 5);
  await db.query(`UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3`);
  assert.deepEqual(await verifyAudit(db, { pageSize: 2 }), { ok: false, entries: 2, firstBad: { seq: 3, problem: 'hash mismatch' } });

  // The tamperer recomputes entry 3's hash: the next entry no longer links to it.
  const [row] = await listAudit(db, { limit: 1, beforeSeq: 4 });
  await db.query('UPDATE audit_log SET hash = $1 WHERE seq = 3', [auditHash(row!)]);
  assert.deepEqual(await verifyAudit(db), { ok: false, entries: 3, firstBad: { seq: 4, problem: 'broken link' } });

  // A detail changed inside the JSON.
  await db.query('DELETE FROM audit_log');
  await fill(db, 4);
  await db.query(`UPDATE audit_log SET detail = jsonb_set(detail, '{z}', '99') WHERE seq = 2`);
  assert.deepEqual(await verifyAudit(db), { ok: false, entries: 1, firstBad: { seq: 2, problem: 'hash mismatch' } });

  await db.query('DELETE FROM audit_log');
  await fill(db, 5);
  await db.query('DELETE FROM audit_log WHERE seq = 3');
  assert.deepEqual(await verifyAudit(db, { pageSize: 2 }), { ok: false, entries: 2, firstBad: { seq: 3, problem: 'gap in sequence' } });
  await db.query('DELETE FROM audit_log WHERE seq = 1');
  assert.deepEqual(await verifyAudit(db), { ok: false, entries: 0, firstBad: { seq: 1, problem: 'gap in sequence' } });
});

forEachDb('audit: inside a caller transaction the entry commits or rolls back with it', async ({ db }) => {
  await appendAudit(db, { actor: 'alice', action: 'release.created', subject: 'r1' });
  await assert.rejects(
    db.transaction(async (tx) => {
      await appendAudit(tx, { actor: 'alice', action: 'release.promoted', subject: 'r1' });
      throw new Error('the release update failed');
    }),
    /the release update failed/,
  );
  const seqs = await db.transaction(async (tx) => {
    const a = await appendAudit(tx, { actor: 'bob', action: 'release.approved', subject: 'r1' });
    // Nested once more: a transaction handle's transaction() is a savepoint.
    const b = await tx.transaction((inner) => appendAudit(inner, { actor: 'controller', action: 'release.step', subject: 'r1' }));
    return [a.seq, b.seq];
  });
  assert.deepEqual(seqs, [2, 3]);
  assert.deepEqual(await verifyAudit(db), { ok: true, entries: 3 });
});

forEachDb('audit: concurrent appends from two connections never fork the chain', async (ctx) => {
  const n = 25;
  if (ctx.kind === 'postgres') {
    // Two pools (two servers' worth of connections) on one database.
    const other = await openDb(ctx.options);
    try {
      await Promise.all([
        ...Array.from({ length: n }, (_, i) => appendAudit(ctx.db, { actor: 'server-a', action: 'release.step', reason: `a${i}` })),
        ...Array.from({ length: n }, (_, i) => appendAudit(other, { actor: 'server-b', action: 'release.step', reason: `b${i}` })),
      ]);
    } finally {
      await other.close();
    }
  } else {
    await Promise.all(Array.from({ length: 2 * n }, (_, i) => appendAudit(ctx.db, { actor: 'server-a', action: 'release.step', reason: `x${i}` })));
  }
  assert.deepEqual(await verifyAudit(ctx.db), { ok: true, entries: 2 * n });
  const [{ seqs }] = await ctx.db.query<{ seqs: number }>('SELECT count(DISTINCT prev_hash)::int AS seqs FROM audit_log');
  assert.equal(seqs, 2 * n);
});

// ---------------------------------------------------------------------------------------------
// ferry audit, as a child process on the store the test made.

function ferry(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return ferryCli(args, { env: { DATABASE_URL: '', ...env } }).then((r) => ({ code: r.status, stdout: r.stdout, stderr: r.stderr }));
}

forEachDb(
  'ferry audit lists entries and ferry audit verify exits 65 naming the tampered entry',
  async (ctx) => {
    await fill(ctx.db, 4);
    await appendAudit(ctx.db, { actor: 'root', action: 'freeze.override', environment: 'production', reason: 'hotfix\n\u001b[31mfor the outage' });
    // The embedded store is opened by one process at a time: hand it to the child.
    if (ctx.kind === 'pglite') await ctx.db.close();
    const env: Record<string, string> = ctx.kind === 'pglite' ? { FERRY_HOME: ctx.home! } : { DATABASE_URL: ctx.url!, FERRY_HOME: '/nonexistent-ferry-home' };

    const list = await ferry(['audit', '--env', 'production'], env);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^SEQ\s+TIME \(UTC\)\s+ACTOR\s+ACTION\s+ENVIRONMENT\s+SUBJECT\s+REASON$/);
    assert.equal(lines.length, 1 + 4);
    assert.match(lines[1]!, /^5\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+root\s+freeze\.override\s+production\s+-\s+hotfix \[31mfor the outage$/);
    assert.match(lines[4]!, /^1\s+.*alice\s+release\.approved\s+production\s+rel-1\s+entry 1$/);
    assert.ok(!list.stdout.includes('\u001b'), 'no escape sequence from a reason reaches the terminal');

    const json = await ferry(['audit', '--limit', '2', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as { seq: number; hash: string; action: string }[];
    assert.deepEqual(rows.map((r) => r.seq), [5, 4]);
    assert.match(json.stderr, /ferry audit --before 4/);

    const ok = await ferry(['audit', 'verify'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'audit log intact: 5 entries\n');
    assert.equal((await ferry(['audit', '--limit', 'x'], env)).code, 64);

    const db = ctx.kind === 'pglite' ? await openDb(ctx.options) : ctx.db;
    try {
      await db.query(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`);
    } finally {
      if (ctx.kind === 'pglite') await db.close();
    }
    const bad = await ferry(['audit', 'verify'], env);
    assert.equal(bad.code, 65, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /^audit log tampered at entry #2: hash mismatch/);
    const badJson = await ferry(['audit', 'verify', '--json'], env);
    assert.equal(badJson.code, 65);
    assert.deepEqual(JSON.parse(badJson.stdout), { ok: false, entries: 1, firstBad: { seq: 2, problem: 'hash mismatch' } });
  },
  { timeout: 120_000 },
);
