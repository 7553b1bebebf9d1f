// `ferry run`: the pipeline of a commit of a local repository, run on this machine exactly as
// a runner of the server would run it, recorded in the store. Jobs start at once; the store
// is left to a journal (see src/store/journal.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { appendFile, mkdir, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { parseConfig } from '../config/load.js';
import { ConfigError, type PipelineConfig } from '../config/types.js';
import type { EventBus } from '../events/bus.js';
import { runAttempt } from '../executor/job.js';
import { LocalArtifactStore, LocalCacheStore } from '../executor/local-stores.js';
import { LogLimiter, logLimitFromEnv } from '../executor/log-limit.js';
import { ShellExecutor } from '../executor/shell.js';
import type { Executor } from '../executor/types.js';
import { exportCommit, FERRY_DIR, removeDirs, removeInBackground, slug, SpareWorkspaces } from '../executor/workspace.js';
import { countEntries } from '../executor/tree-copy.js';
import { WorkspacePool } from '../executor/workspace-pool.js';
import type { PipelineStarted, PipelineStatus, RunEvent } from './events.js';
import { pipelineStartedEvent } from './started.js';
import { commitInfo, git, type CommitInfo } from './git.js';
import { plan, type Plan, type PlannedJob } from './plan.js';
import { Scheduler, type JobState } from './scheduler.js';
import { jobVariables, pipelineVariables } from './variables.js';

export interface LocalRunOptions {
  /** Any folder inside the repository. */
  dir: string;
  /** The pipeline file, relative to the repository root. */
  file?: string;
  rev?: string;
  dirty?: boolean;
  concurrency?: number;
  variables?: Record<string, string>;
  source?: string;
  /** FERRY_HOME: where the store, artifacts, caches and workspaces live. */
  home?: string;
  /** Only these jobs (by name or base name) and what they need. */
  only?: string[];
  executor?: Executor;
}

export interface LocalRunContext {
  pipelineId: string;
  commit: CommitInfo;
  config: PipelineConfig;
  configText: string;
  plan: Plan;
  home: string;
  /** The pipeline's predefined variables (FERRY_COMMIT_SHA, CI_COMMIT_SHA, ...). */
  predefined: Record<string, string>;
  /** The commit's export, when preparing started it; taken by the first execution. */
  prepared?: PreparedSource;
}

/** A snapshot of the commit being exported to `dir` (done when `exported` settles). */
export interface PreparedSource {
  dir: string;
  exported: Promise<void>;
}

export function defaultConcurrency(): number {
  return availableParallelism();
}

/** `<repo>/.ferry` unless FERRY_HOME says otherwise; kept out of `git status` on first use. */
export async function resolveHome(repoRoot: string, home?: string): Promise<string> {
  const h = home ?? process.env.FERRY_HOME ?? join(repoRoot, FERRY_DIR);
  await mkdir(h, { recursive: true });
  if (!home && !process.env.FERRY_HOME) {
    const exclude = join(repoRoot, '.git', 'info', 'exclude');
    const text = await readFile(exclude, 'utf8').catch(() => null);
    if (text !== null && !text.split('\n').includes(`/${FERRY_DIR}/`)) {
      await appendFile(exclude, `${text.endsWith('\n') || text === '' ? '' : '\n'}/${FERRY_DIR}/\n`).catch(() => undefined);
    }
  }
  return h;
}

/** Reads ferry.yml as the commit has it (or as the working tree has it, for --dirty). */
async function readPipelineFile(repoRoot: string, sha: string, file: string, dirty: boolean): Promise<string> {
  try {
    return dirty ? await readFile(join(repoRoot, file), 'utf8') : await git(repoRoot, ['show', `${sha}:${file}`]);
  } catch {
    const inTree =
      !dirty &&
      (await readFile(join(repoRoot, file), 'utf8').then(
        () => true,
        () => false,
      ));
    throw new ConfigError([
      {
        pos: { file, line: 1, col: 1 },
        code: 'no-file',
        message: inTree ? `${file} is not committed at ${sha.slice(0, 8)}` : `no ${file} at the root of ${repoRoot}`,
        hint: inTree ? 'commit it, or run with --dirty to use the working tree' : 'write one (see docs/ferry-yml.md), or `ferry init` to generate one',
      },
    ]);
  }
}

/** Keeps only `names` and, transitively, the jobs they need. */
function selectJobs(p: Plan, names: string[]): Plan {
  const wanted = new Set<string>();
  const visit = (job: PlannedJob) => {
    if (wanted.has(job.id)) return;
    wanted.add(job.id);
    for (const n of job.needs) visit(p.jobs.find((j) => j.id === n.jobId)!);
  };
  for (const name of names) {
    const hits = p.jobs.filter((j) => j.name === name || j.baseName === name);
    if (hits.length === 0) throw new Error(`no job named \`${name}\` in this pipeline; jobs: ${p.jobs.map((j) => j.name).join(', ')}`);
    hits.forEach(visit);
  }
  return { stages: p.stages, jobs: p.jobs.filter((j) => wanted.has(j.id)) };
}

