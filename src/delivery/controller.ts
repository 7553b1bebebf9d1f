// The delivery controller: the control plane's reconcile loop for releases. Every tick it
//  1. turns ready deploy jobs into releases (store/queue.ts takeDeployJobs, one transaction),
//  2. claims the active releases no live controller owns (a lease in the releases table, so
//     server replicas share them and a dead one's are taken over),
//  3. drives each release it owns: gates (branches, freeze, approvals), then its strategy, step
//     by step, and on failure or abort puts traffic back on the stable release,
//  4. retires blue-green's warm instances when their time is up.
// A release's outcome becomes its deploy job's outcome, narrated line by line in the job's log.
import { parseConfig } from '../config/load.js';
import type { EnvironmentConfig } from '../config/types.js';
import type { EdgeClient } from '../edge/client.js';
import type { RunEvent } from '../pipeline/events.js';
import type { Db } from '../store/db.js';
import { appendAudit } from '../store/audit.js';
import { complete, takeDeployJobs, DELIVERY_OWNER, type Lease } from '../store/queue.js';
import { RunRecorder } from '../store/recorder.js';
import {
  activeRelease,
  claimReleases,
  createRelease,
  getEnvironment,
  getRelease,
  listApprovals,
  saveProgress,
  setFilesDir,
  setRouterPort,
  transition,
  type Release,
  type ReleaseStatus,
} from '../store/releases.js';
import { jobSecrets } from '../store/secrets.js';
import { prepareReleaseFiles } from './files.js';
import { activeFreeze } from './gates/freeze.js';
import { branchAllowed } from './gates/branches.js';
import { AbortRequested, ControllerStopping, ReleaseFailed, ReleaseRun, type StableTrack } from './release-run.js';
import { strategyFor } from './strategies/index.js';
import { redeploy } from './strategies/redeploy.js';
import { versionLabel } from './targets/names.js';
import { HaproxyTraffic } from './targets/haproxy.js';
import { EdgeTraffic, ProcessTarget } from './targets/process.js';
import { ScriptTarget } from './targets/script.js';
import type { Target, TargetContext } from './targets/types.js';
import { join } from 'node:path';

export interface ControllerOptions {
  db: Db;
  home: string;
  /** This replica's name: the owner of the releases it drives. */
  owner: string;
  edge: () => Promise<EdgeClient>;
  /** The local repository (or mirror) of a project, for the release's files. */
  repoOf: (projectId: number) => Promise<string>;
  masterKey?: Buffer;
  /** Broadcasts what the controller recorded (job states, log lines) to live views. */
  publish: (events: RunEvent[]) => void;
  tickMs?: number;
  /** How long a claim on a release lasts without renewal (default 15 s). */
  leaseMs?: number;
  onError?: (err: Error) => void;
}

const FINAL: ReleaseStatus[] = ['succeeded', 'failed', 'rolled_back', 'aborted'];

export class DeliveryController {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private stopped = false;
  private readonly driving = new Map<string, Promise<void>>();

  constructor(private readonly o: ControllerOptions) {}

