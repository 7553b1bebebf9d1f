import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { gitea } from '../../../src/server/webhooks/gitea.js';
import type { Trigger, WebhookRequest } from '../../../src/server/webhooks/types.js';
import { SECRET, bytes, fixtureBody, hmacHex, json, oneByteChanged, request } from './support.js';

const DELIVERY = 'f6266f16-1bf3-46a5-9ea4-602e06ead473';

/** The headers Gitea sends (services/webhook/deliver.go), GitHub-compatible ones included. */
function delivery(body: Buffer, event = 'push', secret = SECRET): WebhookRequest {
  const sig = hmacHex(body, secret);
  return request(body, {
    'x-gitea-delivery': DELIVERY,
    'x-gitea-event': event,
    'x-gitea-signature': sig,
    'x-gogs-delivery': DELIVERY,
    'x-gogs-event': event,
    'x-gogs-signature': sig,
    'x-hub-signature-256': `sha256=${sig}`,
    'x-github-delivery': DELIVERY,
    'x-github-event': event,
    'content-type': 'application/json',
  });
}

function only(req: WebhookRequest, keep: string[]): WebhookRequest {
  return { ...req, headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => keep.includes(k))) };
}

const FIXTURES = [
  ['gitea/push.json', 'push'],
  ['gitea/pull-request-fork.json', 'pull_request'],
] as const;

describe('gitea verify', () => {
  for (const [name, event] of FIXTURES) {
    test(`${name}: the signature decides`, () => {
      const body = fixtureBody(name);
      const good = delivery(body, event);
      assert.deepEqual(gitea.verify(good, SECRET), { ok: true, deliveryId: DELIVERY });
      assert.equal(gitea.verify(delivery(body, event, 'another secret'), SECRET).ok, false);
      assert.equal(gitea.verify({ ...good, rawBody: oneByteChanged(body) }, SECRET).ok, false);
      const wrong = gitea.verify({ ...good, headers: { ...good.headers, 'x-gitea-signature': 'cd'.repeat(32) } }, SECRET);
      assert.deepEqual(wrong, { ok: false, status: 401, reason: 'x-gitea-signature does not match the body and the configured secret' });
      assert.deepEqual(gitea.verify(only(good, ['x-gitea-event', 'x-gitea-delivery']), SECRET), {
        ok: false,
        status: 401,
        reason: 'missing signature header (x-forgejo-signature or x-gitea-signature or x-hub-signature-256)',
      });
    });
  }

  test('each of the signature headers is enough on its own, Forgejo included', () => {
    const good = delivery(fixtureBody('gitea/push.json'));
    const sig = good.headers['x-gitea-signature'] as string;
    assert.equal(gitea.verify(only(good, ['x-gitea-signature']), SECRET).ok, true);
    assert.equal(gitea.verify(only(good, ['x-hub-signature-256']), SECRET).ok, true);
    const forgejo = request(good.rawBody, { 'x-forgejo-event': 'push', 'x-forgejo-delivery': DELIVERY, 'x-forgejo-signature': sig });
    assert.deepEqual(gitea.verify(forgejo, SECRET), { ok: true, deliveryId: DELIVERY });
  });

  test('an empty secret verifies nothing; malformed signatures are refused, not thrown on', () => {
    const body = fixtureBody('gitea/push.json');
    assert.equal(gitea.verify(delivery(body, 'push', ''), '').ok, false);
    const good = delivery(body);
    const sig = good.headers['x-gitea-signature'] as string;
    for (const bad of [`sha256=${sig}`, sig.slice(2), `${sig}ff`, 'not hex']) {
      const v = gitea.verify(only({ ...good, headers: { ...good.headers, 'x-gitea-signature': bad } }, ['x-gitea-signature']), SECRET);
      assert.equal(v.ok, false, bad);
      assert.equal(!v.ok && v.status, 401);
    }
  });

  test('comparison is timingSafeEqual on two 32-byte digests', (t) => {
    const spy = t.mock.method(crypto, 'timingSafeEqual');
    const good = delivery(fixtureBody('gitea/push.json'));
    gitea.verify(good, SECRET);
    gitea.verify({ ...good, headers: { ...good.headers, 'x-gitea-signature': '00'.repeat(32) } }, SECRET);
    assert.equal(spy.mock.callCount(), 2);
    for (const call of spy.mock.calls) assert.deepEqual(call.arguments.map((b) => b.byteLength), [32, 32]);
  });
});

