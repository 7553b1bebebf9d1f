// Long-lived cat-file processes (src/process/cat-file.ts) against real repositories: answers are
// the bytes a one-shot `git cat-file --batch` gives; commits pushed after the process started
// are found, whether git keeps them loose or in a new pack; questions asked together get their
// own answers; and a process that dies fails its question and is replaced at the next one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerLength, catFileBatch, stopCatFiles } from '../../src/process/cat-file.js';
import { readObjects, startSpawner } from '../../src/process/run.js';
import { readCommitWithFile } from '../../src/pipeline/git.js';
import { makeRepo } from '../helpers/repo.js';

const oneShot = (repo: string, lines: string[]) => execFileSync('git', ['cat-file', '--batch'], { cwd: repo, input: lines.map((l) => `${l}\n`).join('') });

/** Running `git cat-file --batch` processes, with their parents. */
function catFiles(): { pid: number; ppid: number }[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .filter((l) => /^\s*\d+\s+\d+\s+git cat-file --batch$/.test(l))
    .map((l) => l.trim().split(/\s+/).map(Number))
    .map(([pid, ppid]) => ({ pid: pid!, ppid: ppid! }));
}

function pushedRepo() {
  const work = makeRepo({ 'ferry.yml': 'a:\n  script: echo one\n', 'bin.dat': '\u0000\u00ff\n\n' });
  const bare = join(mkdtempSync(join(tmpdir(), 'ferry-catfile-')), 'repo.git');
  execFileSync('git', ['clone', '--quiet', '--bare', work.dir, bare]);
  work.git('remote', 'add', 'server', bare);
  return { work, bare };
}

test('answers are what a one-shot cat-file gives, for objects, files, and what is missing', async (t) => {
  t.after(stopCatFiles);
  const { work, bare } = pushedRepo();
  const sha = work.git('rev-parse', 'HEAD').trim();
  const lines = [`${sha}^{commit}`, `${sha}:ferry.yml`, `${sha}:bin.dat`, `${sha}:no-such-file`, 'f'.repeat(40), `${sha}^{tree}`];
  assert.deepEqual(await catFileBatch(bare, lines), oneShot(bare, lines));
  // Asked again of the same process, and several at once: each question gets its own answers.
  const again = await Promise.all([catFileBatch(bare, lines.slice(0, 2)), catFileBatch(bare, lines.slice(3)), catFileBatch(bare, lines)]);
  assert.deepEqual(again, [oneShot(bare, lines.slice(0, 2)), oneShot(bare, lines.slice(3)), oneShot(bare, lines)]);
});

test('commits pushed after the process started are found, loose or packed', async (t) => {
  t.after(stopCatFiles);
  const { work, bare } = pushedRepo();
  await catFileBatch(bare, ['HEAD']); // the process is running from here on
  work.write('ferry.yml', 'a:\n  script: echo two\n');
  const loose = work.commit('small push');
  execFileSync('git', ['push', '--quiet', 'server', 'main'], { cwd: work.dir });
  assert.match((await catFileBatch(bare, [`${loose}:ferry.yml`])).toString(), /echo two/);
  // Over receive.unpackLimit (100 objects) git keeps the push as a pack of its own.
  for (let i = 0; i < 150; i++) work.write(`many/${i}.txt`, `file ${i}\n`);
  work.write('ferry.yml', 'a:\n  script: echo three\n');
  const packed = work.commit('big push');
  execFileSync('git', ['push', '--quiet', 'server', 'main'], { cwd: work.dir });
  const packs = execFileSync('git', ['count-objects', '-v'], { cwd: bare, encoding: 'utf8' });
  assert.match(packs, /^packs: [1-9]/m, 'the big push arrived as a pack');
  assert.ok(Number(/^in-pack: (\d+)/m.exec(packs)?.[1]) >= 150, packs);
  assert.match((await catFileBatch(bare, [`${packed}:ferry.yml`])).toString(), /echo three/);
  assert.match((await catFileBatch(bare, [`${packed}:many/149.txt`])).toString(), /file 149/);
});

test('a process that dies fails its question; the next question gets a new one', async (t) => {
  t.after(stopCatFiles);
  const { bare } = pushedRepo();
  // This test's own cat-file process: the one whose parent is this process.
  const pid = () => catFiles().find((p) => p.ppid === process.pid)!.pid;
  await catFileBatch(bare, ['HEAD']);
  const first = pid();
  process.kill(first, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  const after = await catFileBatch(bare, ['HEAD']);
  assert.match(after.toString(), /^[0-9a-f]{40} commit \d+\n/);
  assert.notEqual(pid(), first);
  await assert.rejects(catFileBatch(join(bare, 'no-such-dir'), ['HEAD']), /cat-file/);
  await assert.rejects(catFileBatch(bare, ['two\nlines']), /newline/);
});

test('answerLength waits for a whole answer', () => {
  const sha = 'a'.repeat(40);
  assert.equal(answerLength(Buffer.from(`${sha} blob 3\nab`)), 0);
  assert.equal(answerLength(Buffer.from(`${sha} blob 3\nabc\n`)), 40 + 8 + 4);
  assert.equal(answerLength(Buffer.from(`${sha} missing\nrest`)), 49);
  assert.equal(answerLength(Buffer.from(`HEAD:x y missing\n`)), 17);
});

test("through the server's spawner, a pushed commit and its ferry.yml are read from its long-lived process", async (t) => {
  const stop = await startSpawner();
  t.after(stop);
  const { work, bare } = pushedRepo();
  const sha = work.git('rev-parse', 'HEAD').trim();
  const c = await readCommitWithFile(bare, sha, 'ferry.yml');
  assert.equal(c.sha, sha);
  assert.equal(c.file, 'a:\n  script: echo one\n');
  assert.equal(c.authorName, 'Test Author');
  assert.deepEqual(await readObjects(bare, [`${sha}:ferry.yml`]), oneShot(bare, [`${sha}:ferry.yml`]));
  // The answer came from a cat-file process that is still there, a child of the spawner.
  const mine = catFiles().filter((p) => p.ppid === process.pid);
  assert.equal(mine.length, 0, 'this process started no cat-file of its own');
  assert.ok(catFiles().length > 0, "a cat-file process is running: the spawner's");
  await assert.rejects(readCommitWithFile(bare, 'f'.repeat(40), 'ferry.yml'), /not inside a git repository/);
});
