// `ferry ingest` (started in the background by every `ferry run`): with nothing to record it
// does not even open the store; several started at once record every journal once and leave
// no lock behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRepo } from '../helpers/repo.js';
import { ferryCli } from '../helpers/procs.js';

test('with no journal to record, ferry ingest leaves the store unopened', { timeout: 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-ingest-'));
  const r = await ferryCli(['ingest', '--home', home], { env: { DATABASE_URL: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(home), [], 'no store, no lock: nothing was opened');
});

test('ingesters started together record every run once and leave no lock', { timeout: 180_000 }, async () => {
  const repo = makeRepo({ 'ferry.yml': 'one:\n  script: echo one\n' });
  const env = { DATABASE_URL: '', FERRY_BACKGROUND_INGEST: '0' };
  for (let i = 0; i < 3; i++) {
    const run = await ferryCli(['run'], { cwd: repo.dir, env });
    assert.equal(run.status, 0, run.stderr);
  }
  const home = join(repo.dir, '.ferry');
  assert.equal(readdirSync(join(home, 'journal')).filter((n) => n.endsWith('.ndjson')).length, 3, 'three journals wait');
  const ingests = await Promise.all([1, 2, 3].map(() => ferryCli(['ingest', '--home', home], { env })));
  for (const r of ingests) assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(home, 'journal')).filter((n) => n.endsWith('.ndjson')), []);
  assert.ok(!existsSync(join(home, 'ingest.lock')) && !existsSync(join(home, 'db.lock')), 'no lock is left');
  const history = await ferryCli(['history', '--json'], { cwd: repo.dir, env });
  assert.equal(history.status, 0, history.stderr);
  const numbers = (JSON.parse(history.stdout) as { number: number }[]).map((p) => p.number).sort();
  assert.deepEqual(numbers, [1, 2, 3], 'each run recorded once');
});
