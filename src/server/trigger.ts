// Starting a pipeline on the server: the ferry.yml of the commit, planned with the pipeline's
// variables, recorded and queued. The same planner as `ferry run`.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { ConfigError } from '../config/types.js';
import type { PipelineStarted } from '../pipeline/events.js';
import { pipelineStartedEvent } from '../pipeline/started.js';
import { commitInfo, defaultBranchOf, git, readCommitWithFile, type CommitInfo } from '../pipeline/git.js';
import { plan } from '../pipeline/plan.js';
import { pipelineVariables } from '../pipeline/variables.js';
import type { Db } from '../store/db.js';
import { isRemote, type Project } from '../store/pipelines.js';
import { createPipeline } from '../store/queue.js';
import { slug } from '../executor/workspace.js';
import { publish, type ServerContext } from './context.js';
import { sourceTar } from './sources.js';

export interface TriggerRequest {
  /** Branch, tag or commit; default: the repository's HEAD. */
  rev?: string;
  /** push | web | api | schedule | merge_request_event | trigger ... (GitLab's values). */
  source: string;
  variables?: Record<string, string>;
  /** False for merge requests from forks: such pipelines get no secrets. */
  trusted: boolean;
  /** What the trigger says the commit is (a webhook's push to a branch or tag): wins over git. */
  branch?: string | null;
  tag?: string | null;
  /** The user who started it by hand (API, CLI): a release it makes is theirs (four eyes). */
  triggeredBy?: string;
  /** The slot a scheduled pipeline is for (FERRY_SCHEDULED_AT): a late run still knows its night. */
  scheduledAt?: Date;
}

/** Variables only the server sets; a trigger's variables of these names are dropped. */
const SERVER_VARIABLES = new Set(['FERRY_PIPELINE_TRUSTED', 'FERRY_TRIGGERED_BY', 'FERRY_SCHEDULED_AT']);

/**
 * The git repository to read a project from: its own folder for a local project; for a remote
 * one, a mirror under Ferry's home, fetched before each read.
 */
export async function projectRepo(ctx: ServerContext, project: Project): Promise<string> {
  if (!isRemote(project.path) && existsSync(project.path)) return project.path;
  const mirror = join(ctx.home, 'repos', `${project.id}-${slug(project.name)}.git`);
  if (!existsSync(mirror)) {
    await mkdir(join(ctx.home, 'repos'), { recursive: true });
    await git(ctx.home, ['clone', '--quiet', '--mirror', project.path, mirror]);
  } else {
    await git(mirror, ['fetch', '--quiet', '--prune', 'origin']);
  }
  return mirror;
}

export async function startPipeline(ctx: ServerContext, project: Project, req: TriggerRequest): Promise<{ pipelineId: string; number: number }> {
  // Its jobs will want the commit's files: make them while the pipeline is planned and recorded
  // (src/server/sources.ts), from the start when the trigger names the commit (a push). A
  // failure here is the source route's to report, when a runner asks.
  const early = req.rev && /^[0-9a-f]{40}$/.test(req.rev) && !isRemote(project.path) ? req.rev : null;
  if (early) sourceTar(ctx, project, early).catch(() => undefined);
  const started = await planPipeline(ctx, project, req);
  if (started.sha !== early) sourceTar(ctx, project, started.sha).catch(() => undefined);
  const { number, events } = await createPipeline(ctx.db, started);
  publish(ctx, events);
  return { pipelineId: started.pipelineId, number };
}

/**
 * Records a planned pipeline in the transaction that claims what triggered it (a schedule's
 * slot, a polled head), so that of the replicas that all planned it one records it. `claim`
 * runs even when nothing was planned (it notes that the trigger was seen); `recorded` runs in
 * the same transaction after the pipeline. Starts the commit's tar, as startPipeline does.
 * Returns the pipeline's id; null when the claim was lost or nothing was planned.
 */
