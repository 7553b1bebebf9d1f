// Workspaces reset for reuse, for real: temp git repositories, real files, real git. A reset
// workspace must be exactly what a fresh copy would be, whatever the job that had it did, and
// must never write through a link into a file outside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJobWorkspace, exportCommit } from '../../src/executor/workspace.js';
import { listing, resetListedTree } from '../../src/executor/tree-copy.js';
import { POOL_DIR, WorkspacePool } from '../../src/executor/workspace-pool.js';
import { makeRepo } from '../helpers/repo.js';
import { repoWith, runPipeline } from '../pipeline/harness.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

/** Every entry below `dir` with its kind, mode and content (or link target): what a job sees. */
function describeTree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, path));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) out.push(`d ${path}`, ...describeTree(dir, path));
    else if (st.isSymbolicLink()) out.push(`l ${path} -> ${readlinkSync(join(dir, path))}`);
    else out.push(`f ${path} ${mode} ${readFileSync(join(dir, path)).toString('base64')}`);
  }
  return out;
}

async function snapshotOf(files: Record<string, string>, root: string, executable: string[] = []): Promise<{ repo: ReturnType<typeof makeRepo>; snapshot: string }> {
  const repo = makeRepo();
  for (const [p, c] of Object.entries(files)) repo.write(p, c);
  for (const p of executable) chmodSync(join(repo.dir, p), 0o755);
  repo.commit('initial');
  const snapshot = join(root, '+source-test');
  await exportCommit(repo.dir, repo.git('rev-parse', 'HEAD').trim(), snapshot);
  return { repo, snapshot };
}

test('a used workspace reset in place is exactly a fresh copy, and nothing outside it is written', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-reset-'));
  const { snapshot } = await snapshotOf({ 'a.txt': 'one\n', 'dir/b.txt': 'two\n', 'dir/deep/c.txt': 'three\n', 'run.sh': '#!/bin/sh\n' }, root, ['run.sh']);
  const used = join(root, 'used');
  await createJobWorkspace(snapshot, used, 50);
  // What a job may do to its workspace.
  writeFileSync(join(used, 'a.txt'), 'changed by the job\n');
  rmSync(join(used, 'dir', 'deep'), { recursive: true });
  rmSync(join(used, 'dir', 'b.txt'));
  mkdirSync(join(used, 'dir', 'b.txt')); // a file replaced by a folder
  writeFileSync(join(used, 'dir', 'b.txt', 'inside'), 'x');
  mkdirSync(join(used, 'build', 'out'), { recursive: true });
  writeFileSync(join(used, 'build', 'out', 'app.js'), 'built');
  chmodSync(join(used, 'run.sh'), 0o600);
  execFileSync('sh', ['-c', 'git tag job-tag && git -c user.name=t -c user.email=t@t commit -qam job && git config job.key 1'], { cwd: used });
  // Names that lead outside: a symlink and a hard link in place of checked-out files.
  const outside = join(root, 'outside.txt');
  const outsideLinked = join(root, 'outside-linked.txt');
  writeFileSync(outside, 'keep me\n');
  writeFileSync(outsideLinked, 'keep me too\n');
  rmSync(join(used, 'dir', 'deep'), { recursive: true, force: true });
  mkdirSync(join(used, 'dir', 'deep'));
  symlinkSync(outside, join(used, 'dir', 'deep', 'c.txt'));
  rmSync(join(used, 'a.txt'));
  linkSync(outsideLinked, join(used, 'a.txt'));

  const moved = await resetListedTree(await listing(snapshot), snapshot, used, 1000);
  // The job's own folders (build/, the folder that was dir/b.txt, the loose objects of its
  // commit) are moved aside for the caller to remove, not walked here.
  assert.ok(moved.length >= 2 && moved.every((m) => m.startsWith(`${used}+trash-`)), moved.join(', '));
  const contents = moved.map((m) => readdirSync(m).join(','));
  assert.ok(contents.includes('inside') && contents.includes('out'), contents.join(' | '));
  const fresh = join(root, 'fresh');
  await createJobWorkspace(snapshot, fresh, 50);
  assert.deepEqual(describeTree(used), describeTree(fresh));
  assert.equal(readFileSync(outside, 'utf8'), 'keep me\n');
  assert.equal(readFileSync(outsideLinked, 'utf8'), 'keep me too\n');
  assert.equal(git(used, 'status', '--porcelain'), '');
  assert.equal(git(used, 'rev-parse', 'HEAD'), git(snapshot, 'rev-parse', 'HEAD'));
  assert.equal(git(used, 'tag', '--list', 'job-tag'), '', "the job's tag went with its workspace");
  assert.equal(statSync(join(used, 'run.sh')).mode & 0o777, 0o755);
});

