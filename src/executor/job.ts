// One attempt of one job, whatever the executor: prepare the workspace (source, the artifacts
// of the jobs it needs, its cache), run before_script + script, then after_script, then collect
// reports, artifacts and cache. Executors only run lines; everything else is here, once.
import { readFile } from 'node:fs/promises';
import type { FailureReason } from '../pipeline/events.js';
import type { PlannedJob } from '../pipeline/plan.js';
import type { TestReport } from '../reports/types.js';
import { matchFiles } from './files.js';
import type { ArtifactStore, CacheStore, Executor } from './types.js';

/** GitLab's default for after_script; it must not hold a failed job forever. */
const AFTER_SCRIPT_TIMEOUT_MS = 5 * 60_000;

export interface AttemptContext {
  pipelineId: string;
  job: PlannedJob;
  attempt: number;
  workspaceDir: string;
  /**
   * Makes the workspace: a copy of the pipeline's snapshot (SpareWorkspaces, for `ferry run`),
   * or the source a runner unpacked for this attempt alone.
   */
  workspaces: { create(jobDir: string): Promise<void> };
  /** The complete environment of the job's processes. */
  env: Record<string, string>;
  executor: Executor;
  artifacts: ArtifactStore;
  cache: CacheStore;
  signal: AbortSignal;
  log(stream: 'stdout' | 'stderr' | 'system', text: string): void;
  report(kind: 'junit', file: string, report: TestReport): void;
  /** A process group started for this job (so a crash can be cleaned up after). */
  onProcess?(pid: number): void;
}

export interface AttemptResult {
  status: 'success' | 'failed' | 'canceled';
  exitCode: number | null;
  reason?: FailureReason;
}

function sys(ctx: AttemptContext, line: string): void {
  ctx.log('system', `${line}\n`);
}

async function prepare(ctx: AttemptContext): Promise<void> {
  const { job } = ctx;
  await ctx.workspaces.create(ctx.workspaceDir);
  for (const need of job.needs) {
    if (!need.artifacts) continue;
    if (await ctx.artifacts.restore({ pipelineId: ctx.pipelineId, jobId: need.jobId }, ctx.workspaceDir)) {
      sys(ctx, `Downloaded artifacts of ${need.name}`);
    }
  }
  for (const c of job.cache) {
    if (c.policy === 'push') continue;
    const hit = await ctx.cache.restore(c.key, ctx.workspaceDir);
    sys(ctx, hit ? `Restored cache ${c.key}` : `No cache for ${c.key} yet`);
  }
}

async function collect(ctx: AttemptContext, succeeded: boolean): Promise<void> {
  const { job } = ctx;
  const reports = await matchFiles(ctx.workspaceDir, job.reports.junit).catch(() => [] as string[]);
  // The XML parser is loaded by the jobs that have reports, not by every run.
  const { parseJUnit } = reports.length ? await import('../reports/junit.js') : { parseJUnit: null };
  for (const file of reports) {
    try {
      ctx.report('junit', file, parseJUnit!(await readFile(`${ctx.workspaceDir}/${file}`, 'utf8'), file));
    } catch (err) {
      sys(ctx, `Could not read JUnit report ${file}: ${(err as Error).message}`);
    }
  }
  const a = job.artifacts;
  if (a && a.paths.length > 0 && (a.when === 'always' || (a.when === 'on_success') === succeeded)) {
    const n = await ctx.artifacts.save({ pipelineId: ctx.pipelineId, jobId: job.id }, ctx.workspaceDir, a.paths, a.exclude, a.expireInMs);
    sys(ctx, n > 0 ? `Saved ${n} artifact file${n === 1 ? '' : 's'}` : `No files matched artifacts paths ${a.paths.join(', ')}`);
  }
  for (const c of job.cache) {
    if (c.policy === 'pull') continue;
    if (!(c.when === 'always' || (c.when === 'on_success') === succeeded)) continue;
    const n = await ctx.cache.save(c.key, ctx.workspaceDir, c.paths);
    sys(ctx, `Saved cache ${c.key} (${n} file${n === 1 ? '' : 's'})`);
  }
}

export async function runAttempt(ctx: AttemptContext): Promise<AttemptResult> {
  const { job } = ctx;
  if (job.deploy) {
    // Never report a deploy that did not happen as passed.
    sys(ctx, `This job deploys to the environment \`${job.deploy.environment}\`. Releases are carried out by the delivery controller of \`ferry server\` (it drives the edge that runs and routes the application), so a local run does not deploy: the job fails rather than pretend. Run the pipeline on a server: ferry project add . && ferry trigger <project>.`);
    return { status: 'failed', exitCode: null, reason: 'unmet_prerequisites' };
  }
  try {
    await prepare(ctx);
  } catch (err) {
    sys(ctx, `Could not prepare the workspace: ${(err as Error).message}`);
    return { status: 'failed', exitCode: null, reason: 'runner_system_failure' };
  }

  const main = await ctx.executor.runScript({
    cwd: ctx.workspaceDir,
    lines: [...job.beforeScript, ...job.script],
    env: ctx.env,
    timeoutMs: job.timeoutMs,
    signal: ctx.signal,
    onOutput: (stream, text) => ctx.log(stream, text),
    onStart: ctx.onProcess,
  });

  let status: AttemptResult['status'] = 'success';
  let reason: FailureReason | undefined;
  if (main.canceled) {
    status = 'canceled';
    reason = 'canceled';
  } else if (main.systemError) {
    sys(ctx, main.systemError);
    status = 'failed';
    reason = 'runner_system_failure';
  } else if (main.timedOut) {
    status = 'failed';
    reason = 'job_execution_timeout';
  } else if (main.exitCode !== 0) {
    status = 'failed';
    reason = 'script_failure';
  }

  if (job.afterScript.length > 0 && status !== 'canceled') {
    const after = await ctx.executor.runScript({
      cwd: ctx.workspaceDir,
      lines: job.afterScript,
      env: { ...ctx.env, CI_JOB_STATUS: status, FERRY_JOB_STATUS: status },
      timeoutMs: AFTER_SCRIPT_TIMEOUT_MS,
      signal: ctx.signal,
      onOutput: (stream, text) => ctx.log(stream, text),
      onStart: ctx.onProcess,
    });
    // Like GitLab, a failing after_script is reported but does not change the job's result.
    if (after.exitCode !== 0) sys(ctx, `after_script failed (exit ${after.exitCode}); the job's result is unchanged`);
  }

  if (status !== 'canceled') {
    try {
      await collect(ctx, status === 'success');
    } catch (err) {
      sys(ctx, `Could not save the job's outputs: ${(err as Error).message}`);
      if (status === 'success') {
        status = 'failed';
        reason = 'runner_system_failure';
      }
    }
  }
  return { status, exitCode: main.exitCode, reason };
}
