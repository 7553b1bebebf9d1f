import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { gitlab } from '../../../src/server/webhooks/gitlab.js';
import type { Trigger, WebhookRequest } from '../../../src/server/webhooks/types.js';
import { SECRET, bytes, fixtureBody, json, oneByteChanged, request } from './support.js';

const EVENT_UUID = '13792a34-cac6-4fda-95a8-c58e00a3954e';
const IDEMPOTENCY_KEY = 'f5e5f430-f57b-4e6e-9fac-d9128cd7232f';

function delivery(body: Buffer, event = 'Push Hook', token = SECRET): WebhookRequest {
  return request(body, {
    'x-gitlab-event': event,
    'x-gitlab-token': token,
    'x-gitlab-event-uuid': EVENT_UUID,
    'idempotency-key': IDEMPOTENCY_KEY,
    'content-type': 'application/json',
  });
}

const FIXTURES = [
  ['gitlab/push.json', 'Push Hook'],
  ['gitlab/tag-push.json', 'Tag Push Hook'],
  ['gitlab/merge-request.json', 'Merge Request Hook'],
  ['gitlab/merge-request-fork.json', 'Merge Request Hook'],
] as const;

describe('gitlab verify', () => {
  for (const [name, event] of FIXTURES) {
    test(`${name}: the token decides`, () => {
      const body = fixtureBody(name);
      assert.deepEqual(gitlab.verify(delivery(body, event), SECRET), { ok: true, deliveryId: IDEMPOTENCY_KEY });
      for (const wrong of ['another secret', SECRET.slice(0, -1), SECRET + 'x', SECRET.toUpperCase()]) {
        assert.deepEqual(gitlab.verify(delivery(body, event, wrong), SECRET), {
          ok: false,
          status: 401,
          reason: 'x-gitlab-token does not match the configured secret',
        });
      }
      const { 'x-gitlab-token': _, ...noToken } = delivery(body, event).headers;
      assert.deepEqual(gitlab.verify(request(body, noToken), SECRET), { ok: false, status: 401, reason: 'missing x-gitlab-token header' });
    });
  }

  test('the token signs nothing: a changed body still verifies, which is why replays are tracked', () => {
    const body = fixtureBody('gitlab/push.json');
    assert.equal(gitlab.verify(delivery(oneByteChanged(body)), SECRET).ok, true);
  });

  test('an empty secret verifies nothing, not even an empty token', () => {
    const body = fixtureBody('gitlab/push.json');
    for (const token of ['', 'anything']) {
      const v = gitlab.verify(delivery(body, 'Push Hook', token), '');
      assert.equal(v.ok, false);
      assert.equal(!v.ok && v.status, 401);
    }
  });

  test('delivery id: Idempotency-Key (kept across retries), else X-Gitlab-Event-UUID, else none', () => {
    const body = fixtureBody('gitlab/push.json');
    const { 'idempotency-key': _, ...older } = delivery(body).headers;
    assert.deepEqual(gitlab.verify(request(body, older), SECRET), { ok: true, deliveryId: EVENT_UUID });
    const { 'x-gitlab-event-uuid': __, ...oldest } = older;
    assert.deepEqual(gitlab.verify(request(body, oldest), SECRET), { ok: true, deliveryId: null });
  });

  test('tokens are compared as SHA-256 digests with timingSafeEqual, so lengths never differ', (t) => {
    const spy = t.mock.method(crypto, 'timingSafeEqual');
    const body = fixtureBody('gitlab/push.json');
    for (const token of [SECRET, 'x', 'y'.repeat(1000)]) gitlab.verify(delivery(body, 'Push Hook', token), SECRET);
    assert.equal(spy.mock.callCount(), 3);
    for (const call of spy.mock.calls) {
      const [a, b] = call.arguments as [Buffer, Buffer];
      assert.equal(a.length, 32);
      assert.equal(b.length, 32);
    }
  });
});