  start(): void {
    const every = this.o.tickMs ?? 250;
    const loop = () => {
      // stop() may come while a tick runs: that tick must not schedule another (it would keep
      // the process alive after the server closed).
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.tick().then(loop, (err: Error) => {
          this.o.onError?.(err);
          loop();
        });
      }, every);
    };
    loop();
  }

  /** Stops driving; releases in progress stay as they are, for the next controller to resume. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A release waits at its next step; one in a long launch is left to the next controller,
    // which resumes it (the edge keeps what was started).
    await Promise.race([Promise.allSettled([...this.driving.values()]), new Promise((r) => setTimeout(r, 5000).unref())]);
  }

  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      await this.takeJobs();
      const owned = await claimReleases(this.o.db, this.o.owner, this.o.leaseMs ?? 15_000);
      for (const id of owned) {
        if (this.driving.has(id)) continue;
        const p = this.drive(id)
          .catch((err: Error) => this.o.onError?.(err))
          .finally(() => this.driving.delete(id));
        this.driving.set(id, p);
      }
      await this.retireWarm();
    } finally {
      this.ticking = false;
    }
  }

  // ---- deploy jobs → releases ---------------------------------------------------------------

  private async takeJobs(): Promise<void> {
    const { taken, events } = await takeDeployJobs(this.o.db, async (tx, l) => this.releaseForJob(tx, l));
    this.o.publish(events);
    // Jobs that could not become releases fail now that taking them is committed.
    for (const l of taken) if (l) await this.finishJob(l.pipelineId, l.jobId, l.attempt, 'failed');
  }

  /** Creates the release of a deploy job; returns the job back when it cannot have one. */
  private async releaseForJob(tx: Db, l: Lease): Promise<Lease | null> {
    const envName = l.job.deploy!.environment;
    const [p] = await tx.query<{ project_id: number; sha: string; branch: string | null; config_text: string; variables: Record<string, string> }>(
      'SELECT project_id, sha, branch, config_text, variables FROM pipelines WHERE id = $1',
      [l.pipelineId],
    );
    const { config, issues } = parseConfig(p!.config_text, 'ferry.yml');
    const env = config?.environments[envName];
    if (!env) {
      await this.jobLog(tx, l.pipelineId, l.jobId, l.attempt, `ferry: cannot deploy: ${issues.length ? issues[0]!.message : `environment \`${envName}\` is not declared`}`);
      return l;
    }
    const vars = p!.variables ?? {};
    const rel = await createRelease(tx, {
      projectId: p!.project_id,
      environment: envName,
      pipelineId: l.pipelineId,
      jobId: l.jobId,
      sha: p!.sha,
      branch: p!.branch,
      authorEmail: emailOf(vars.FERRY_COMMIT_AUTHOR),
      createdBy: vars.FERRY_TRIGGERED_BY ?? 'pipeline',
      config: env,
    });
    await this.jobLog(tx, l.pipelineId, l.jobId, l.attempt, `ferry: release ${envName}#${rel.number} (${rel.id}) of ${rel.sha.slice(0, 12)} created; strategy ${env.strategy.type}`);
    // Last in the transaction: the audit lock is held until commit.
    await appendAudit(tx, { actor: rel.createdBy, action: 'release.created', projectId: rel.projectId, environment: envName, subject: rel.id, reason: `release #${rel.number} of ${rel.sha.slice(0, 12)}`, detail: { pipelineId: l.pipelineId, jobId: l.jobId, sha: rel.sha, branch: rel.branch } });
    return null;
  }

  private async jobLog(db: Db, pipelineId: string, jobId: string, attempt: number, line: string): Promise<void> {
    const e: RunEvent = { type: 'job.log', at: Date.now(), pipelineId, jobId, attempt, stream: 'system', text: `${line}\n` };
    await new RunRecorder(db).apply([e]);
    this.o.publish([e]);
  }

  private async finishJob(pipelineId: string, jobId: string, attempt: number, how: 'success' | 'failed' | 'canceled'): Promise<void> {
    const outcome = how === 'failed' ? ({ status: 'failed', exitCode: null, reason: 'deployment_failure' } as const) : how === 'success' ? ({ status: 'success', exitCode: 0 } as const) : ({ status: 'canceled', exitCode: null } as const);
    const { events } = await complete(this.o.db, { jobId, attempt, runnerId: DELIVERY_OWNER, outcome });
    this.o.publish(events);
  }

  // ---- one release ----------------------------------------------------------------------------

  private async drive(id: string): Promise<void> {
    let rel = await getRelease(this.o.db, id);
    if (!rel || FINAL.includes(rel.status)) return;
    // Progressing already when this controller picked it up: a server stopped while driving it.
    const resumed = rel.status === 'progressing';
    const say = this.narrator(rel);
    // One release at a time per environment: a later one waits for the earlier to finish.
    const first = await activeRelease(this.o.db, rel.projectId, rel.environment);
    if (first && first.id !== rel.id) {
      if (rel.abortRequested) await this.finish(rel, 'aborted', rel.abortRequested.actor, rel.abortRequested.reason ?? 'aborted before it started');
      return;
    }
    const env = rel.config;
    if (rel.status === 'pending' || rel.status === 'waiting') {
      if (rel.abortRequested) return this.finish(rel, 'aborted', rel.abortRequested.actor, rel.abortRequested.reason ?? 'aborted before it started');
      if (!rel.redeployOf && rel.pipelineId && !(await this.trusted(rel.pipelineId))) {
        // A fork or an untrusted merge request would run its own code with the environment's secrets.
        return this.finish(rel, 'failed', 'controller', 'pipelines from forks or untrusted merge requests may not deploy');
      }
      if (!rel.redeployOf && !branchAllowed(rel.branch ?? '', env.protection.branches)) {
        return this.finish(rel, 'failed', 'controller', `branch ${rel.branch ?? '(none)'} may not deploy to ${env.name} (protection.branches: ${env.protection.branches!.join(', ')})`);
      }
      const hold = await this.gateHold(rel);
      if (hold) {
        if (rel.status !== 'waiting' || rel.reason !== hold) {
          await transition(this.o.db, rel.id, { to: 'waiting', actor: 'controller', reason: hold });
          await this.audit(rel, 'controller', 'release.waiting', hold);
          say(`waiting: ${hold}`);
        }
        return;
      }
      if (!(await transition(this.o.db, rel.id, { to: 'progressing', from: ['pending', 'waiting'], actor: 'controller', reason: 'gates passed' }))) return;
      say(`progressing with strategy ${env.strategy.type}`);
      rel = (await getRelease(this.o.db, id))!;
    }
    const target = await this.targetFor(rel, env);
    let run: ReleaseRun | null = null;
    try {
      if (!rel.filesDir) {
        const dir = await prepareReleaseFiles({ home: this.o.home, releaseId: rel.id, repo: await this.o.repoOf(rel.projectId), sha: rel.sha, artifactTars: await this.artifactTars(rel) });
        await setFilesDir(this.o.db, rel.id, dir);
        rel = { ...rel, filesDir: dir };
      }
      const stable = await this.stableTrack(rel, target);
      run = new ReleaseRun(this.o.db, rel, env, target, stable, {
        log: say,
        stopping: () => this.stopped,
        canceled: () => this.jobCanceled(rel!),
      });
      await run.checkSignals();
      if (resumed) {
        if (env.onRestart === 'rollback' && !rel.redeployOf) throw new AbortRequested('controller', 'the server restarted during the release (on_restart: rollback)', true);
        say(`resuming at step ${rel.step} after a restart of the server`);
      }
      await (rel.redeployOf ? redeploy : strategyFor(env.strategy)).run(run);
      await run.endAnalysis();
      await this.finish(rel, 'succeeded', 'controller', `${versionLabel(rel)} serves ${env.name}`, run);
    } catch (err) {
      if (err instanceof ControllerStopping) return;
      const e = err as Error;
      const aborted = e instanceof AbortRequested;
      say(`${aborted ? 'aborting' : 'failed'}: ${e.message}`);
      try {
        if (run) await (rel.redeployOf ? redeploy : strategyFor(env.strategy)).undo(run);
      } catch (undoErr) {
        say(`could not undo everything: ${(undoErr as Error).message}`);
      }
      const tookTraffic = run?.progress.tookTraffic ?? false;
      const status: ReleaseStatus = aborted ? ((e as AbortRequested).rollback && tookTraffic ? 'rolled_back' : 'aborted') : tookTraffic ? 'rolled_back' : 'failed';
      await this.finish(rel, status, aborted ? (e as AbortRequested).actor : 'controller', e.message, run, e instanceof ReleaseFailed ? e.detail : undefined);
    }
  }

  /** Why the release must wait (freeze, approvals), or null when it may go. */
  private async gateHold(rel: Release): Promise<string | null> {
    const p = rel.config.protection;
    // A rollback redeploys what was already approved, freeze or not: recovering is always allowed.
    if (rel.redeployOf) return null;
    const freeze = rel.progress.freezeOverride ? null : activeFreeze(p.freeze, new Date());
    if (freeze) return `deploy freeze until ${freeze.endsAt.toISOString()} (an admin may override: ferry approve ${rel.environment} --release ${rel.number} --override-freeze --reason ...)`;
    if (p.approvals > 0) {
      const n = (await listApprovals(this.o.db, rel.id)).length;
      if (n < p.approvals) return `approvals ${n}/${p.approvals} (ferry approve ${rel.environment} --release ${rel.number})`;
    }
    return null;
  }

  private async finish(rel: Release, status: ReleaseStatus, actor: string, reason: string, run?: ReleaseRun | null, detail?: unknown): Promise<void> {
    if (!(await transition(this.o.db, rel.id, { to: status, actor, reason, detail }))) return;
    const action = status === 'succeeded' ? 'release.succeeded' : status === 'rolled_back' ? 'release.rolled_back' : status === 'aborted' ? 'release.aborted' : 'release.failed';
    await this.audit(rel, actor, action, reason, detail);
    if (run) await saveProgress(this.o.db, rel.id, run.progress);
    this.narrator(rel)(`release ${status.replace('_', ' ')}: ${reason}`);
    if (rel.jobId && rel.pipelineId) {
      const [job] = await this.o.db.query<{ attempt: number; status: string; lease_owner: string | null }>('SELECT attempt, status, lease_owner FROM jobs WHERE id = $1', [rel.jobId]);
      if (job && job.status === 'running' && job.lease_owner === DELIVERY_OWNER) await this.finishJob(rel.pipelineId, rel.jobId, job.attempt, status === 'succeeded' ? 'success' : actor === 'pipeline' ? 'canceled' : 'failed');
    }
  }

  private async audit(rel: Release, actor: string, action: string, reason: string, detail?: unknown): Promise<void> {
    await appendAudit(this.o.db, { actor, action, projectId: rel.projectId, environment: rel.environment, subject: rel.id, reason, detail: (detail ?? {}) as Record<string, unknown> });
  }

  private narrator(rel: Release): (line: string) => void {
    return (line: string) => {
      if (!rel.jobId || !rel.pipelineId) return;
      const jobId = rel.jobId;
      const pipelineId = rel.pipelineId;
      void this.o.db
        .query<{ attempt: number }>('SELECT attempt FROM jobs WHERE id = $1', [jobId])
        .then(([j]) => (j ? this.jobLog(this.o.db, pipelineId, jobId, j.attempt, `${new Date().toISOString().slice(11, 23)} ${rel.environment}#${rel.number}: ${line}`) : undefined))
        .catch(() => undefined);
    };
  }

  private async trusted(pipelineId: string): Promise<boolean> {
    const [p] = await this.o.db.query<{ trusted: string | null }>("SELECT variables ->> 'FERRY_PIPELINE_TRUSTED' AS trusted FROM pipelines WHERE id = $1", [pipelineId]);
    return p?.trusted === 'true';
  }

  private async jobCanceled(rel: Release): Promise<boolean> {
    if (!rel.jobId) return false;
    const [j] = await this.o.db.query<{ cancel_requested: boolean }>('SELECT cancel_requested FROM jobs WHERE id = $1', [rel.jobId]);
    return j?.cancel_requested ?? false;
  }

  private async artifactTars(rel: Release): Promise<string[]> {
    if (!rel.jobId || !rel.pipelineId) return [];
    const [j] = await this.o.db.query<{ spec: { needs: { jobId: string; artifacts: boolean }[] } }>('SELECT spec FROM jobs WHERE id = $1', [rel.jobId]);
    return (j?.spec.needs ?? []).filter((n) => n.artifacts).map((n) => join(this.o.home, 'artifacts', rel.pipelineId!, `${n.jobId}.tar`));
  }

  async targetFor(rel: Release, env: EnvironmentConfig): Promise<Target> {
    const secrets = () => jobSecrets(this.o.db, this.o.masterKey, rel.projectId, rel.environment);
    const ctx: TargetContext = {
      home: this.o.home,
      env,
      projectId: rel.projectId,
      variables: async (config = env) => ({ ...config.variables, ...(await secrets()) }),
      log: this.narrator(rel),
    };
    // A script target needs no edge: the user's commands do the work.
    if (env.target.type === 'script') return new ScriptTarget(ctx, { secrets: async () => Object.values(await secrets()) });
    const edge = await this.o.edge();
    // The instances run on the edge; the team's HAProxy or the edge's router carries the traffic.
    if (env.router.provider === 'haproxy') return new ProcessTarget(edge, ctx, new HaproxyTraffic(edge, ctx));
    const envRow = await getEnvironment(this.o.db, rel.projectId, rel.environment);
    return new ProcessTarget(edge, ctx, new EdgeTraffic(edge, ctx, (port) => setRouterPort(this.o.db, rel.projectId, rel.environment, port), envRow?.routerPort ?? null));
  }

  private async stableTrack(rel: Release, target: Target): Promise<StableTrack | null> {
    const envRow = await getEnvironment(this.o.db, rel.projectId, rel.environment);
    const stableId = envRow?.stableReleaseId;
    if (!stableId || stableId === rel.id) return null;
    const stable = await getRelease(this.o.db, stableId);
    if (!stable) return null;
    const instances = await target.running(stable);
    if (instances.length === 0) return null;
    return { release: stable, version: versionLabel(stable), instances };
  }

  /** Blue-green leaves the previous release warm after the switch; stop it when its time is up. */
  private async retireWarm(): Promise<void> {
    const due = await this.o.db.query<{ id: string }>(
      "SELECT id FROM releases WHERE status = 'succeeded' AND (progress ->> 'retireAt')::bigint <= $1 AND previous_id IS NOT NULL AND NOT coalesce((progress ->> 'retired')::boolean, false)",
      [Date.now()],
    );
    for (const { id } of due) {
      const rel = await getRelease(this.o.db, id);
      if (!rel?.previousId) continue;
      const prev = await getRelease(this.o.db, rel.previousId);
      const env = await getEnvironment(this.o.db, rel.projectId, rel.environment);
      // Only while this release still serves: a rollback may have made the previous one stable again.
      if (prev && env?.stableReleaseId === rel.id) {
        const target = await this.targetFor(rel, rel.config);
        await target.retire(await target.running(prev));
      }
      await saveProgress(this.o.db, id, { ...rel.progress, retired: true });
    }
  }
}

function emailOf(author: string | undefined): string | null {
  const m = author ? /<([^>]+)>/.exec(author) : null;
  return m ? m[1]! : null;
}
