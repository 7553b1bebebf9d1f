import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { github } from '../../../src/server/webhooks/github.js';
import type { Trigger } from '../../../src/server/webhooks/types.js';
import { SECRET, bytes, githubExample, hmacHex, oneByteChanged, request } from './support.js';

const ZERO = '0'.repeat(40);
const DELIVERY = '72d3162e-cc78-11e3-81ab-4c9367dc0958';
const REPO = {
  fullName: 'Codertocat/Hello-World',
  cloneUrl: 'https://github.com/Codertocat/Hello-World.git',
  sshUrl: 'git@github.com:Codertocat/Hello-World.git',
  htmlUrl: 'https://github.com/Codertocat/Hello-World',
};

function delivery(event: string, payload: unknown, secret = SECRET) {
  const body = bytes(payload);
  return request(body, {
    'x-github-event': event,
    'x-github-delivery': DELIVERY,
    'x-hub-signature-256': `sha256=${hmacHex(body, secret)}`,
    'content-type': 'application/json',
  });
}

// GitHub's examples: push[4] a branch pushed with one commit, push[0] a tag pushed, push[1] a tag
// deleted, pull_request[0] opened from the same repository, ping[0].
const SIGNED = [
  ['push', 4],
  ['push', 0],
  ['push', 1],
  ['pull_request', 0],
  ['ping', 0],
] as const;

describe('github verify', () => {
  for (const [event, i] of SIGNED) {
    test(`${event}[${i}]: the signature decides`, () => {
      const good = delivery(event, githubExample(event, i));
      assert.deepEqual(github.verify(good, SECRET), { ok: true, deliveryId: DELIVERY });

      const wrongSecret = delivery(event, githubExample(event, i), 'another secret');
      assert.equal(github.verify(wrongSecret, SECRET).ok, false);

      const wrongSignature = { ...good, headers: { ...good.headers, 'x-hub-signature-256': `sha256=${'ab'.repeat(32)}` } };
      assert.deepEqual(github.verify(wrongSignature, SECRET), {
        ok: false,
        status: 401,
        reason: 'x-hub-signature-256 does not match the body and the configured secret',
      });

      const tampered = { ...good, rawBody: oneByteChanged(good.rawBody) };
      assert.equal(github.verify(tampered, SECRET).ok, false);

      const { 'x-hub-signature-256': _, ...unsigned } = good.headers;
      assert.deepEqual(github.verify({ ...good, headers: unsigned }, SECRET), {
        ok: false,
        status: 401,
        reason: 'missing signature header (x-hub-signature-256)',
      });
    });
  }

  test('an empty secret verifies nothing, not even a body signed with the empty key', () => {
    const req = delivery('push', githubExample('push', 4), '');
    const v = github.verify(req, '');
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.status, 401);
    assert.match(!v.ok ? v.reason : '', /no webhook secret/);
  });

  test('malformed signatures are refused, not thrown on', () => {
    const req = delivery('push', githubExample('push', 4));
    const hex = hmacHex(req.rawBody, SECRET);
    for (const bad of [hex, `sha1=${hex.slice(0, 40)}`, `sha256=${hex.slice(1)}`, `sha256=${hex}00`, `sha256=${'zz'.repeat(32)}`, `sha256=${hex}, sha256=${hex}`, '']) {
      const v = github.verify({ ...req, headers: { ...req.headers, 'x-hub-signature-256': bad } }, SECRET);
      assert.equal(v.ok, false, bad);
      assert.equal(!v.ok && v.status, 401);
    }
    // Repeated headers as an array (how some frameworks pass them) are ambiguous: refused.
    const twice = github.verify({ ...req, headers: { ...req.headers, 'x-hub-signature-256': [`sha256=${hex}`, `sha256=${hex}`] } }, SECRET);
    assert.equal(twice.ok, false);
  });

  test('upper-case hex and mixed-case header names verify', () => {
    const req = delivery('push', githubExample('push', 4));
    const sig = `sha256=${hmacHex(req.rawBody, SECRET).toUpperCase()}`;
    assert.equal(github.verify({ rawBody: req.rawBody, headers: { 'X-Hub-Signature-256': sig } }, SECRET).ok, true);
  });

  test('delivery id: absent is null, unusable is 400', () => {
    const req = delivery('push', githubExample('push', 4));
    const { 'x-github-delivery': _, ...noId } = req.headers;
    assert.deepEqual(github.verify({ ...req, headers: noId }, SECRET), { ok: true, deliveryId: null });
    const v = github.verify({ ...req, headers: { ...req.headers, 'x-github-delivery': 'abc\r\nX-Injected: 1' } }, SECRET);
    assert.deepEqual(v, { ok: false, status: 400, reason: 'x-github-delivery is not a valid delivery id' });
  });

  test('digests are compared with timingSafeEqual on equal lengths, whatever length is sent', (t) => {
    const spy = t.mock.method(crypto, 'timingSafeEqual');
    const req = delivery('push', githubExample('push', 4));
    const hex = hmacHex(req.rawBody, SECRET);
    const wrong = hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');
    assert.equal(github.verify(req, SECRET).ok, true);
    assert.equal(github.verify({ ...req, headers: { ...req.headers, 'x-hub-signature-256': `sha256=${wrong}` } }, SECRET).ok, false);
    assert.equal(github.verify({ ...req, headers: { ...req.headers, 'x-hub-signature-256': `sha256=${hex.slice(0, 20)}` } }, SECRET).ok, false);
    assert.equal(spy.mock.callCount(), 2, 'a signature of the wrong length is refused before any comparison');
    for (const call of spy.mock.calls) {
      const [a, b] = call.arguments as [Buffer, Buffer];
      assert.equal(a.length, 32);
      assert.equal(b.length, 32);
    }
  });
});