describe('gitea parse', () => {
  const REPO = {
    fullName: 'gitea/webhooks',
    cloneUrl: 'http://localhost:3000/gitea/webhooks.git',
    sshUrl: 'ssh://gitea@localhost:2222/gitea/webhooks.git',
    htmlUrl: 'http://localhost:3000/gitea/webhooks',
  };

  test('push (documentation example): the head commit is found among the commits', () => {
    assert.deepEqual(gitea.parse(delivery(fixtureBody('gitea/push.json'))), {
      forge: 'gitea',
      kind: 'push',
      repository: REPO,
      sha: 'bffeb74224043ba2feb48d137756c8a9331c449a',
      ref: 'refs/heads/develop',
      branch: 'develop',
      tag: null,
      before: '28e1879d029cb852e4844d9c718537df08844e03',
      deleted: false,
      actor: 'gitea',
      message: 'Webhooks Yay!',
      trusted: true,
      source: 'push',
    } satisfies Trigger);
  });

  test('push of a tag and deletion of a branch', () => {
    const payload = json(fixtureBody('gitea/push.json'));
    payload.ref = 'refs/tags/v2.0.0';
    const tag = gitea.parse(delivery(bytes(payload))) as Trigger;
    assert.deepEqual([tag.kind, tag.tag, tag.branch, tag.source], ['tag', 'v2.0.0', null, 'push']);
    payload.ref = 'refs/heads/develop';
    payload.after = '0'.repeat(40);
    payload.commits = [];
    const gone = gitea.parse(delivery(bytes(payload))) as Trigger;
    assert.deepEqual([gone.deleted, gone.sha, gone.branch], [true, '0'.repeat(40), 'develop']);
  });

  const forkPr: Trigger = {
    forge: 'gitea',
    kind: 'merge_request',
    repository: REPO,
    sha: '7fd1a60b01f91b314f59955a4e4d4e80d8edf11d',
    ref: 'refs/pull/7/head',
    branch: null,
    tag: null,
    deleted: false,
    actor: 'contributor',
    mergeRequest: {
      number: 7,
      title: 'Document webhook secrets',
      sourceBranch: 'main',
      targetBranch: 'main',
      sourceRepo: 'contributor/webhooks',
      targetRepo: 'gitea/webhooks',
      fromFork: true,
      action: 'opened',
    },
    trusted: false,
    source: 'merge_request_event',
  };

  test('pull request from a fork is not trusted', () => {
    assert.deepEqual(gitea.parse(delivery(fixtureBody('gitea/pull-request-fork.json'), 'pull_request')), forkPr);
  });

  test('pull request within the repository is trusted; "synchronized" (Gitea spelling) starts too', () => {
    const payload = json(fixtureBody('gitea/pull-request-fork.json'));
    payload.pull_request.head.repo_id = 140;
    payload.pull_request.head.repo = payload.pull_request.base.repo;
    payload.pull_request.head.label = 'feature';
    payload.pull_request.head.ref = 'feature';
    payload.action = 'synchronized';
    assert.deepEqual(gitea.parse(delivery(bytes(payload), 'pull_request')), {
      ...forkPr,
      mergeRequest: { ...forkPr.mergeRequest!, sourceBranch: 'feature', sourceRepo: 'gitea/webhooks', fromFork: false, action: 'synchronized' },
      trusted: true,
    } satisfies Trigger);
  });

  test('other pull request actions and events are ignored; the event header is Gitea\'s or Forgejo\'s', () => {
    const payload = json(fixtureBody('gitea/pull-request-fork.json'));
    for (const action of ['closed', 'edited', 'label_updated', 'assigned']) {
      payload.action = action;
      assert.deepEqual(gitea.parse(delivery(bytes(payload), 'pull_request')), { ignored: `pull_request "${action}" starts no pipeline` });
    }
    assert.deepEqual(gitea.parse(delivery(bytes({}), 'issues')), { ignored: 'issues events start nothing' });
    assert.match((gitea.parse(delivery(bytes({}), 'create')) as { ignored: string }).ignored, /^create events start nothing/);
    const body = fixtureBody('gitea/push.json');
    assert.deepEqual(gitea.parse(request(body, { 'x-github-event': 'push' })), { ignored: 'no X-Gitea-Event or X-Forgejo-Event header' });
    assert.equal((gitea.parse(request(body, { 'x-forgejo-event': 'push' })) as Trigger).forge, 'gitea');
    assert.deepEqual(gitea.parse(delivery(Buffer.from('payload=%7B%7D'))), { ignored: 'body is not JSON', malformed: true });
  });
});
