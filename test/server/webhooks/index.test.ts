import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_WEBHOOK_BYTES, MemoryReplayGuard, detectForge, receiveWebhook, sourceFor } from '../../../src/server/webhooks/index.js';
import type { Trigger, WebhookRequest } from '../../../src/server/webhooks/types.js';
import { SECRET, bytes, fixtureBody, githubExample, hmacHex, json, request } from './support.js';

describe('detectForge and sourceFor', () => {
  test('by the event header; Gitea and Forgejo win over the X-GitHub-Event they also send', () => {
    assert.equal(detectForge({ 'x-github-event': 'push', 'x-github-delivery': 'd' }), 'github');
    assert.equal(detectForge({ 'x-gitlab-event': 'Push Hook' }), 'gitlab');
    assert.equal(detectForge({ 'x-gitea-event': 'push', 'x-gogs-event': 'push', 'x-github-event': 'push' }), 'gitea');
    assert.equal(detectForge({ 'x-forgejo-event': 'push', 'x-gitea-event': 'push', 'x-github-event': 'push' }), 'gitea');
    assert.equal(detectForge({ 'X-Gitlab-Event': 'Push Hook' }), 'gitlab');
    assert.equal(detectForge({ 'content-type': 'application/json' }), null);
  });

  test('each forge has its source', () => {
    for (const forge of ['github', 'gitlab', 'gitea'] as const) assert.equal(sourceFor(forge).forge, forge);
  });

  test('the default body limit is a few MiB', () => {
    assert.equal(MAX_WEBHOOK_BYTES, 5 * 1024 * 1024);
  });
});

describe('receiveWebhook', () => {
  function push(id: string | null, payload: unknown = githubExample('push', 4), secret = SECRET): WebhookRequest {
    const body = bytes(payload);
    return request(body, {
      'x-github-event': 'push',
      'x-hub-signature-256': `sha256=${hmacHex(body, secret)}`,
      ...(id ? { 'x-github-delivery': id } : {}),
    });
  }
  const opts = () => ({ forge: 'github' as const, secret: SECRET, replay: new MemoryReplayGuard() });

  test('a verified push is accepted once; its replay is answered 200 and starts nothing', async () => {
    const o = opts();
    const first = await receiveWebhook(push('d-1'), o);
    assert.equal(first.status, 202);
    assert.equal(first.status === 202 && first.trigger.branch, 'master');
    assert.deepEqual(await receiveWebhook(push('d-1'), o), { status: 200, ignored: 'delivery d-1 was already received', deliveryId: 'd-1' });
    assert.equal((await receiveWebhook(push('d-2'), o)).status, 202);
  });

  test('unverified requests are refused and do not burn their delivery id', async () => {
    const o = opts();
    assert.deepEqual(await receiveWebhook(push('d-1', undefined, 'forged'), o), {
      status: 401,
      reason: 'x-hub-signature-256 does not match the body and the configured secret',
    });
    assert.equal((await receiveWebhook(push('d-1'), o)).status, 202);
  });

  test('size is checked first', async () => {
    const req = push('d-1');
    assert.deepEqual(await receiveWebhook(req, { ...opts(), maxBytes: req.rawBody.length - 1 }), {
      status: 413,
      reason: `body is larger than ${req.rawBody.length - 1} bytes`,
    });
    assert.equal((await receiveWebhook(req, { ...opts(), maxBytes: req.rawBody.length })).status, 202);
  });

  test('no delivery id: nothing to check replays against', async () => {
    const o = opts();
    assert.equal((await receiveWebhook(push(null), o)).status, 202);
    assert.equal((await receiveWebhook(push(null), o)).status, 202);
  });

  test('deletions and ignored events are 200, a body that is not JSON is 400', async () => {
    const deleted = await receiveWebhook(push('d-1', githubExample('push', 1)), opts());
    assert.equal(deleted.status, 200);
    assert.equal(deleted.status === 200 && deleted.ignored, 'refs/tags/simple-tag was deleted');
    assert.equal(deleted.status === 200 && deleted.trigger?.deleted, true);

    const body = Buffer.from('not json');
    const headers = { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmacHex(body, SECRET)}` };
    assert.deepEqual(await receiveWebhook(request(body, headers), opts()), { status: 400, reason: 'body is not JSON' });

    const ping = bytes(githubExample('ping', 0));
    const pingHeaders = { 'x-github-event': 'ping', 'x-hub-signature-256': `sha256=${hmacHex(ping, SECRET)}` };
    assert.equal((await receiveWebhook(request(ping, pingHeaders), opts())).status, 200);
  });
});

describe('hostile payloads', () => {
  // Every field of real payloads replaced, one at a time, by values of the wrong type or
  // dangerous content: parse must answer (a trigger or a reason), never throw, and any trigger
  // it gives must still carry a commit id and a ref git would accept.
  const VALUES: unknown[] = [null, 0, -1, 1.5, 2 ** 60, '', '-x', '../..', 'a b', [], {}, true];

  function* paths(v: unknown, at: string[] = []): Generator<string[]> {
    if (v === null || typeof v !== 'object') return;
    for (const [k, child] of Object.entries(v)) {
      yield [...at, k];
      yield* paths(child, [...at, k]);
    }
  }

  function replaced(payload: unknown, path: string[], value: unknown): unknown {
    const copy = structuredClone(payload) as any;
    let o = copy;
    for (const k of path.slice(0, -1)) o = o[k];
    o[path[path.length - 1]!] = value;
    return copy;
  }

  const cases: [Trigger['forge'], Record<string, string>, unknown][] = [
    ['github', { 'x-github-event': 'push' }, githubExample('push', 4)],
    ['github', { 'x-github-event': 'pull_request' }, githubExample('pull_request', 0)],
    ['gitlab', {}, json(fixtureBody('gitlab/push.json'))],
    ['gitlab', {}, json(fixtureBody('gitlab/merge-request-fork.json'))],
    ['gitea', { 'x-gitea-event': 'push' }, json(fixtureBody('gitea/push.json'))],
    ['gitea', { 'x-gitea-event': 'pull_request' }, json(fixtureBody('gitea/pull-request-fork.json'))],
  ];

  test('no field of any shape makes parse throw', () => {
    let triggers = 0;
    let ignored = 0;
    for (const [forge, headers, payload] of cases) {
      const source = sourceFor(forge);
      for (const path of paths(payload)) {
        for (const value of VALUES) {
          const result = source.parse(request(bytes(replaced(payload, path, value)), headers));
          assert.ok(result !== null);
          if ('ignored' in result) {
            ignored++;
            continue;
          }
          triggers++;
          assert.match(result.sha, /^[0-9a-f]{40}$/, `${forge} ${path.join('.')}=${JSON.stringify(value)}`);
          assert.match(result.ref, /^refs\/(heads|tags|pull|merge-requests)\/[^-.\s]/);
          assert.equal(typeof result.actor, 'string');
          assert.ok(result.actor.length > 0);
        }
      }
    }
    assert.ok(triggers > 0 && ignored > 0);
    for (const raw of ['', 'null', '[]', '"x"', '1', '{', '\u0000', '{"__proto__": {"polluted": 1}, "object_kind": "push"}']) {
      for (const [forge, headers] of cases) assert.doesNotThrow(() => sourceFor(forge).parse(request(Buffer.from(raw), headers)));
    }
    assert.equal(({} as any).polluted, undefined);
  });
});