describe('github parse', () => {
  test('push of a branch with a commit', () => {
    const expected: Trigger = {
      forge: 'github',
      kind: 'push',
      repository: REPO,
      sha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      ref: 'refs/heads/master',
      branch: 'master',
      tag: null,
      before: ZERO,
      deleted: false,
      actor: 'Codertocat',
      message: 'Initial commit',
      trusted: true,
      source: 'push',
    };
    assert.deepEqual(github.parse(delivery('push', githubExample('push', 4))), expected);
  });

  test('push of a tag: a tag pipeline, reported as source "push" as GitLab does', () => {
    assert.deepEqual(github.parse(delivery('push', githubExample('push', 0))), {
      forge: 'github',
      kind: 'tag',
      repository: REPO,
      sha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      ref: 'refs/tags/simple-tag',
      branch: null,
      tag: 'simple-tag',
      before: ZERO,
      deleted: false,
      actor: 'Codertocat',
      message: 'Adding a .gitignore file',
      trusted: true,
      source: 'push',
    } satisfies Trigger);
  });

  test('deletion of a tag (real example) and of a branch (the same, moved to refs/heads/)', () => {
    const tagDeleted = github.parse(delivery('push', githubExample('push', 1)));
    assert.deepEqual(tagDeleted, {
      forge: 'github',
      kind: 'tag',
      repository: REPO,
      sha: ZERO,
      ref: 'refs/tags/simple-tag',
      branch: null,
      tag: 'simple-tag',
      before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      deleted: true,
      actor: 'Codertocat',
      trusted: true,
      source: 'push',
    } satisfies Trigger);

    const payload = githubExample('push', 1);
    payload.ref = 'refs/heads/feature/old';
    assert.deepEqual(github.parse(delivery('push', payload)), {
      ...tagDeleted,
      kind: 'push',
      ref: 'refs/heads/feature/old',
      branch: 'feature/old',
      tag: null,
    });
  });

  const sameRepoPr: Trigger = {
    forge: 'github',
    kind: 'merge_request',
    repository: REPO,
    sha: 'ec26c3e57ca3a959ca5aad62de7213c562f8c821',
    ref: 'refs/pull/2/head',
    branch: null,
    tag: null,
    deleted: false,
    actor: 'Codertocat',
    mergeRequest: {
      number: 2,
      title: 'Update the README with new information.',
      sourceBranch: 'changes',
      targetBranch: 'master',
      sourceRepo: 'Codertocat/Hello-World',
      targetRepo: 'Codertocat/Hello-World',
      fromFork: false,
      action: 'opened',
    },
    trusted: true,
    source: 'merge_request_event',
  };

  test('pull request opened from the same repository is trusted', () => {
    assert.deepEqual(github.parse(delivery('pull_request', githubExample('pull_request', 0))), sameRepoPr);
  });

  test('pull request from a fork is not trusted (example with head.repo replaced by a fork)', () => {
    const payload = githubExample('pull_request', 0);
    const base = payload.pull_request.base.repo;
    payload.pull_request.head.repo = {
      ...base,
      id: 999_001,
      full_name: 'contributor/Hello-World',
      fork: true,
      clone_url: 'https://github.com/contributor/Hello-World.git',
    };
    payload.pull_request.head.label = 'contributor:master';
    payload.pull_request.head.ref = 'master';
    payload.sender = { ...payload.sender, login: 'contributor' };
    assert.deepEqual(github.parse(delivery('pull_request', payload)), {
      ...sameRepoPr,
      actor: 'contributor',
      mergeRequest: { ...sameRepoPr.mergeRequest!, sourceBranch: 'master', sourceRepo: 'contributor/Hello-World', fromFork: true },
      trusted: false,
    });

    // A deleted fork leaves head.repo null: still a fork.
    payload.pull_request.head.repo = null;
    const gone = github.parse(delivery('pull_request', payload)) as Trigger;
    assert.equal(gone.trusted, false);
    assert.equal(gone.mergeRequest?.sourceRepo, '');
  });

  test('a fork has `fork: true` but so may the base; only differing repositories count', () => {
    const payload = githubExample('pull_request', 0);
    payload.pull_request.head.repo.fork = true;
    payload.pull_request.base.repo.fork = true;
    assert.equal((github.parse(delivery('pull_request', payload)) as Trigger).trusted, true);
  });

  test('synchronize and reopened start pipelines; closed, labeled and others do not', () => {
    for (const [i, action] of [[22, 'synchronize'], [18, 'reopened']] as const) {
      const t = github.parse(delivery('pull_request', githubExample('pull_request', i))) as Trigger;
      assert.equal(t.mergeRequest?.action, action);
      assert.equal(t.source, 'merge_request_event');
    }
    for (const [i, action] of [[3, 'closed'], [8, 'labeled'], [15, 'ready_for_review']] as const) {
      assert.deepEqual(github.parse(delivery('pull_request', githubExample('pull_request', i))), {
        ignored: `pull_request "${action}" starts no pipeline`,
      });
    }
  });

  test('ping, create, delete and unknown events are ignored with a reason', () => {
    assert.deepEqual(github.parse(delivery('ping', githubExample('ping', 0))), { ignored: 'ping: GitHub checking that the hook is reachable' });
    assert.match((github.parse(delivery('create', githubExample('create', 0))) as { ignored: string }).ignored, /^create events start nothing/);
    assert.match((github.parse(delivery('delete', githubExample('delete', 0))) as { ignored: string }).ignored, /^delete events start nothing/);
    assert.deepEqual(github.parse(delivery('issues', {})), { ignored: 'issues events start nothing' });
    assert.deepEqual(github.parse(request(Buffer.from('{}'), {})), { ignored: 'no X-GitHub-Event header' });
  });

  test('a body that is not JSON is malformed; a wrong shape is ignored naming the field', () => {
    assert.deepEqual(github.parse(request(Buffer.from('{"ref": '), { 'x-github-event': 'push' })), { ignored: 'body is not JSON', malformed: true });
    assert.deepEqual(github.parse(request(Buffer.from('[1]'), { 'x-github-event': 'push' })), { ignored: 'body is not a JSON object', malformed: true });
    const payload = githubExample('push', 4);
    payload.after = 42;
    assert.deepEqual(github.parse(delivery('push', payload)), { ignored: 'unexpected payload: after is missing or not of the expected type' });
  });

  test('names that would be unsafe as git arguments are refused', () => {
    const payload = githubExample('push', 4);
    for (const ref of ['refs/heads/-x', 'refs/heads/a..b', 'refs/heads/a b', 'refs/heads/x.lock', 'refs/heads/.hidden', 'refs/heads/a\nb']) {
      payload.ref = ref;
      assert.deepEqual(github.parse(delivery('push', payload)), { ignored: 'unexpected payload: ref is not a valid git ref name' }, ref);
    }
    payload.ref = 'refs/notes/commits';
    assert.deepEqual(github.parse(delivery('push', payload)), { ignored: 'push to refs/notes/commits, which is neither a branch nor a tag' });
    const pr = githubExample('pull_request', 0);
    pr.pull_request.head.sha = '--upload-pack=touch /tmp/pwned';
    assert.deepEqual(github.parse(delivery('pull_request', pr)), { ignored: 'unexpected payload: head commit is not a commit id' });
  });
});
