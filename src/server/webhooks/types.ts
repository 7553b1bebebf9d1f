// What the webhook route hands to a forge's source, and what it gets back. Kept free of any HTTP
// framework so the sources can be tested with bytes and header maps alone.

export interface WebhookRequest {
  /** As Node gives them: lower-case names; repeated headers as arrays or joined with ", ". */
  headers: Record<string, string | string[] | undefined>;
  /** The exact bytes received: signatures are over these, never over re-serialised JSON. */
  rawBody: Buffer;
}

export type Verification =
  | { ok: true; deliveryId: string | null }
  | { ok: false; status: 401 | 400; reason: string };

/** What starts a pipeline, normalised across forges. */
export interface Trigger {
  forge: 'github' | 'gitlab' | 'gitea';
  kind: 'push' | 'tag' | 'merge_request';
  /** For merge requests, the target repository: its refs/pull/N/head (or refs/merge-requests/N/head) holds the head commit even when it lives in a fork. */
  repository: { fullName: string; cloneUrl: string; sshUrl?: string; htmlUrl?: string };
  /** Lower-case hex commit id (40 or 64 digits); all zeros for a deletion. */
  sha: string;
  /** Full ref: refs/heads/main, refs/tags/v1, refs/pull/2/head, refs/merge-requests/1/head. */
  ref: string;
  /** Null for merge requests, as GitLab leaves CI_COMMIT_BRANCH unset there: a fork's branch called "main" must never match a rule meant for the real main. */
  branch: string | null;
  tag: string | null;
  /** Push: previous sha (all zeros on branch creation). */
  before?: string;
  /** Branch/tag deletion pushes start nothing; they are reported so the server can clean up. */
  deleted: boolean;
  /** Who pushed, or who opened/updated the merge request. */
  actor: string;
  /** Head commit message, when the payload carries it. */
  message?: string;
  mergeRequest?: {
    number: number;
    title: string;
    sourceBranch: string;
    targetBranch: string;
    sourceRepo: string;
    targetRepo: string;
    fromFork: boolean;
    action: string;
  };
  /** False for merge requests from forks: such pipelines get no secrets. */
  trusted: boolean;
  /**
   * Becomes FERRY_PIPELINE_SOURCE / CI_PIPELINE_SOURCE, with GitLab's values. GitLab reports tag
   * pipelines as "push", so the built-in sources never produce 'tag' (use `kind` to tell tags apart);
   * it stays in the union for callers written against it.
   */
  source: 'push' | 'merge_request_event' | 'tag';
}

/**
 * The outcome of parsing a verified body. `ignored` means "understood, nothing to run" (answer 2xx
 * so forges that disable failing hooks keep this one); `malformed` means the body was not JSON or
 * not an object (answer 400). Null is never returned by the built-in sources.
 */
export type ParseResult = Trigger | null | { ignored: string; malformed?: true };

export interface WebhookSource {
  readonly forge: Trigger['forge'];
  verify(req: WebhookRequest, secret: string): Verification;
  parse(req: WebhookRequest): ParseResult;
}
