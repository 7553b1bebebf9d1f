// Gitea and Forgejo: X-Gitea-Signature / X-Forgejo-Signature are the bare hex HMAC-SHA256 of the
// body, and both also send X-Hub-Signature-256 ("sha256=" + the same hex) for GitHub-style
// receivers. They send X-GitHub-Event too, which is why detection looks for Gitea's headers first.
import { header, verifyHmac } from './signature.js';
import { int, mergeRequestTrigger, need, obj, parseWith, positive, pushTrigger, repository, str, type Json } from './payload.js';
import type { ParseResult, WebhookSource } from './types.js';

// Gitea spells GitHub's "synchronize" as "synchronized"; labels, assignees, reviews and edits
// arrive as pull_request events too and change no code.
const STARTING_ACTIONS = new Set(['opened', 'synchronized', 'reopened']);

function repo(r: Json | undefined) {
  return repository(r?.full_name, r?.clone_url, r?.ssh_url, r?.html_url);
}

function login(u: Json | undefined): unknown {
  return str(u?.login) ?? u?.username;
}

function push(body: Json): ParseResult {
  const after = str(body.after);
  const head = obj(body.head_commit) ?? (Array.isArray(body.commits) ? body.commits.map(obj).find((c) => c?.id === after) : undefined);
  const ref = str(body.ref);
  return pushTrigger({
    forge: 'gitea',
    repository: repo(obj(body.repository)),
    ref,
    before: body.before,
    after,
    commit: ref?.startsWith('refs/tags/') ? head?.id : undefined,
    actor: login(obj(body.pusher)) ?? login(obj(body.sender)),
    message: head?.message,
  });
}

function pullRequest(body: Json): ParseResult {
  const action = need(str(body.action), 'action');
  if (!STARTING_ACTIONS.has(action)) return { ignored: `pull_request "${action}" starts no pipeline` };
  const pr = need(obj(body.pull_request), 'pull_request');
  const head = need(obj(pr.head), 'pull_request.head');
  const base = need(obj(pr.base), 'pull_request.base');
  const baseRepo = obj(base.repo) ?? obj(body.repository);
  const headRepo = obj(head.repo);
  const headId = int(head.repo_id) ?? int(headRepo?.id);
  const baseId = need(int(base.repo_id) ?? int(baseRepo?.id), 'pull_request.base.repo_id');
  const number = positive(body.number ?? pr.number, 'number');
  return mergeRequestTrigger({
    forge: 'gitea',
    repository: repo(baseRepo),
    ref: `refs/pull/${number}/head`,
    sha: head.sha,
    number,
    title: pr.title,
    sourceBranch: head.ref,
    targetBranch: base.ref,
    sourceRepo: headRepo?.full_name,
    fromFork: headId === undefined || headId !== baseId,
    action,
    actor: login(obj(body.sender)),
  });
}

export const gitea: WebhookSource = {
  forge: 'gitea',
  verify: (req, secret) =>
    verifyHmac(
      req,
      secret,
      [
        { name: 'x-forgejo-signature', prefix: '' },
        { name: 'x-gitea-signature', prefix: '' },
        { name: 'x-hub-signature-256', prefix: 'sha256=' },
      ],
      ['x-forgejo-delivery', 'x-gitea-delivery'],
    ),
  parse(req) {
    const event = header(req, 'x-forgejo-event') ?? header(req, 'x-gitea-event');
    if (!event) return { ignored: 'no X-Gitea-Event or X-Forgejo-Event header' };
    switch (event) {
      case 'push':
        return parseWith(req, push);
      case 'pull_request':
        return parseWith(req, pullRequest);
      case 'create':
      case 'delete':
        return { ignored: `${event} events start nothing: the push event for the same ref does` };
      default:
        return { ignored: `${event} events start nothing` };
    }
  },
};