/** Loads and plans; throws ConfigError, PlanError or NoPipelineError before anything runs. */
export async function prepareLocalRun(opts: LocalRunOptions): Promise<LocalRunContext> {
  const file = opts.file ?? 'ferry.yml';
  const pipelineId = randomUUID();
  let text: Promise<string> | undefined;
  let home: string | undefined;
  let prepared: PreparedSource | undefined;
  const read = commitInfo(opts.dir, opts.rev ?? 'HEAD', async (repoRoot, sha) => {
    text = readPipelineFile(repoRoot, sha, file, !!opts.dirty);
    text.catch(() => undefined); // said below, once the commit is read: not an unhandled rejection meanwhile
    // The commit is checked out for the jobs while its log and ferry.yml are read and planned:
    // the first job need not wait for the export (a git process or more) after all that.
    home = await resolveHome(repoRoot, opts.home);
    const dir = newSnapshotDir(join(home, 'work', pipelineId));
    prepared = { dir, exported: exportCommit(repoRoot, sha, dir, { dirty: opts.dirty }) };
    prepared.exported.catch(() => undefined);
    await text.catch(() => undefined);
  });
  try {
    const commit = await read;
    const configText = await text!;
    const { config, issues } = parseConfig(configText, file);
    if (!config) throw new ConfigError(issues);
    const predefined = pipelineVariables({
      commit,
      pipelineId,
      source: opts.source ?? 'local',
      projectDir: commit.repoRoot,
      projectName: basename(commit.repoRoot),
    });
    logLimitFromEnv(); // a bad FERRY_LOG_LIMIT is said before anything runs
    let p = plan({ config, predefined, triggerVariables: opts.variables });
    if (opts.only?.length) p = selectJobs(p, opts.only);
    return { pipelineId, commit, config, configText, plan: p, home: home!, predefined, prepared };
  } catch (err) {
    await discardLocalRun({ prepared });
    throw err;
  }
}

/**
 * The source snapshot's folder in a pipeline's work folder, new for each execution: the
 * folders an execution leaves are removed in the background after it (see removeInBackground),
 * and a `ferry play` of the same pipeline right after must not lose its own to that removal.
 * `+` never appears in a job's folder name (see slug).
 */
function newSnapshotDir(workRoot: string): string {
  return join(workRoot, `+source-${randomBytes(4).toString('hex')}`);
}

/** Removes what a prepared run that will not run made (its checked-out source). */
export async function discardLocalRun(ctx: Pick<LocalRunContext, 'prepared'>): Promise<void> {
  if (!ctx.prepared) return;
  await ctx.prepared.exported.catch(() => undefined);
  await removeDirs([ctx.prepared.dir]);
  await rmdir(dirname(ctx.prepared.dir)).catch(() => undefined); // the pipeline's folder, now empty
}

export interface ExecuteOptions {
  ctx: LocalRunContext;
  bus: EventBus<RunEvent>;
  concurrency?: number;
  dirty?: boolean;
  executor?: Executor;
  /** Resume: states of the jobs from the earlier run, and manual jobs to play. */
  initial?: Map<string, JobState>;
  play?: Set<string>;
  /** Called with the scheduler so the caller can cancel it (Ctrl-C). */
  onScheduler?: (s: Scheduler) => void;
  /** Keep every job's workspace after the run (default: keep only failed ones). */
  keepWorkspaces?: boolean;
  /** Told of every process group a job starts. */
  onProcess?: (jobId: string, pid: number) => void;
  /** Bytes of log each job attempt keeps (default: FERRY_LOG_LIMIT, else 100 MiB). */
  logLimit?: number;
}

