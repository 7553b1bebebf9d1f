// One release being carried out: what a strategy works with. It keeps the release's progress in
// the store after every step (so a restarted controller resumes where this one stopped), routes
// traffic through the target, and waits — for a duration, a promotion or approvals — while it
// watches the signals people and alerts send (abort, promote) and runs the analysis.
import type { EnvironmentConfig } from '../config/types.js';
import type { Db } from '../store/db.js';
import { appendAudit } from '../store/audit.js';
import {
  clearPromote,
  getRelease,
  listApprovals,
  recordMeasurements,
  saveProgress,
  saveStep,
  type Release,
  type ReleaseProgress,
} from '../store/releases.js';
import { Analyzer } from './analysis/run.js';
import type { AnalysisSpec } from '../config/types.js';
import { versionLabel } from './targets/names.js';
import type { Target, TrafficSplit } from './targets/types.js';

/** The release must stop: a person or an alert asked, or the pipeline was canceled. */
export class AbortRequested extends Error {
  constructor(
    readonly actor: string,
    readonly reason: string,
    /** false: `ferry abort` (status aborted); true: a rollback (status rolled_back). */
    readonly rollback: boolean,
  ) {
    super(reason);
    this.name = 'AbortRequested';
  }
}

/** The release failed on its own: a health check, a smoke check, or the analysis. */
export class ReleaseFailed extends Error {
  constructor(
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = 'ReleaseFailed';
  }
}

/** This controller is stopping: leave the release as it is for the next one to resume. */
export class ControllerStopping extends Error {
  constructor() {
    super('the delivery controller is stopping');
    this.name = 'ControllerStopping';
  }
}

export interface StableTrack {
  release: Release;
  version: string;
  instances: string[];
}

export interface RunHooks {
  /** Appends a line to the deploy job's log (and wherever else the controller narrates). */
  log: (line: string) => void;
  /** True once the controller is stopping. */
  stopping: () => boolean;
  /** Whether the pipeline of the deploy job was canceled. */
  canceled: () => Promise<boolean>;
}

const POLL_MS = 200;

export class ReleaseRun {
  readonly version: string;
  readonly progress: ReleaseProgress;
  /** Set by a `promote --full`: the remaining steps are skipped. */
  fullPromote = false;
  private analyzer: Analyzer | null = null;
  /** When the analysis measures next: kept across steps, so a step shorter than the interval
   * (or a weight step, which does not wait) never skips a measurement. */
  private nextMeasure = 0;

  constructor(
    readonly db: Db,
    public release: Release,
    readonly env: EnvironmentConfig,
    readonly target: Target,
    /** The release serving the environment now, with its running instances (null: none). */
    readonly stable: StableTrack | null,
    private readonly hooks: RunHooks,
  ) {
    this.version = versionLabel(release);
    this.progress = { ...release.progress };
  }

  get step(): number {
    return this.release.step;
  }

  get instanceCount(): number {
    return this.env.target.type === 'process' ? this.env.target.instances : 1;
  }

  log(line: string): void {
    this.hooks.log(line);
  }

  /** Moves to step `n`, keeping the progress made so far. */
  async advance(n: number, reason: string): Promise<void> {
    await saveStep(this.db, this.release.id, { step: n, progress: this.progress, reason });
    // Each step changes what production runs or how its traffic is split: it is audited.
    await appendAudit(this.db, {
      actor: 'controller',
      action: 'release.step',
      projectId: this.release.projectId,
      environment: this.release.environment,
      subject: this.release.id,
      reason,
      detail: { step: n, weight: this.progress.weight ?? 0, instances: this.progress.instances ?? [] },
    });
    this.release = { ...this.release, step: n, stepStartedAt: new Date() };
    this.log(reason);
  }

  async save(): Promise<void> {
    await saveProgress(this.db, this.release.id, this.progress);
  }

  /** Starts `count` of this release's instances and records them before waiting for them. */
  async launch(count: number, from?: number): Promise<string[]> {
    this.log(`starting ${count} instance${count === 1 ? '' : 's'} of ${this.version}`);
    const ids = await this.target.launch(this.release, count, from);
    this.log(`${ids.length} instance${ids.length === 1 ? '' : 's'} ready: ${ids.join(', ')}`);
    return ids;
  }

  async route(split: TrafficSplit): Promise<void> {
    await this.target.route(split);
    const w = split.canary ? split.canary.weight : split.stable?.version === this.version ? 100 : 0;
    if (w > 0 && !this.progress.tookTraffic) this.progress.tookTraffic = true;
    this.progress.weight = w;
    await this.save();
  }

  /** New version's share of traffic next to the stable release. */
  async setWeight(weight: number, instances = this.progress.instances ?? []): Promise<void> {
    if (!this.stable || weight >= 100) {
      await this.route({ stable: { version: this.version, instances } });
    } else {
      await this.route({ stable: { version: this.stable.version, instances: this.stable.instances }, canary: { version: this.version, instances, weight } });
    }
    this.log(`traffic: ${weight}% to ${this.version}${this.stable && weight < 100 ? `, ${100 - weight}% to ${this.stable.version}` : ''}`);
  }

