// Commit tars under FERRY_HOME/sources: made once per commit, refreshed when used, and pruned
// when no job used them for a day; a pruned tar is made again on demand. Real files, real git.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../../src/events/bus.js';
import type { ServerContext } from '../../src/server/context.js';
import { pruneSources, sourceTar, SOURCE_TTL_MS } from '../../src/server/sources.js';
import type { Project } from '../../src/store/pipelines.js';
import type { Db } from '../../src/store/db.js';
import { makeRepo } from '../helpers/repo.js';

test('tars unused for a day are pruned, used ones kept, and a pruned one is made again', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-sources-'));
  const repo = makeRepo({ 'ferry.yml': 'one:\n  script: "true"\n' });
  const sha = repo.git('rev-parse', 'HEAD').trim();
  const project: Project = { id: 7, path: repo.dir, name: 'demo', lastNumber: 0, createdAt: new Date() };
  // A local project's tar needs neither the store nor the bus.
  const ctx = { db: null as unknown as Db, home, bus: new EventBus(), leaseMs: 30_000 } satisfies ServerContext;
  const file = await sourceTar(ctx, project, sha);
  assert.ok(statSync(file).size > 0);

  const dir = join(home, 'sources');
  mkdirSync(dir, { recursive: true });
  const stale = join(dir, '7-0000000000000000000000000000000000000000.tar');
  const leftover = join(dir, '7-1111111111111111111111111111111111111111.tar.123.abc.tmp');
  writeFileSync(stale, 'old');
  writeFileSync(leftover, 'interrupted');
  const twoDaysAgo = new Date(Date.now() - 2 * SOURCE_TTL_MS);
  for (const f of [stale, leftover, file]) utimesSync(f, twoDaysAgo, twoDaysAgo);

  // Used again now: refreshed, so kept.
  assert.equal(await sourceTar(ctx, project, sha), file);
  assert.equal(await pruneSources(home), 2);
  assert.ok(existsSync(file), 'the tar just used is kept');
  assert.ok(!existsSync(stale) && !existsSync(leftover), 'unused ones are gone');

  // Pruned: made again when a job asks.
  assert.equal(await pruneSources(home, SOURCE_TTL_MS, Date.now() + 2 * SOURCE_TTL_MS), 1);
  assert.ok(!existsSync(file));
  assert.equal(await sourceTar(ctx, project, sha), file);
  assert.ok(statSync(file).size > 0);
  assert.equal(await pruneSources(join(home, 'nothing-here')), 0, 'no sources folder: nothing to do');
});

test("a commit's tar holds every file as committed: export-ignore and export-subst do not apply", async () => {
  const { execFileSync } = await import('node:child_process');
  const home = mkdtempSync(join(tmpdir(), 'ferry-sources-'));
  const work = makeRepo({
    '.gitattributes': 'tests/ export-ignore\nversion.txt export-subst\n',
    'tests/unit.sh': 'echo testing\n',
    'version.txt': 'commit=$Format:%H$\n',
    'ferry.yml': 'one:\n  script: "true"\n',
  });
  const sha = work.git('rev-parse', 'HEAD').trim();
  // A bare repository, as pushes reach the server, and the working repository itself.
  const bare = join(mkdtempSync(join(tmpdir(), 'ferry-sources-bare-')), 'p.git');
  execFileSync('git', ['clone', '--quiet', '--bare', work.dir, bare]);
  const ctx = { db: null as unknown as Db, home, bus: new EventBus(), leaseMs: 30_000 } satisfies ServerContext;
  for (const [id, path] of [[8, bare], [9, work.dir]] as const) {
    const file = await sourceTar(ctx, { id, path, name: 'attrs', lastNumber: 0, createdAt: new Date() }, sha);
    const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n');
    assert.ok(names.includes('tests/unit.sh'), `export-ignore'd files are in the tar (${path}): ${names.join(' ')}`);
    assert.equal(execFileSync('tar', ['-xOf', file, 'version.txt'], { encoding: 'utf8' }), 'commit=$Format:%H$\n', 'no placeholder is filled in');
  }
  // git archive in the repository itself still honours them: the difference is Ferry's.
  assert.doesNotMatch(execFileSync('git', ['archive', sha], { cwd: bare }).toString('latin1'), /tests\/unit\.sh/);
});
