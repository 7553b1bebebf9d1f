// A push to a repository on the server's machine starts its pipeline through the post-receive
// hook the server installs (bash over /dev/tcp: no program to start), for branches and tags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRepo } from '../helpers/repo.js';
import { waitFor } from '../helpers/procs.js';
import { testServer } from './harness.js';

test('git push to a local bare repository starts a pipeline for the pushed branch and tag', { timeout: 120_000 }, async () => {
  const server = await testServer();
  try {
    const work = makeRepo({ 'ferry.yml': 'show:\n  script: echo "ref=$CI_COMMIT_REF_NAME sha=$CI_COMMIT_SHA"\n' });
    const bare = join(mkdtempSync(join(tmpdir(), 'ferry-bare-')), 'shop.git');
    execFileSync('git', ['clone', '--quiet', '--bare', work.dir, bare]);
    const project = await server.call<{ id: number; hook: { installed: boolean } }>('POST', '/api/projects', { path: bare });
    assert.equal(project.status, 201);
    assert.equal(project.body.hook.installed, true);
    const hook = join(bare, 'hooks', 'post-receive');
    assert.equal(statSync(hook).mode & 0o777, 0o700, 'the hook holds a token: only its owner reads it');
    assert.match(readFileSync(hook, 'utf8'), /Installed by Ferry/);

    work.write('app.txt', 'v2');
    const sha = work.commit('v2');
    work.git('remote', 'add', 'server', bare);
    const push = execFileSync('git', ['push', '--quiet', 'server', 'main'], { cwd: work.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    void push;
    let list: { id: string; sha: string; branch: string | null; tag: string | null; source: string }[] = [];
    await waitFor(async () => {
      list = (await server.call<typeof list>('GET', `/api/projects/${project.body.id}/pipelines`)).body;
      return list.length === 1;
    }, 10_000, 'the push to start a pipeline');
    assert.equal(list[0].sha, sha);
    assert.equal(list[0].branch, 'main');
    assert.equal(list[0].source, 'push');
    const p = await server.waitPipeline(list[0].id);
    assert.equal(p.status, 'success');
    assert.match((await server.call<string>('GET', `/api/jobs/${p.jobs[0].id}/log`)).body, new RegExp(`ref=main sha=${sha}`));

    work.git('tag', 'v2.0');
    execFileSync('git', ['push', '--quiet', 'server', 'v2.0'], { cwd: work.dir, stdio: 'ignore' });
    await waitFor(async () => (await server.call<typeof list>('GET', `/api/projects/${project.body.id}/pipelines`)).body.length === 2, 10_000, 'the tag push to start a pipeline');
    const tagged = (await server.call<typeof list>('GET', `/api/projects/${project.body.id}/pipelines`)).body[0];
    assert.equal(tagged.tag, 'v2.0');
    assert.equal(tagged.branch, null);

    const forged = await fetch(`${server.url}/api/hooks/local/${project.body.id}`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-ferry-hook-token': 'guess' }, body: `${'0'.repeat(40)} ${sha} refs/heads/main\n` });
    assert.equal(forged.status, 404, 'a wrong hook token starts nothing');
  } finally {
    await server.close();
  }
});
