// Polling remotes that send no webhooks (like Jenkins' "poll SCM"): every replica runs the loop;
// the store hands each due remote project to one of them (src/store/polling.ts). A poll is one
// `git ls-remote`; each branch or tag head that moved since the last poll starts a pipeline
// (source `push`), recorded in the transaction that moves the head, so a change makes one
// pipeline however many replicas saw it. The first poll of a project only notes its heads:
// adding a project does not start a pipeline for every branch it has. Projects with a webhook
// are not polled (their pushes arrive by webhook).
import type { PipelineStarted } from '../pipeline/events.js';
import { git } from '../pipeline/git.js';
import { getProject } from '../store/pipelines.js';
import { claimDuePolls, forgetRefs, moveRef, seenRefs } from '../store/polling.js';
import type { ServerContext } from './context.js';
import { BackgroundLoop } from './loop.js';
import { planPipeline, recordClaimed } from './trigger.js';

/** `git ls-remote` of a repository: its branch and tag heads, tags as the commits they name. */
export async function remoteHeads(cwd: string, url: string): Promise<Map<string, string>> {
  // `--` ends the options: a URL is never taken for one.
  const out = await git(cwd, ['ls-remote', '--heads', '--tags', '--', url]);
  const heads = new Map<string, string>();
  const peeled = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]{40,64})\t(refs\/(?:heads|tags)\/.+)$/.exec(line);
    if (!m) continue;
    if (m[2]!.endsWith('^{}')) peeled.set(m[2]!.slice(0, -3), m[1]!);
    else heads.set(m[2]!, m[1]!);
  }
  for (const [ref, sha] of peeled) heads.set(ref, sha);
  return heads;
}

/** Polls one project: returns the ids of the pipelines it started. */
export async function pollProject(ctx: ServerContext, projectId: number, firstPoll: boolean, onError: (err: Error) => void = () => undefined): Promise<string[]> {
  const project = await getProject(ctx.db, projectId);
  if (!project) return [];
  const heads = await remoteHeads(ctx.home, project.path);
  const seen = await seenRefs(ctx.db, projectId);
  await forgetRefs(ctx.db, projectId, [...seen.keys()].filter((ref) => !heads.has(ref)));
  const started: string[] = [];
  for (const [ref, sha] of heads) {
    const before = seen.get(ref) ?? null;
    if (before === sha) continue;
    if (firstPoll) {
      await moveRef(ctx.db, projectId, ref, before, sha);
      continue;
    }
    const branch = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
    const tag = ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : null;
    let planned: PipelineStarted | null = null;
    try {
      // A push to the project's own repository: trusted, as a signed push webhook would be.
      planned = await planPipeline(ctx, project, { rev: sha, source: 'push', branch, tag, trusted: true });
    } catch (err) {
      // No ferry.yml at that commit, or an invalid one: the head is noted all the same, so the
      // next poll does not try again; a new commit there is polled as usual.
      onError(new Error(`${project.name} ${ref} ${sha.slice(0, 8)}: ${(err as Error).message}`));
    }
    const id = await recordClaimed(ctx, project, planned, (tx) => moveRef(tx, projectId, ref, before, sha));
    if (id) started.push(id);
  }
  return started;
}

export interface PollLoopOptions {
  /** How often each remote project is polled (the server's --poll-interval). */
  intervalMs: number;
  onError?: (err: Error) => void;
}

/** Looks for due projects every few seconds (at most every interval) and polls them. */
export class PollLoop extends BackgroundLoop {
  constructor(
    private readonly ctx: ServerContext,
    private readonly opts: PollLoopOptions,
  ) {
    super();
  }

  protected async turn(): Promise<number> {
    const onError = this.opts.onError ?? (() => undefined);
    const next = Math.min(this.opts.intervalMs, 5000);
    try {
      for (const p of await claimDuePolls(this.ctx.db, this.opts.intervalMs)) {
        if (this.stopped) return 0;
        // An unreachable remote is said, and tried again at the next interval.
        await pollProject(this.ctx, p.id, p.firstPoll, onError).catch(onError);
      }
    } catch (err) {
      onError(err as Error); // the store is briefly unavailable: the next turn tries again
    }
    return next;
  }
}