/** Runs a prepared pipeline to its end; emits every event on the bus. */
export async function executeLocalRun(o: ExecuteOptions): Promise<PipelineStatus> {
  const { ctx, bus } = o;
  const executor = o.executor ?? new ShellExecutor();
  const logLimit = o.logLimit ?? logLimitFromEnv();
  const workRoot = join(ctx.home, 'work', ctx.pipelineId);
  // The export preparing started serves the first execution of the context only: its folder
  // is removed after that execution, and a resumed one (play) exports afresh.
  const { prepared } = ctx;
  ctx.prepared = undefined;
  const snapshotDir = prepared?.dir ?? newSnapshotDir(workRoot);
  const artifacts = new LocalArtifactStore(join(ctx.home, 'artifacts'));
  const cache = new LocalCacheStore(join(ctx.home, 'cache'));
  const predefined = pipelineVariables({
    commit: ctx.commit,
    pipelineId: ctx.pipelineId,
    source: 'local',
    projectDir: ctx.commit.repoRoot,
    projectName: basename(ctx.commit.repoRoot),
  });
  // The source is exported once, while the first jobs wait; every job copies it.
  // Housekeeping beside the run: expired artifacts, and the kept workspaces of old pipelines.
  const housekeeping = Promise.all([artifacts.prune(), pruneWorkDirs(join(ctx.home, 'work'), ctx.pipelineId)]).catch(() => undefined);
  const exported = (prepared?.exported ?? exportCommit(ctx.commit.repoRoot, ctx.commit.sha, snapshotDir, { dirty: o.dirty })).then(() => countEntries(snapshotDir));
  exported.catch(() => undefined);
  const baseEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('npm_')) baseEnv[k] = v;

  const concurrency = o.concurrency ?? defaultConcurrency();
  let started = 0;
  // Passed jobs' workspaces are reset for later jobs, of this run and the next, rather than
  // removed (see workspace-pool.ts); with --keep-workspaces every one stays where it is.
  const pool = o.keepWorkspaces ? undefined : new WorkspacePool(join(ctx.home, 'work'));
  const spares = exported.then((entries) => {
    const s = new SpareWorkspaces(snapshotDir, entries, concurrency, () => ctx.plan.jobs.length - started, pool);
    s.fill();
    return s;
  });
  spares.catch(() => undefined);

  const used = new Set<string>();
  const workspaceOf = new Map<string, string>();
  const dirFor = (job: PlannedJob) => {
    let d = workspaceOf.get(job.id);
    if (!d) {
      let name = slug(job.name);
      for (let i = 2; used.has(name); i++) name = `${slug(job.name)}-${i}`;
      used.add(name);
      d = join(workRoot, name);
      workspaceOf.set(job.id, d);
    }
    return d;
  };

  const scheduler = new Scheduler({
    pipelineId: ctx.pipelineId,
    plan: ctx.plan,
    concurrency,
    bus,
    initial: o.initial,
    play: o.play,
    runJob: async (job, attempt, signal) => {
      const workspaces = await spares;
      started++;
      const workspaceDir = dirFor(job);
      // Cut at the limit before the bus: the terminal, the journal and the store see the same log.
      const limiter = new LogLimiter(logLimit, (stream, text, truncated) =>
        bus.emit({ type: 'job.log', at: Date.now(), pipelineId: ctx.pipelineId, jobId: job.id, attempt, stream, text, ...(truncated ? { truncated } : {}) }),
      );
      limiter.write('system', `Running with the ${executor.name} executor in ${workspaceDir}\n`);
      const env = { ...baseEnv, ...predefined, ...job.variables, ...jobVariables(job, workspaceDir) };
      const outcome = await runAttempt({
        pipelineId: ctx.pipelineId,
        job,
        attempt,
        workspaces,
        workspaceDir,
        env,
        executor,
        artifacts,
        cache,
        signal,
        log: (stream, text) => limiter.write(stream, text),
        report: (kind, file, report) => bus.emit({ type: 'job.report', at: Date.now(), pipelineId: ctx.pipelineId, jobId: job.id, attempt, kind, file, report }),
        onProcess: o.onProcess && ((pid) => o.onProcess!(job.id, pid)),
      });
      // Passed jobs leave nothing behind (their workspace goes to the pool, or is removed at the
      // end); a failed job's workspace stays for a look.
      if (outcome.status === 'success' && !o.keepWorkspaces) workspaces.release(workspaceDir);
      return outcome;
    },
  });
  o.onScheduler?.(scheduler);
  const status = await scheduler.run();
  const leftovers = await spares.then(
    (s) => s.stop(),
    () => [] as string[],
  );
  await Promise.all([exported.catch(() => undefined), housekeeping]);
  // Removed in one go at the end, cheaper than one removal per job, and without waiting: on a
  // slow disk removing a few hundred small trees takes longer than the run's last jobs did.
  removeInBackground(o.keepWorkspaces ? leftovers : [...leftovers, snapshotDir]);
  return status;
}

export function localPipelineStarted(ctx: LocalRunContext, source: string, variables: Record<string, string> = {}): PipelineStarted {
  return pipelineStartedEvent({ pipelineId: ctx.pipelineId, project: ctx.commit.repoRoot, commit: ctx.commit, source, configText: ctx.configText, variables, plan: ctx.plan });
}

/** Failed jobs' workspaces are kept for a look, for the last KEEP_WORK_DIRS pipelines. */
const KEEP_WORK_DIRS = 10;

async function pruneWorkDirs(root: string, current: string): Promise<void> {
  // `+recycled`, the workspace pool, is no pipeline's.
  const names = (await readdir(root).catch(() => [] as string[])).filter((n) => n !== current && !n.startsWith('+'));
  if (names.length < KEEP_WORK_DIRS) return;
  const dated = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(root, n)).catch(() => null))?.mtimeMs ?? 0 })));
  dated.sort((a, b) => b.t - a.t);
  await removeDirs(dated.slice(KEEP_WORK_DIRS - 1).map((d) => join(root, d.n)));
}

/** The folder of a job's workspace, relative to the repository, for messages. */
export function shownPath(repoRoot: string, p: string): string {
  const r = relative(repoRoot, p);
  return r.startsWith('..') ? p : r;
}