export async function recordClaimed(
  ctx: ServerContext,
  project: Project,
  planned: PipelineStarted | null,
  claim: (tx: Db) => Promise<boolean>,
  recorded?: (tx: Db, pipelineId: string) => Promise<void>,
): Promise<string | null> {
  const events = await ctx.db.transaction(async (tx) => {
    if (!(await claim(tx)) || !planned) return [];
    const { events } = await createPipeline(tx, planned);
    await recorded?.(tx, planned.pipelineId);
    return events;
  });
  publish(ctx, events);
  if (!events.length || !planned) return null;
  sourceTar(ctx, project, planned.sha).catch(() => undefined);
  return planned.pipelineId;
}

/**
 * The pipeline a trigger makes, planned but not recorded: the caller records it with
 * createPipeline (startPipeline) or recordClaimed.
 */
/**
 * The commit a trigger names and its ferry.yml. A push or webhook names a full sha and says
 * which branch or tag it is: then one `git cat-file` reads both (what a push waits for); a
 * trigger by branch name or HEAD goes through commitInfo, which works out the branch and tags.
 */
async function readTrigger(repo: string, req: TriggerRequest): Promise<{ commit: CommitInfo; text: Promise<string> }> {
  if (req.rev && /^[0-9a-f]{40}$/.test(req.rev) && (req.branch !== undefined || req.tag !== undefined)) {
    const [c, defaultBranch] = await Promise.all([readCommitWithFile(repo, req.rev, 'ferry.yml'), defaultBranchOf(repo)]);
    const commit: CommitInfo = { repoRoot: repo, sha: c.sha, branch: req.branch ?? null, tag: req.tag ?? null, message: c.message, authorName: c.authorName, authorEmail: c.authorEmail, timestamp: c.timestamp, defaultBranch };
    const text = c.file === null ? Promise.reject(new Error('no ferry.yml')) : Promise.resolve(c.file);
    text.catch(() => undefined); // handled by the caller; never an unhandled rejection meanwhile
    return { commit, text };
  }
  let text: Promise<string> | undefined;
  const commit = await commitInfo(repo, req.rev ?? 'HEAD', async (root, sha) => {
    text = git(root, ['show', `${sha}:ferry.yml`]);
    await text.catch(() => undefined);
  });
  return { commit, text: text! };
}

export async function planPipeline(ctx: ServerContext, project: Project, req: TriggerRequest): Promise<PipelineStarted> {
  const repo = await projectRepo(ctx, project);
  const { commit, text } = await readTrigger(repo, req);
  if (req.branch !== undefined || req.tag !== undefined) {
    commit.branch = req.branch ?? null;
    commit.tag = req.tag ?? null;
  }
  // A branch name given as rev is the branch of this pipeline (commitInfo only knows HEAD's).
  else if (req.rev && !commit.branch && !commit.tag && !/^[0-9a-f]{7,40}$/.test(req.rev)) {
    const isBranch = await git(repo, ['show-ref', '--verify', '--quiet', `refs/heads/${req.rev}`]).then(() => true, () => false);
    if (isBranch) commit.branch = req.rev;
  }
  const configText = await text.catch(() => {
    throw new ConfigError([{ pos: { file: 'ferry.yml', line: 1, col: 1 }, code: 'no-file', message: `no ferry.yml in ${project.name} at ${commit.sha.slice(0, 8)}` }]);
  });
  const { config, issues } = parseConfig(configText, 'ferry.yml');
  if (!config) throw new ConfigError(issues);
  const pipelineId = randomUUID();
  const predefined = pipelineVariables({ commit, pipelineId, source: req.source, projectDir: repo, projectName: project.name });
  // Whether a pipeline is trusted is the server's decision, never a variable someone passes.
  const variables = Object.fromEntries(Object.entries(req.variables ?? {}).filter(([k]) => !SERVER_VARIABLES.has(k)));
  const p = plan({ config, predefined, triggerVariables: variables });
  return pipelineStartedEvent({
    pipelineId,
    project: project.path,
    commit,
    source: req.source,
    configText,
    // Server pipelines keep their predefined variables: runners get them with each job.
    variables: {
      ...predefined,
      ...variables,
      FERRY_PIPELINE_TRUSTED: req.trusted ? 'true' : 'false',
      ...(req.triggeredBy ? { FERRY_TRIGGERED_BY: req.triggeredBy } : {}),
      ...(req.scheduledAt ? { FERRY_SCHEDULED_AT: req.scheduledAt.toISOString() } : {}),
    },
    plan: p,
  });
}