describe('gitlab parse', () => {
  test('push (documentation example)', () => {
    assert.deepEqual(gitlab.parse(delivery(fixtureBody('gitlab/push.json'))), {
      forge: 'gitlab',
      kind: 'push',
      repository: {
        fullName: 'mike/diaspora',
        cloneUrl: 'http://example.com/mike/diaspora.git',
        sshUrl: 'git@example.com:mike/diaspora.git',
        htmlUrl: 'http://example.com/mike/diaspora',
      },
      sha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
      ref: 'refs/heads/master',
      branch: 'master',
      tag: null,
      before: '95790bf891e76fee5e1747ab589903a6a1f80f22',
      deleted: false,
      actor: 'jsmith',
      message: 'fixed readme',
      trusted: true,
      source: 'push',
    } satisfies Trigger);
  });

  test('tag push (documentation example): no username in the payload, so the name', () => {
    assert.deepEqual(gitlab.parse(delivery(fixtureBody('gitlab/tag-push.json'), 'Tag Push Hook')), {
      forge: 'gitlab',
      kind: 'tag',
      repository: {
        fullName: 'jsmith/example',
        cloneUrl: 'http://example.com/jsmith/example.git',
        sshUrl: 'git@example.com:jsmith/example.git',
        htmlUrl: 'http://example.com/jsmith/example',
      },
      sha: '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7',
      ref: 'refs/tags/v1.0.0',
      branch: null,
      tag: 'v1.0.0',
      before: '0000000000000000000000000000000000000000',
      deleted: false,
      actor: 'John Smith',
      trusted: true,
      source: 'push',
    } satisfies Trigger);
  });

  test('an annotated tag runs on the commit (checkout_sha), not the tag object (after)', () => {
    const payload = json(fixtureBody('gitlab/tag-push.json'));
    payload.after = 'a'.repeat(40);
    assert.equal((gitlab.parse(delivery(bytes(payload), 'Tag Push Hook')) as Trigger).sha, '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7');
  });

  test('branch deletion: after is all zeros and checkout_sha null', () => {
    const payload = json(fixtureBody('gitlab/push.json'));
    payload.after = '0'.repeat(40);
    payload.checkout_sha = null;
    payload.commits = [];
    const t = gitlab.parse(delivery(bytes(payload))) as Trigger;
    assert.equal(t.deleted, true);
    assert.equal(t.sha, '0'.repeat(40));
    assert.equal(t.message, undefined);
  });

  const sameProjectMr: Trigger = {
    forge: 'gitlab',
    kind: 'merge_request',
    repository: {
      fullName: 'awesome_space/awesome_project',
      cloneUrl: 'http://example.com/awesome_space/awesome_project.git',
      sshUrl: 'git@example.com:awesome_space/awesome_project.git',
      htmlUrl: 'http://example.com/awesome_space/awesome_project',
    },
    sha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    ref: 'refs/merge-requests/1/head',
    branch: null,
    tag: null,
    deleted: false,
    actor: 'root',
    message: 'fixed readme',
    mergeRequest: {
      number: 1,
      title: 'MS-Viewport',
      sourceBranch: 'ms-viewport',
      targetBranch: 'master',
      sourceRepo: 'awesome_space/awesome_project',
      targetRepo: 'awesome_space/awesome_project',
      fromFork: false,
      action: 'open',
    },
    trusted: true,
    source: 'merge_request_event',
  };

  test('merge request within the project (documentation example) is trusted', () => {
    assert.deepEqual(gitlab.parse(delivery(fixtureBody('gitlab/merge-request.json'), 'Merge Request Hook')), sameProjectMr);
  });

  test('merge request from a fork is not trusted, and its "master" is no branch of ours', () => {
    assert.deepEqual(gitlab.parse(delivery(fixtureBody('gitlab/merge-request-fork.json'), 'Merge Request Hook')), {
      ...sameProjectMr,
      actor: 'contributor',
      mergeRequest: {
        ...sameProjectMr.mergeRequest!,
        title: 'Draft: fix viewport from my fork',
        sourceBranch: 'master',
        sourceRepo: 'contributor/awesome_project',
        fromFork: true,
      },
      trusted: false,
    } satisfies Trigger);
  });

  test('open, reopen and updates with new commits start; other updates and actions do not', () => {
    const payload = json(fixtureBody('gitlab/merge-request.json'));
    const parse = (action: string, oldrev?: string) => {
      payload.object_attributes.action = action;
      if (oldrev) payload.object_attributes.oldrev = oldrev;
      else delete payload.object_attributes.oldrev;
      return gitlab.parse(delivery(bytes(payload), 'Merge Request Hook'));
    };
    assert.equal((parse('reopen') as Trigger).mergeRequest?.action, 'reopen');
    assert.equal((parse('update', '95790bf891e76fee5e1747ab589903a6a1f80f22') as Trigger).mergeRequest?.action, 'update');
    assert.deepEqual(parse('update'), { ignored: 'merge request update without new commits starts no pipeline' });
    for (const action of ['close', 'merge', 'approved', 'unapproval']) {
      assert.deepEqual(parse(action), { ignored: `merge request "${action}" starts no pipeline` });
    }
  });

  test('other kinds are ignored; non-JSON is malformed; wrong shapes are ignored', () => {
    assert.deepEqual(gitlab.parse(delivery(bytes({ object_kind: 'note' }), 'Note Hook')), { ignored: 'note events start nothing' });
    assert.deepEqual(gitlab.parse(delivery(Buffer.from('object_kind=push'))), { ignored: 'body is not JSON', malformed: true });
    assert.deepEqual(gitlab.parse(delivery(bytes({ ref: 'refs/heads/x' }))), {
      ignored: 'unexpected payload: object_kind is missing or not of the expected type',
    });
    const payload = json(fixtureBody('gitlab/merge-request.json'));
    payload.object_attributes.source_project_id = '14';
    assert.deepEqual(gitlab.parse(delivery(bytes(payload), 'Merge Request Hook')), {
      ignored: 'unexpected payload: object_attributes.source_project_id is missing or not of the expected type',
    });
  });
});
