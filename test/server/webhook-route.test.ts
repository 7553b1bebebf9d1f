// Webhooks into a real server: GitHub's own example push payload, pointed at a commit of a real
// repository and signed with the project's webhook secret, starts that commit's pipeline;
// a wrong signature, a replayed delivery, an oversized body and an unknown project do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { makeRepo } from '../helpers/repo.js';
import { githubExample } from './webhooks/support.js';
import { testServer } from './harness.js';

function post(url: string, body: Buffer, headers: Record<string, string>) {
  return fetch(url, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'application/json', ...headers } });
}

test('a signed GitHub push starts the pipeline of the pushed commit; bad, replayed and oversized deliveries do not', { timeout: 120_000 }, async () => {
  const server = await testServer();
  try {
    const repo = makeRepo({ 'ferry.yml': 'show:\n  script: echo "branch=$FERRY_COMMIT_BRANCH sha=$FERRY_COMMIT_SHA source=$CI_PIPELINE_SOURCE"\n' });
    repo.write('README', 'second commit');
    const sha = repo.commit('second');
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const hook = await server.call<{ secret: string; urls: Record<string, string> }>('POST', `/api/projects/${project.body.id}/webhook`);
    assert.equal(hook.status, 200);
    assert.match(hook.body.urls.github, new RegExp(`/api/hooks/github/${project.body.id}$`));

    const payload = githubExample('push', 4);
    payload.after = sha;
    payload.head_commit.id = sha;
    payload.ref = 'refs/heads/main';
    const body = Buffer.from(JSON.stringify(payload));
    const sign = (b: Buffer, secret = hook.body.secret) => `sha256=${createHmac('sha256', secret).update(b).digest('hex')}`;
    const delivery = randomUUID();
    const headers = { 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': sign(body) };

    const wrong = await post(hook.body.urls.github, body, { ...headers, 'x-hub-signature-256': sign(body, 'not the secret') });
    assert.equal(wrong.status, 401);
    const unsigned = await post(hook.body.urls.github, body, { 'x-github-event': 'push', 'x-github-delivery': randomUUID() });
    assert.equal(unsigned.status, 401);

    const ok = await post(hook.body.urls.github, body, headers);
    assert.equal(ok.status, 202, await ok.clone().text());
    const { pipelineId } = (await ok.json()) as { pipelineId: string };
    const p = await server.waitPipeline(pipelineId);
    assert.equal(p.status, 'success');
    const log = (await server.call<string>('GET', `/api/jobs/${p.jobs[0].id}/log`)).body;
    assert.match(log, new RegExp(`branch=main sha=${sha} source=push`));

    const replay = await post(hook.body.urls.github, body, headers);
    assert.equal(replay.status, 200);
    assert.match(await replay.text(), /already received/);
    const pipelines = await server.call<unknown[]>('GET', `/api/projects/${project.body.id}/pipelines`);
    assert.equal(pipelines.body.length, 1, 'the replay started nothing');

    const huge = Buffer.alloc(6 * 1024 * 1024, 32);
    const big = await post(hook.body.urls.github, huge, { ...headers, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(huge) });
    assert.equal(big.status, 413);

    const nowhere = await post(hook.body.urls.github.replace(/\/\d+$/, '/999'), body, headers);
    assert.equal(nowhere.status, 404);
  } finally {
    await server.close();
  }
});
