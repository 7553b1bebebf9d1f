// Entry points for the webhook route: which forge sent a request, and one function that takes a
// delivery through the checks in the only safe order (size, signature, replay, then parse).
import { gitea } from './gitea.js';
import { github } from './github.js';
import { gitlab } from './gitlab.js';
import type { ReplayGuard } from './replay.js';
import { header } from './signature.js';
import type { Trigger, WebhookRequest, WebhookSource } from './types.js';

export type { ParseResult, Trigger, Verification, WebhookRequest, WebhookSource } from './types.js';
export { MemoryReplayGuard, type MemoryReplayGuardOptions, type ReplayGuard } from './replay.js';

/**
 * Default cap on a body, which must be buffered whole before its signature can be checked, i.e.
 * before we know who sent it. GitLab lists at most 20 commits per push and Gitea's payloads are
 * alike, but a GitHub push lists up to 2048 commits with their changed files (GitHub's example
 * commit is 550 bytes with one file), so 1 MiB would turn away a big merge; 5 MiB covers that while
 * keeping what an anonymous sender can make us hold small. GitHub's own cap is 25 MB. The route passes its own as `maxBytes`
 * and should stop reading at it rather than buffer and then compare.
 */
export const MAX_WEBHOOK_BYTES = 5 * 1024 * 1024;

const SOURCES: Record<Trigger['forge'], WebhookSource> = { github, gitlab, gitea };

export function sourceFor(forge: Trigger['forge']): WebhookSource {
  return SOURCES[forge];
}

/** By the forge's event header. Gitea and Forgejo also send X-GitHub-Event, so they are looked for first. */
export function detectForge(headers: WebhookRequest['headers']): Trigger['forge'] | null {
  const req = { headers, rawBody: Buffer.alloc(0) };
  if (header(req, 'x-gitea-event') !== undefined || header(req, 'x-forgejo-event') !== undefined) return 'gitea';
  if (header(req, 'x-gitlab-event') !== undefined) return 'gitlab';
  if (header(req, 'x-github-event') !== undefined) return 'github';
  return null;
}

export interface ReceiveOptions {
  forge: Trigger['forge'];
  secret: string;
  replay: ReplayGuard;
  maxBytes?: number;
}

/**
 * What to answer. Anything verified is answered 2xx unless its body is not JSON: GitLab disables a
 * hook after repeated failures, and a forge retrying a delivery we already took must stop.
 */
export type Received =
  | { status: 202; trigger: Trigger; deliveryId: string | null }
  /** `trigger` is set for branch and tag deletions: they start nothing, but the server may clean up. */
  | { status: 200; ignored: string; deliveryId: string | null; trigger?: Trigger }
  | { status: 400 | 401 | 413; reason: string };

export async function receiveWebhook(req: WebhookRequest, opts: ReceiveOptions): Promise<Received> {
  const max = opts.maxBytes ?? MAX_WEBHOOK_BYTES;
  if (req.rawBody.length > max) return { status: 413, reason: `body is larger than ${max} bytes` };
  const source = sourceFor(opts.forge);
  const v = source.verify(req, opts.secret);
  if (!v.ok) return { status: v.status, reason: v.reason };
  const { deliveryId } = v;
  // Without an id (older GitLab) there is nothing to check replays against. Ids are only unique
  // per forge, hence the prefix.
  if (deliveryId !== null && (await opts.replay.check(`${opts.forge}:${deliveryId}`)) === 'replayed') {
    return { status: 200, ignored: `delivery ${deliveryId} was already received`, deliveryId };
  }
  const parsed = source.parse(req);
  if (parsed === null) return { status: 200, ignored: 'nothing to run', deliveryId };
  if ('ignored' in parsed) return parsed.malformed ? { status: 400, reason: parsed.ignored } : { status: 200, ignored: parsed.ignored, deliveryId };
  if (parsed.deleted) return { status: 200, ignored: `${parsed.ref} was deleted`, deliveryId, trigger: parsed };
  return { status: 202, trigger: parsed, deliveryId };
}
