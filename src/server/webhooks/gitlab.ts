// GitLab: X-Gitlab-Token carries the secret itself (no signature over the body), so a captured
// request could be replayed with another body; replay protection by delivery id and HTTPS are what
// stand in the way. Idempotency-Key (GitLab 17.4+) stays the same across retries of one delivery;
// older versions only send X-Gitlab-Event-UUID.
import { verifyToken } from './signature.js';
import { int, isZeroSha, mergeRequestTrigger, need, obj, parseWith, positive, pushTrigger, repository, str, type Json } from './payload.js';
import type { ParseResult, WebhookSource } from './types.js';

// "update" also fires for title, label and approval changes; only an update carrying `oldrev`
// brought new commits, which is when GitLab itself runs a merge request pipeline.
const STARTING_ACTIONS = new Set(['open', 'reopen', 'update']);

function project(p: Json | undefined) {
  return repository(p?.path_with_namespace, p?.git_http_url, p?.git_ssh_url, p?.web_url);
}

function push(body: Json): ParseResult {
  const after = str(body.after);
  const commits = Array.isArray(body.commits) ? body.commits.map(obj) : [];
  // Commits are listed oldest first and capped at 20; look the head up rather than trust the order.
  const head = commits.find((c) => c !== undefined && c.id === after);
  const checkout = body.checkout_sha;
  return pushTrigger({
    forge: 'gitlab',
    repository: project(obj(body.project)),
    ref: body.ref,
    before: body.before,
    after,
    // checkout_sha is the commit an annotated tag points at (`after` is the tag object).
    commit: after !== undefined && !isZeroSha(after) ? checkout : undefined,
    actor: str(body.user_username) ?? body.user_name,
    message: head?.message,
  });
}

function mergeRequest(body: Json): ParseResult {
  const mr = need(obj(body.object_attributes), 'object_attributes');
  const action = need(str(mr.action), 'object_attributes.action');
  if (!STARTING_ACTIONS.has(action)) return { ignored: `merge request "${action}" starts no pipeline` };
  if (action === 'update' && !str(mr.oldrev)) return { ignored: 'merge request update without new commits starts no pipeline' };
  const sourceId = need(int(mr.source_project_id), 'object_attributes.source_project_id');
  const targetId = need(int(mr.target_project_id), 'object_attributes.target_project_id');
  const lastCommit = need(obj(mr.last_commit), 'object_attributes.last_commit');
  const iid = positive(mr.iid, 'object_attributes.iid');
  return mergeRequestTrigger({
    forge: 'gitlab',
    repository: project(obj(mr.target) ?? obj(body.project)),
    ref: `refs/merge-requests/${iid}/head`,
    sha: lastCommit.id,
    number: iid,
    title: mr.title,
    sourceBranch: mr.source_branch,
    targetBranch: mr.target_branch,
    sourceRepo: obj(mr.source)?.path_with_namespace,
    fromFork: sourceId !== targetId,
    action,
    actor: obj(body.user)?.username,
    message: lastCommit.message,
  });
}

export const gitlab: WebhookSource = {
  forge: 'gitlab',
  verify: (req, secret) => verifyToken(req, secret, 'x-gitlab-token', ['idempotency-key', 'x-gitlab-event-uuid']),
  parse: (req) =>
    parseWith(req, (body) => {
      const kind = need(str(body.object_kind), 'object_kind');
      switch (kind) {
        case 'push':
        case 'tag_push':
          return push(body);
        case 'merge_request':
          return mergeRequest(body);
        default:
          return { ignored: `${kind} events start nothing` };
      }
    }),
};
