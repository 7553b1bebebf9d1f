// Polling remotes without webhooks, with real git: the "remote" is a bare repository reached by
// a file:// URL (git treats it as any remote: ls-remote, clone --mirror, fetch). The first poll
// only notes the heads; then a push to a branch, a new branch and a tag each start one
// pipeline (source push, the right branch or tag and commit), nothing starts twice, a project
// with a webhook is left alone, and two replicas on the real PostgreSQL make one pipeline per
// change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { remoteHeads } from '../../src/server/poller.js';
import { waitFor } from '../helpers/procs.js';
import { createSchema, PG_URL } from '../store/helpers.js';
import { testServer, type TestServer } from './harness.js';

interface PipelineJson {
  id: string;
  number: number;
  source: string;
  branch: string | null;
  tag: string | null;
  sha: string;
}

/** A working copy and the bare "remote" it pushes to. */
function remote(): { url: string; commit: (msg: string) => string; git: (...args: string[]) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-poll-'));
  const work = join(dir, 'work');
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=dev', '-c', 'user.email=dev@example.invalid', ...args], { cwd: work, encoding: 'utf8' }).trim();
  execFileSync('git', ['init', '-q', '--initial-branch=main', work]);
  writeFileSync(join(work, 'ferry.yml'), 'build:\n  script: echo "built $FERRY_COMMIT_REF_NAME"\n');
  git('add', '-A');
  git('commit', '-qm', 'first');
  execFileSync('git', ['clone', '-q', '--bare', work, join(dir, 'remote.git')]);
  git('remote', 'add', 'origin', join(dir, 'remote.git'));
  const commit = (msg: string) => {
    writeFileSync(join(work, 'change.txt'), `${msg}\n`);
    git('add', '-A');
    git('commit', '-qm', msg);
    return git('rev-parse', 'HEAD');
  };
  return { url: `file://${join(dir, 'remote.git')}`, commit, git };
}

const pipelines = async (s: TestServer, project: number) => (await s.call<PipelineJson[]>('GET', `/api/projects/${project}/pipelines?limit=100`)).body;

test('remoteHeads reads branches and tags, annotated tags as their commits', () => {
  const r = remote();
  const sha = r.commit('second');
  r.git('tag', '-a', 'v1', '-m', 'release 1');
  r.git('tag', 'light');
  r.git('push', '-q', 'origin', 'main', 'v1', 'light');
  return remoteHeads(tmpdir(), r.url).then((heads) => {
    assert.deepEqual(Object.fromEntries(heads), { 'refs/heads/main': sha, 'refs/tags/light': sha, 'refs/tags/v1': sha });
  });
});

test('a push, a new branch and a tag on a polled remote each start one pipeline', { timeout: 120_000 }, async () => {
  const s = await testServer({ pollIntervalMs: 300, runner: false });
  try {
    const r = remote();
    r.git('push', '-q', 'origin', 'main');
    const project = (await s.call<{ id: number }>('POST', '/api/projects', { path: r.url })).body.id;
    // The first poll notes the heads and starts nothing.
    await waitFor(async () => (await s.ctx.db.query('SELECT 1 FROM polled_refs WHERE project_id = $1', [project])).length > 0, 20_000, 'the first poll');
    await new Promise((res) => setTimeout(res, 1000));
    assert.deepEqual(await pipelines(s, project), [], 'adding a project starts nothing');

    const pushed = r.commit('second');
    r.git('push', '-q', 'origin', 'main');
    await waitFor(async () => (await pipelines(s, project)).length === 1, 20_000, 'the push to be polled');
    const [p] = await pipelines(s, project);
    assert.deepEqual([p!.source, p!.branch, p!.tag, p!.sha], ['push', 'main', null, pushed]);

    r.git('checkout', '-q', '-b', 'feature');
    const onFeature = r.commit('feature work');
    r.git('push', '-q', 'origin', 'feature');
    r.git('tag', 'v1.0.0', pushed);
    r.git('push', '-q', 'origin', 'v1.0.0');
    await waitFor(async () => (await pipelines(s, project)).length === 3, 20_000, 'the branch and the tag to be polled');
    const made = (await pipelines(s, project)).map((x) => [x.branch, x.tag, x.sha]);
    assert.deepEqual(made.slice(0, 2).sort(), [['feature', null, onFeature], [null, 'v1.0.0', pushed]].sort());

    // Nothing new: a few more polls start nothing.
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal((await pipelines(s, project)).length, 3, 'no head starts twice');

    // A project with a webhook gets its pushes that way: not polled.
    assert.equal((await s.call('POST', `/api/projects/${project}/webhook`)).status, 200);
    r.commit('after the webhook');
    r.git('push', '-q', 'origin', 'feature');
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal((await pipelines(s, project)).length, 3, 'a project with a webhook is not polled');
  } finally {
    await s.close();
  }
});

test('two replicas on one PostgreSQL poll a remote and make one pipeline per push', { skip: !PG_URL && 'FERRY_TEST_DATABASE_URL is not set', timeout: 120_000 }, async () => {
  const schema = await createSchema();
  const a = await testServer({ databaseUrl: schema.url, runner: false, pollIntervalMs: 200 });
  const b = await testServer({ databaseUrl: schema.url, runner: false, pollIntervalMs: 200 });
  try {
    const r = remote();
    r.git('push', '-q', 'origin', 'main');
    const project = (await a.call<{ id: number }>('POST', '/api/projects', { path: r.url })).body.id;
    await waitFor(async () => (await a.ctx.db.query('SELECT 1 FROM polled_refs WHERE project_id = $1', [project])).length > 0, 20_000, 'the first poll');
    const shas: string[] = [];
    for (let i = 0; i < 4; i++) {
      shas.push(r.commit(`push ${i}`));
      r.git('push', '-q', 'origin', 'main');
      await waitFor(async () => (await pipelines(a, project)).length === i + 1, 20_000, `push ${i} to be polled`);
    }
    await new Promise((res) => setTimeout(res, 1000));
    const made = await pipelines(a, project); // one store: what either replica made
    assert.deepEqual(made.map((p) => p.sha).reverse(), shas, 'one pipeline per push, none twice');
  } finally {
    await b.close();
    await a.close();
    await schema.drop();
  }
});