  /** Starts analysing this release's traffic with `spec` (one analyzer per release). */
  async startAnalysis(spec: AnalysisSpec | undefined, newVersionUrl?: string): Promise<void> {
    if (!spec || spec.metrics.length === 0 || this.analyzer) return;
    // A `web` metric given as a path asks the new version only: a preview route to its instances
    // (the router's own URL would give stable's answers too). Closed when the release ends.
    const pathChecks = spec.metrics.some((m) => m.source === 'web' && !/^[a-z][a-z0-9+.-]*:/i.test(m.url));
    if (pathChecks && !newVersionUrl && this.progress.instances?.length) {
      newVersionUrl = (await this.target.preview(this.version, this.progress.instances)) ?? undefined;
      if (newVersionUrl) this.log(`web checks of ${this.version} at ${newVersionUrl} (its instances only)`);
    }
    this.analyzer = new Analyzer(
      spec,
      { environment: this.env.name, version: this.version, stableVersion: this.stable?.version, newVersionUrl, routerMetrics: () => this.target.metrics() },
      { failures: this.progress.failures ?? {}, inconclusive: this.progress.inconclusive ?? {} },
    );
    await this.analyzer.start();
    this.nextMeasure = Date.now() + spec.intervalMs;
  }

  /** Ends what the analysis opened (the preview route of path web checks). */
  async endAnalysis(): Promise<void> {
    this.analyzer = null;
    await this.target.closePreview().catch(() => undefined);
  }

  /** Throws if a signal says stop. Returns the promotion asked for, if any. */
  async checkSignals(): Promise<'promote' | null> {
    if (this.hooks.stopping()) throw new ControllerStopping();
    const fresh = await getRelease(this.db, this.release.id);
    if (!fresh) throw new ReleaseFailed('the release was deleted');
    const abort = fresh.abortRequested;
    if (abort) throw new AbortRequested(abort.actor, abort.reason ?? 'aborted', abort.rollback);
    if (await this.hooks.canceled()) throw new AbortRequested('pipeline', 'the pipeline was canceled', false);
    if (fresh.promoteRequested) {
      await clearPromote(this.db, this.release.id);
      if (fresh.promoteRequested.full) this.fullPromote = true;
      this.log(`promoted by ${fresh.promoteRequested.actor}${fresh.promoteRequested.full ? ' (to 100%)' : ''}`);
      return 'promote';
    }
    return null;
  }

  /**
   * Waits until `durationMs` has passed since the step began (undefined: until promoted, or,
   * with `approvals`, until that many approvals arrived since the step began), measuring the
   * analysis at its interval meanwhile. A promotion ends any wait but an approval's.
   */
  async hold(opts: { durationMs?: number; approvals?: number; analysis?: boolean }): Promise<void> {
    const began = this.release.stepStartedAt?.getTime() ?? Date.now();
    const interval = this.analyzer?.spec.intervalMs ?? POLL_MS;
    for (;;) {
      if ((await this.checkSignals()) === 'promote') {
        // An approval step is four eyes: a promotion (which the change's author may ask for)
        // does not stand in for it.
        if (opts.approvals === undefined) return;
        this.log('a promotion does not replace an approval: waiting for `ferry approve` by someone other than the author');
      }
      const now = Date.now();
      if (opts.analysis !== false && this.analyzer && now >= this.nextMeasure) {
        this.nextMeasure = now + interval;
        const { measurements, verdict } = await this.analyzer.measure(this.step);
        await recordMeasurements(this.db, this.release.id, measurements);
        this.progress.failures = this.analyzer.counts.failures;
        this.progress.inconclusive = this.analyzer.counts.inconclusive;
        for (const m of measurements) if (m.outcome !== 'success') this.log(`analysis: ${m.metric} ${m.outcome}${m.message ? `: ${m.message}` : ''} ${JSON.stringify(m.values)}`);
        if (measurements.some((m) => m.outcome !== 'success')) await this.save();
        if (!verdict.ok) throw new ReleaseFailed(verdict.reason, { values: verdict.values });
      }
      if (opts.durationMs !== undefined && now - began >= opts.durationMs) return;
      if (opts.approvals !== undefined) {
        const given = (await listApprovals(this.db, this.release.id)).filter((a) => a.at.getTime() >= began);
        if (given.length >= opts.approvals) {
          this.log(`approved by ${given.map((a) => a.user).join(', ')}`);
          return;
        }
      }
      const wait = Math.max(10, Math.min(POLL_MS, this.analyzer ? this.nextMeasure - now : POLL_MS, opts.durationMs !== undefined ? began + opts.durationMs - now : POLL_MS));
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** First release of an environment (or nothing serving): start it and send it everything. */
  async firstDeploy(): Promise<void> {
    if (!this.progress.instances?.length) {
      this.progress.instances = await this.launch(this.instanceCount);
      await this.save();
    }
    await this.setWeight(100);
  }

  /** Puts every request back on the stable release and stops this release's instances. */
  async revert(): Promise<void> {
    if (this.stable && this.stable.instances.length > 0) {
      await this.target.route({ stable: { version: this.stable.version, instances: this.stable.instances } });
      this.log(`traffic: 100% back to ${this.stable.version}`);
    }
    await this.target.closePreview().catch(() => undefined);
    const mine = [...new Set([...(this.progress.instances ?? []), ...(await this.target.running(this.release))])];
    if (mine.length) await this.target.retire(mine);
    this.progress.weight = 0;
    await this.save();
  }
}
