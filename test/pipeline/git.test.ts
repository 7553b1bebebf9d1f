// readCommitWithFile (one git process, used by push triggers) must say what commitInfo (several
// git commands, `%cI` and `%B`) says about the same commit, in a real repository.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { commitInfo, defaultBranchOf, NotARepositoryError, readCommitWithFile } from '../../src/pipeline/git.js';
import { makeRepo } from '../helpers/repo.js';

test('readCommitWithFile reads a commit and its file as commitInfo and git show do', async () => {
  const repo = makeRepo({ 'ferry.yml': 'a:\n  script: echo é\n' }, { branch: 'trunk' });
  repo.write('x.txt', '1');
  repo.git('add', '-A');
  // An author other than the committer, a date with a negative offset, a multi-line message.
  execFileSync('git', ['commit', '-q', '-m', 'Subject line\n\nBody one\nbody two'], {
    cwd: repo.dir,
    env: { ...process.env, GIT_AUTHOR_NAME: 'Ana Écrit', GIT_AUTHOR_EMAIL: 'ana@example.test', GIT_COMMITTER_NAME: 'C', GIT_COMMITTER_EMAIL: 'c@example.test', GIT_COMMITTER_DATE: '2024-03-05T10:20:30-07:30' },
  });
  const sha = repo.git('rev-parse', 'HEAD').trim();
  const info = await commitInfo(repo.dir, sha);
  const fast = await readCommitWithFile(repo.dir, sha, 'ferry.yml');
  assert.equal(fast.sha, info.sha);
  assert.equal(fast.authorName, 'Ana Écrit');
  assert.equal(fast.authorEmail, info.authorEmail);
  assert.equal(fast.timestamp, info.timestamp);
  assert.equal(fast.timestamp, '2024-03-05T10:20:30-07:30');
  assert.equal(fast.message, info.message);
  assert.equal(fast.file, 'a:\n  script: echo é\n');
  assert.equal((await readCommitWithFile(repo.dir, sha, 'nope.yml')).file, null);
  assert.equal(await defaultBranchOf(repo.dir), 'trunk');

  // A bare clone: what the server receives pushes in.
  const bare = join(mkdtempSync(join(tmpdir(), 'ferry-bare-')), 'r.git');
  execFileSync('git', ['clone', '-q', '--bare', repo.dir, bare]);
  assert.deepEqual(await readCommitWithFile(bare, sha, 'ferry.yml'), fast);
  assert.equal(await defaultBranchOf(bare), 'trunk');
  await assert.rejects(readCommitWithFile(bare, '0'.repeat(40), 'ferry.yml'), NotARepositoryError);
});
