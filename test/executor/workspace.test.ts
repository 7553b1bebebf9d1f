// Workspaces of a commit, for real: temp git repositories, the real git, real files. The export
// writes a shared repository itself where it can (no clone); these tests pin down that jobs get
// the same git they would from a clone, and the fallback to a clone where it cannot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJobWorkspace, exportCommit, SpareWorkspaces } from '../../src/executor/workspace.js';
import { prepareLocalRun } from '../../src/pipeline/run-local.js';
import { ConfigError } from '../../src/config/types.js';
import { makeRepo } from '../helpers/repo.js';
import { repoWith, runPipeline } from '../pipeline/harness.js';
import { waitFor } from '../helpers/procs.js';

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

test('the export is a repository of the commit: detached HEAD, branches, tags, clean status, history', async () => {
  const repo = makeRepo({ 'a.txt': 'one\n', 'dir/b.txt': 'two\n' });
  const first = repo.git('rev-parse', 'HEAD').trim();
  repo.git('tag', '-a', 'v1.0', '-m', 'release one');
  repo.write('a.txt', 'changed\n');
  const second = repo.commit('second');
  repo.git('tag', 'light');
  repo.git('branch', 'feature', first);
  repo.git('pack-refs', '--all'); // some refs packed, some loose: both must come across
  repo.git('branch', 'loose-branch');
  repo.write('a.txt', 'not committed\n');

  const out = join(mkdtempSync(join(tmpdir(), 'ferry-export-')), 'src');
  await exportCommit(repo.dir, second, out);
  assert.equal(git(out, 'rev-parse', 'HEAD'), second);
  assert.equal(git(out, 'rev-parse', '--abbrev-ref', 'HEAD'), 'HEAD', 'detached, like a GitLab job');
  assert.equal(git(out, 'status', '--porcelain'), '', 'the working tree is the commit, nothing else');
  assert.equal(git(out, 'show', 'HEAD:a.txt'), 'changed');
  assert.equal(git(out, 'describe', '--tags'), 'light');
  assert.equal(git(out, 'describe', '--abbrev=0', 'HEAD~1'), 'v1.0');
  assert.deepEqual(git(out, 'for-each-ref', '--format=%(refname:short)', 'refs/heads').split('\n').sort(), ['feature', 'loose-branch', 'main']);
  assert.equal(git(out, 'log', '--format=%s').split('\n').join(','), 'second,initial');
  assert.equal(git(out, 'config', 'remote.origin.url'), repo.dir);
  // A job can commit in its copy without touching the source repository.
  const job = join(out, '..', 'job');
  await createJobWorkspace(out, job);
  execFileSync('sh', ['-c', 'echo x > new.txt && git add new.txt && git -c user.name=t -c user.email=t@t commit -qm job'], { cwd: job });
  assert.equal(git(job, 'log', '-1', '--format=%s'), 'job');
  assert.equal(repo.git('log', '-1', '--format=%s').trim(), 'second', 'the source repository is untouched');
  assert.equal(git(out, 'rev-parse', 'HEAD'), second, 'and so is the snapshot');
});

test('a repository with format extensions (sha256 objects) is cloned instead, and still runs', async () => {
  const repo = makeRepo();
  // A sha256 repository: its objects cannot be shared by a plain repository written by hand.
  rmSync(join(repo.dir, '.git'), { recursive: true });
  repo.git('init', '--quiet', '--object-format=sha256', '--initial-branch=main');
  repo.write('ferry.yml', 'show: { script: "git rev-parse HEAD; git rev-parse --show-object-format" }\n');
  const sha = repo.commit('sha256 commit');
  assert.equal(sha.length, 64);
  const r = await runPipeline(repo);
  assert.equal(r.status, 'success', r.log('show'));
  assert.match(r.log('show'), new RegExp(`${sha}\\nsha256`));
});

test('spare copies are made ahead, handed out by rename, and no more than the jobs still to come', async () => {
  const repo = makeRepo({ 'a.txt': 'one\n' });
  const root = mkdtempSync(join(tmpdir(), 'ferry-spares-'));
  const snapshot = join(root, '+source-test');
  await exportCommit(repo.dir, repo.git('rev-parse', 'HEAD').trim(), snapshot);
  let wanted = 3;
  const spares = new SpareWorkspaces(snapshot, 20, 2, () => wanted);
  spares.fill();
  await waitFor(() => readdirSync(root).filter((n) => n.includes('+spare-')).length === 2, 5000);
  await spares.create(join(root, 'job1'));
  wanted = 2;
  assert.ok(existsSync(join(root, 'job1', 'a.txt')), 'the job got a full copy');
  assert.equal(git(join(root, 'job1'), 'status', '--porcelain'), '');
  // One spare was taken and one made in its place: still two ahead.
  await waitFor(() => readdirSync(root).filter((n) => n.includes('+spare-')).length === 2, 5000);
  wanted = 0;
  await spares.create(join(root, 'job2'));
  await spares.create(join(root, 'job3'));
  assert.ok(existsSync(join(root, 'job3', 'a.txt')), 'a copy is made on the spot when no spare is left');
  assert.deepEqual(await spares.stop(), [], 'nothing left over: no job was still to come');
  assert.deepEqual(readdirSync(root).sort(), ['+source-test', 'job1', 'job2', 'job3']);
});

test('passed jobs leave no workspace; a failed job and spares of jobs that never ran are cleaned up right', async () => {
  const repo = repoWith(`
ok: { script: "true" }
broken: { script: "exit 3" }
later: { when: manual, script: "true" }
`);
  const r = await runPipeline(repo, { concurrency: 2 });
  assert.equal(r.jobs.broken, 'failed');
  const work = join(r.ctx.home, 'work', r.ctx.pipelineId);
  // The removal runs in the background after the run: wait for it rather than for a time.
  await waitFor(() => readdirSync(work).join(',') === 'broken', 10_000);
});

test('a pipeline file that does not parse leaves no checked-out source behind', async () => {
  const repo = repoWith('jobs:\n  a: { script: true, nedds: [] }\n');
  const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  await assert.rejects(prepareLocalRun({ dir: repo.dir, home }), ConfigError);
  assert.deepEqual(readdirSync(join(home, 'work')), []);
  // No file at all: the same.
  const bare = makeRepo({ 'README.md': 'hi' });
  await assert.rejects(prepareLocalRun({ dir: bare.dir, home }), ConfigError);
  assert.deepEqual(readdirSync(join(home, 'work')), []);
});
