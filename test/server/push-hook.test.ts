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

test('the hook starts no program: with an empty PATH it still sends every ref, its length counted in bytes', { timeout: 30_000 }, async () => {
  const { createServer } = await import('node:http');
  const { writeFileSync } = await import('node:fs');
  const { spawn } = await import('node:child_process');
  const { hookScript } = await import('../../src/server/local-hook.js');
  const got: { body: string; length: string | undefined; token: string | undefined }[] = [];
  const http = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ body, length: req.headers['content-length'], token: req.headers['x-ferry-hook-token'] as string | undefined });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  try {
    const port = (http.address() as { port: number }).port;
    const hook = join(mkdtempSync(join(tmpdir(), 'ferry-hook-')), 'post-receive');
    writeFileSync(hook, hookScript('127.0.0.1', port, 7, 'tok123'), { mode: 0o700 });
    // A branch name with non-ASCII letters: Content-Length must count bytes, not characters.
    const refs = `${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/main\n${'0'.repeat(40)} ${'c'.repeat(40)} refs/heads/fonctionnalité-é\n`;
    // Run as `git` would run it, but with no program to be found on PATH (not spawnSync: this
    // process's HTTP server must answer meanwhile).
    const child = spawn(hook, [], { env: { PATH: '' }, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.end(refs);
    const status = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(status, 0, stderr);
    assert.match(stderr, /ferry: pipeline started/);
    assert.equal(got.length, 1);
    assert.equal(got[0].body, refs, 'every ref, byte for byte');
    assert.equal(Number(got[0].length), Buffer.byteLength(refs));
    assert.equal(got[0].token, 'tok123');
  } finally {
    http.close();
  }
});