test('a reset refuses a workspace that holds more than its limit; the snapshot is untouched', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-reset-'));
  const { snapshot } = await snapshotOf({ 'a.txt': 'one\n' }, root);
  const used = join(root, 'used');
  await createJobWorkspace(snapshot, used, 50);
  for (let i = 0; i < 40; i++) writeFileSync(join(used, `m${i}.js`), '');
  const before = describeTree(snapshot);
  await assert.rejects(resetListedTree(await listing(snapshot), snapshot, used, 30), /more than 30 entries/);
  assert.deepEqual(describeTree(snapshot), before);
});

test('jobs share the snapshot .git files git replaces rather than writes, and stay apart', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-shared-'));
  const { snapshot } = await snapshotOf({ 'a.txt': 'one\n' }, root);
  const [one, two] = [join(root, 'one'), join(root, 'two')];
  await createJobWorkspace(snapshot, one, 50);
  await createJobWorkspace(snapshot, two, 50);
  for (const f of ['HEAD', 'config', 'index', 'packed-refs']) {
    assert.equal(statSync(join(one, '.git', f)).ino, statSync(join(snapshot, '.git', f)).ino, `.git/${f} is a link, not a copy`);
  }
  execFileSync('sh', ['-c', 'git config job.key 1 && git tag one && git checkout -qb mine && echo x > a.txt && git -c user.name=t -c user.email=t@t commit -qam one'], { cwd: one });
  for (const dir of [two, snapshot]) {
    assert.equal(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD'), 'HEAD');
    assert.equal(git(dir, 'tag', '--list', 'one'), '');
    assert.equal(spawnSync('git', ['config', '--get', 'job.key'], { cwd: dir }).stdout.toString(), '', 'no config change');
  }
  assert.equal(git(two, 'status', '--porcelain'), '');
});

test('the pool hands each workspace to one taker only, and keeps no more than it holds', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-pool-'));
  const dirs = Array.from({ length: 4 }, (_, i) => join(root, `w${i}`));
  for (const d of dirs) mkdirSync(d);
  const giver = new WorkspacePool(root);
  for (const d of dirs) assert.equal(await giver.give(d), true);
  assert.equal(readdirSync(join(root, POOL_DIR)).length, 4);
  // Two runs at once, each with its own view of the pool: eight takes for four workspaces.
  const [a, b] = [new WorkspacePool(root), new WorkspacePool(root)];
  const takes = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).take(join(root, `taken${i}`))));
  assert.equal(takes.filter(Boolean).length, 4);
  assert.deepEqual(readdirSync(join(root, POOL_DIR)), []);
  assert.equal(readdirSync(root).filter((n) => n.startsWith('taken')).length, 4);
});

test('runs reuse passed workspaces: the next job gets a clean copy of its own commit', async () => {
  const repo = repoWith(`
dirty:
  script:
    - test ! -e leftover.txt
    - test "$(cat version.txt)" = "$EXPECT"
    - echo junk > leftover.txt && mkdir -p out && echo x > out/y && echo changed > version.txt
    - git -c user.name=t -c user.email=t@t commit -qam "job commit"
`);
  repo.write('version.txt', 'v1');
  repo.commit('v1');
  const first = await runPipeline(repo, { concurrency: 1, variables: { EXPECT: 'v1' } });
  assert.equal(first.status, 'success', first.log('dirty'));
  const pool = join(first.ctx.home, 'work', POOL_DIR);
  const pooled = existsSync(pool) ? readdirSync(pool) : [];
  assert.ok(pooled.length > 0, 'the passed workspace went to the pool');
  repo.write('version.txt', 'v2');
  const sha = repo.commit('v2');
  const second = await runPipeline(repo, { concurrency: 1, variables: { EXPECT: 'v2' }, home: first.ctx.home });
  assert.equal(second.status, 'success', second.log('dirty'));
  assert.match(second.log('dirty'), /test ! -e leftover.txt/);
  assert.equal(second.ctx.commit.sha, sha);
  const after = readdirSync(pool);
  assert.ok(after.length > 0 && !after.some((n) => pooled.includes(n)), 'the second run took the pooled workspace and gave its own back');
});
