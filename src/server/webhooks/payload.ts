// Reading hostile JSON. Bodies are authenticated but still only as trustworthy as the forge's
// users: branch names, titles and messages come from whoever pushed. Nothing here throws past
// `parseWith`: a field of the wrong type becomes an `ignored` result naming the field.
import type { ParseResult, Trigger, WebhookRequest } from './types.js';

export type Json = Record<string, unknown>;

class Unusable extends Error {}

export function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function int(v: unknown): number | undefined {
  return Number.isSafeInteger(v) ? (v as number) : undefined;
}

/** The value, or the whole payload is unusable because `what` is missing or of the wrong type. */
export function need<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === '') throw new Unusable(`unexpected payload: ${what} is missing or not of the expected type`);
  return v;
}

/** JSON-parses the body and runs `read`, turning any shape problem into an `ignored` result. */
export function parseWith(req: WebhookRequest, read: (body: Json) => ParseResult): ParseResult {
  let body: unknown;
  try {
    body = JSON.parse(req.rawBody.toString('utf8'));
  } catch {
    return { ignored: 'body is not JSON', malformed: true };
  }
  const o = obj(body);
  if (!o) return { ignored: 'body is not a JSON object', malformed: true };
  try {
    return read(o);
  } catch (e) {
    if (e instanceof Unusable) return { ignored: e.message };
    throw e;
  }
}

const SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** A commit id as git prints it (SHA-1 or SHA-256); the server will hand it to git. */
export function sha(v: unknown, what: string): string {
  const s = need(str(v), what).toLowerCase();
  if (!SHA.test(s)) throw new Unusable(`unexpected payload: ${what} is not a commit id`);
  return s;
}

export const isZeroSha = (s: string) => /^0+$/.test(s);

/** git check-ref-format's rules, a little stricter, so that a name is also safe as a git argument. */
export function refName(v: unknown, what: string): string {
  const s = need(str(v), what);
  const bad =
    s.length > 255 ||
    /[\x00-\x20\x7f~^:?*[\\]/.test(s) ||
    s.includes('..') ||
    s.includes('@{') ||
    s.includes('//') ||
    s === '@' ||
    s.startsWith('/') ||
    s.endsWith('/') ||
    s.endsWith('.') ||
    s.endsWith('.lock') ||
    // A branch short name starting with a dash would read as an option to git.
    s.split('/').some((part) => part.startsWith('.') || part.startsWith('-'));
  if (bad) throw new Unusable(`unexpected payload: ${what} is not a valid git ref name`);
  return s;
}

/** A URL the server may pass to git: no whitespace or control characters, no leading dash. */
export function gitUrl(v: unknown, what: string): string {
  const s = need(str(v), what);
  if (/[\x00-\x20\x7f]/.test(s) || s.startsWith('-')) throw new Unusable(`unexpected payload: ${what} is not a usable URL`);
  return s;
}

export function optionalUrl(v: unknown): string | undefined {
  const s = str(v);
  return s && !/[\x00-\x20\x7f]/.test(s) && !s.startsWith('-') ? s : undefined;
}

export function repository(fullName: unknown, cloneUrl: unknown, sshUrl: unknown, htmlUrl: unknown): Trigger['repository'] {
  const r: Trigger['repository'] = { fullName: need(str(fullName), 'repository full name'), cloneUrl: gitUrl(cloneUrl, 'repository clone URL') };
  const ssh = optionalUrl(sshUrl);
  const html = optionalUrl(htmlUrl);
  if (ssh) r.sshUrl = ssh;
  if (html) r.htmlUrl = html;
  return r;
}

export interface PushFacts {
  forge: Trigger['forge'];
  repository: Trigger['repository'];
  ref: unknown;
  before: unknown;
  after: unknown;
  /** The commit a tag points at, when the forge says so: `after` may be an annotated tag object. */
  commit?: unknown;
  actor: unknown;
  message?: unknown;
}

/** A push of a branch or tag, including creation and deletion. Other refs (notes, pulls) start nothing. */
export function pushTrigger(p: PushFacts): Trigger | { ignored: string } {
  const ref = refName(p.ref, 'ref');
  const branch = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
  const tag = ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : null;
  if (branch === null && tag === null) return { ignored: `push to ${ref}, which is neither a branch nor a tag` };
  const after = sha(p.after, 'after');
  const deleted = isZeroSha(after);
  const t: Trigger = {
    forge: p.forge,
    kind: tag === null ? 'push' : 'tag',
    repository: p.repository,
    sha: deleted || p.commit === undefined || p.commit === null ? after : sha(p.commit, 'tag commit'),
    ref,
    branch,
    tag,
    before: sha(p.before, 'before'),
    deleted,
    actor: need(str(p.actor), 'pusher'),
    trusted: true,
    source: 'push',
  };
  const message = str(p.message);
  if (message !== undefined && !deleted) t.message = message;
  return t;
}

export interface MergeRequestFacts {
  forge: Trigger['forge'];
  /** The target repository: the pipeline runs there, on the forge's read-only ref of the head. */
  repository: Trigger['repository'];
  /** refs/pull/N/head or refs/merge-requests/N/head, readable in the target even for forks. */
  ref: string;
  sha: unknown;
  number: number;
  title: unknown;
  sourceBranch: unknown;
  targetBranch: unknown;
  sourceRepo: unknown;
  fromFork: boolean;
  action: string;
  actor: unknown;
  message?: unknown;
}

export function mergeRequestTrigger(m: MergeRequestFacts): Trigger {
  const t: Trigger = {
    forge: m.forge,
    kind: 'merge_request',
    repository: m.repository,
    sha: sha(m.sha, 'head commit'),
    ref: m.ref,
    branch: null,
    tag: null,
    deleted: false,
    actor: need(str(m.actor), 'sender'),
    mergeRequest: {
      number: m.number,
      title: str(m.title) ?? '',
      sourceBranch: refName(m.sourceBranch, 'source branch'),
      targetBranch: refName(m.targetBranch, 'target branch'),
      // A fork that was deleted leaves no name behind; it is still a fork.
      sourceRepo: str(m.sourceRepo) ?? '',
      targetRepo: m.repository.fullName,
      fromFork: m.fromFork,
      action: m.action,
    },
    trusted: !m.fromFork,
    source: 'merge_request_event',
  };
  const message = str(m.message);
  if (message !== undefined) t.message = message;
  return t;
}

export function positive(v: unknown, what: string): number {
  const n = int(v);
  if (n === undefined || n <= 0) throw new Unusable(`unexpected payload: ${what} is not a positive integer`);
  return n;
}
