// GitHub: X-Hub-Signature-256 is "sha256=" + hex HMAC-SHA256 of the body; X-GitHub-Delivery is a
// GUID per delivery (a manual redelivery reuses it, which replay protection then drops).
import { header, verifyHmac } from './signature.js';
import { int, mergeRequestTrigger, need, obj, parseWith, positive, pushTrigger, repository, str, type Json } from './payload.js';
import type { ParseResult, WebhookSource } from './types.js';

// GitHub Actions' default for pull_request: new, new commits, reopened. Labels, edits and
// reviews change no code.
const STARTING_ACTIONS = new Set(['opened', 'synchronize', 'reopened']);

function repo(r: Json | undefined) {
  return repository(r?.full_name, r?.clone_url, r?.ssh_url, r?.html_url);
}

function push(body: Json): ParseResult {
  const head = obj(body.head_commit);
  const ref = str(body.ref);
  return pushTrigger({
    forge: 'github',
    repository: repo(obj(body.repository)),
    ref,
    before: body.before,
    after: body.after,
    // For an annotated tag, `after` is the tag object; head_commit is what it points at.
    commit: ref?.startsWith('refs/tags/') ? head?.id : undefined,
    actor: str(obj(body.sender)?.login) ?? obj(body.pusher)?.name,
    message: head?.message,
  });
}

function pullRequest(body: Json): ParseResult {
  const action = need(str(body.action), 'action');
  if (!STARTING_ACTIONS.has(action)) return { ignored: `pull_request "${action}" starts no pipeline` };
  const pr = need(obj(body.pull_request), 'pull_request');
  const head = need(obj(pr.head), 'pull_request.head');
  const base = need(obj(pr.base), 'pull_request.base');
  const baseRepo = need(obj(base.repo), 'pull_request.base.repo');
  // head.repo is null once the fork is deleted. Its own `fork` flag says whether it is a fork of
  // anything, not whether it differs from the base, so compare ids.
  const headRepo = obj(head.repo);
  const fromFork = !headRepo || int(headRepo.id) === undefined || int(headRepo.id) !== int(baseRepo.id);
  const number = positive(body.number ?? pr.number, 'number');
  return mergeRequestTrigger({
    forge: 'github',
    repository: repo(baseRepo),
    ref: `refs/pull/${number}/head`,
    sha: head.sha,
    number,
    title: pr.title,
    sourceBranch: head.ref,
    targetBranch: base.ref,
    sourceRepo: headRepo?.full_name,
    fromFork,
    action,
    actor: obj(body.sender)?.login,
  });
}

export const github: WebhookSource = {
  forge: 'github',
  verify: (req, secret) => verifyHmac(req, secret, [{ name: 'x-hub-signature-256', prefix: 'sha256=' }], ['x-github-delivery']),
  parse(req) {
    const event = header(req, 'x-github-event');
    if (!event) return { ignored: 'no X-GitHub-Event header' };
    switch (event) {
      case 'push':
        return parseWith(req, push);
      case 'pull_request':
        return parseWith(req, pullRequest);
      case 'ping':
        return parseWith(req, () => ({ ignored: 'ping: GitHub checking that the hook is reachable' }));
      case 'create':
      case 'delete':
        return { ignored: `${event} events start nothing: the push event for the same ref does` };
      default:
        return { ignored: `${event} events start nothing` };
    }
  },
};
