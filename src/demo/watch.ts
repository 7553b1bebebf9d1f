// Following a pipeline and the releases its deploy jobs start, through the server's API, and
// telling the story as it happens: each job as it finishes (with what it said last), each step of
// each release, each failed measurement. The demo reads nothing the API does not give any user.
import { api, type ClientOptions } from '../cli/client.js';
import { formatDuration } from '../cli/view/model.js';
import { FINAL_JOB_STATUSES, type JobStatus } from '../pipeline/events.js';
import { FINAL_STATUSES, type ReleaseStatus } from '../store/releases.js';
import type { Narrator } from './narrator.js';

export interface JobView {
  id: string;
  name: string;
  status: JobStatus;
  durationMs: number | null;
  failureReason: string | null;
  exitCode: number | null;
  spec: { deploy?: { environment: string } } | null;
}

export interface PipelineView {
  id: string;
  number: number;
  status: string;
  sha: string;
  jobs: JobView[];
}

export interface ReleaseView {
  id: string;
  number: number;
  environment: string;
  status: ReleaseStatus;
  reason: string | null;
  step: number;
  weight: number;
  strategy: string;
  sha: string;
  jobId: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface Transition {
  at: string;
  from: string | null;
  to: string;
  step: number | null;
  actor: string;
  reason: string | null;
}

export interface Measurement {
  at: string;
  step: number;
  metric: string;
  source: string;
  outcome: 'success' | 'failure' | 'inconclusive';
  values: Record<string, number | null>;
  message: string | null;
}

export interface ReleaseDetailView extends ReleaseView {
  transitions: Transition[];
  measurements: Measurement[];
  config: { strategy: { type: string; steps?: CanaryStepView[]; analysis?: { metrics: { name: string; condition: string }[] } } };
}

export interface CanaryStepView {
  kind: 'weight' | 'pause' | 'analysis' | 'approval';
  weight?: number;
  durationMs?: number;
}

export interface EnvironmentView {
  name: string;
  url: string | null;
  stable: ReleaseView | null;
  active: ReleaseView | null;
  releases: ReleaseView[];
}

export interface FollowHooks {
  /** What a job's script wrote (stdout and stderr, without Ferry's own notes). */
  output(jobId: string): Promise<string>;
  /** A release waits for approvals: the demo approves it as someone else. */
  onApprovalWait(release: ReleaseDetailView): Promise<void>;
  /** A release's router exists (it has a URL): the demo can send users to it. */
  onRouter?(env: EnvironmentView): void;
  /** Called on every poll with each followed environment, for the live status line. */
  onEnvironment?(env: EnvironmentView): void;
}

export interface FollowResult {
  pipeline: PipelineView;
  /** The releases its deploy jobs started, by environment, as they ended. */
  releases: Map<string, ReleaseDetailView>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 200;

/** Waits for the pipeline of `sha` that a push started; its id. */
export async function pipelineOf(client: ClientOptions, projectId: number, sha: string, timeoutMs = 30_000): Promise<PipelineView> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const list = await api<PipelineView[]>(client, 'GET', `/api/projects/${projectId}/pipelines?limit=5`);
    const p = list.find((x) => x.sha === sha);
    if (p) return p;
    await sleep(100);
  }
  throw new Error(`no pipeline started for ${sha.slice(0, 8)} within ${timeoutMs / 1000}s: is the post-receive hook installed?`);
}

/** What a finished job said last: node --test's counts, or the last line its script printed. */
async function jobNote(output: (jobId: string) => Promise<string>, job: JobView): Promise<string> {
  const lines = (await output(job.id).catch(() => '')).split('\n').map((l) => l.trim()).filter(Boolean);
  // node --test's own summary ("ℹ pass 4"), when the job ran tests with it.
  const pass = lines.map((l) => /^ℹ pass (\d+)/.exec(l)).find(Boolean);
  const fail = lines.map((l) => /^ℹ fail (\d+)/.exec(l)).find(Boolean);
  if (pass) return `${pass[1]} tests passed${fail && fail[1] !== '0' ? `, ${fail[1]} failed` : ''}`;
  return lines.filter((l) => !l.startsWith('$ ')).pop() ?? '';
}

function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? 'n/a' : `${(x * 100).toFixed(1)}%`;
}

/** One measurement as a person reads it: "errors: 21.4% of 56 requests failed". */
export function describeMeasurement(m: Measurement): string {
  const v = m.values;
  if (m.source === 'router' && 'error_rate' in v && m.metric !== 'latency') return `${m.metric}: ${pct(v.error_rate)} of ${v.requests ?? 0} requests failed`;
  if (m.source === 'router' && 'p99_ms' in v) return `${m.metric}: p99 ${v.p99_ms === null ? 'n/a' : `${Math.round(v.p99_ms)} ms`} over ${v.requests ?? 0} requests`;
  const shown = Object.entries(v)
    .slice(0, 3)
    .map(([k, x]) => `${k} ${x}`)
    .join(', ');
  return `${m.metric}: ${shown}`;
}

export class Follower {
  constructor(
    private readonly client: ClientOptions,
    private readonly projectId: number,
    private readonly n: Narrator,
    private readonly hooks: FollowHooks,
  ) {}

  async follow(pipelineId: string): Promise<FollowResult> {
    const doneJobs = new Set<string>();
    const releases = new Map<string, ReleaseDetailView>();
    const seen = new Map<string, { transitions: number; measurements: number; approvalAsked: boolean }>();
    const c = this.client;
    for (;;) {
      const p = await api<PipelineView>(c, 'GET', `/api/pipelines/${pipelineId}`);
      for (const job of p.jobs) {
        const env = job.spec?.deploy?.environment;
        if (env && (job.status === 'running' || FINAL_JOB_STATUSES.has(job.status))) await this.followRelease(job, env, releases, seen);
        if (!FINAL_JOB_STATUSES.has(job.status) || doneJobs.has(job.id)) continue;
        doneJobs.add(job.id);
        await this.jobFinished(job, releases.get(env ?? ''));
      }
      if (!['created', 'running'].includes(p.status) && p.jobs.every((j) => FINAL_JOB_STATUSES.has(j.status) || j.status === 'manual')) {
        return { pipeline: p, releases };
      }
      await sleep(POLL_MS);
    }
  }

  private async jobFinished(job: JobView, release: ReleaseDetailView | undefined): Promise<void> {
    const took = job.durationMs === null ? '' : formatDuration(job.durationMs);
    const name = job.name.padEnd(11);
    if (job.status === 'skipped') return this.n.note(`${name} skipped`);
    if (release) {
      const text = `${name}${took.padStart(6)}  ${release.environment}#${release.number} ${release.status.replace('_', ' ')}`;
      return release.status === 'succeeded' ? this.n.ok(text) : this.n.bad(text);
    }
    const note = await jobNote(this.hooks.output, job);
    const text = `${name}${took.padStart(6)}  ${note}`;
    if (job.status === 'success') this.n.ok(text);
    else this.n.bad(`${text}${job.failureReason ? ` (${job.failureReason})` : ''}`);
  }

  /** Narrates what is new in the deploy job's release: transitions, failed measurements, waits. */
  private async followRelease(job: JobView, envName: string, releases: Map<string, ReleaseDetailView>, seen: Map<string, { transitions: number; measurements: number; approvalAsked: boolean }>): Promise<void> {
    const known = releases.get(envName);
    if (known && FINAL_STATUSES.includes(known.status)) return;
    let env: EnvironmentView;
    try {
      env = await api<EnvironmentView>(this.client, 'GET', `/api/projects/${this.projectId}/environments/${envName}`);
    } catch {
      return; // no release to it recorded yet
    }
    this.hooks.onEnvironment?.(env);
    const mine = env.releases.find((r) => r.jobId === job.id);
    if (!mine) return;
    const d = await api<ReleaseDetailView>(this.client, 'GET', `/api/releases/${mine.id}`);
    releases.set(envName, d);
    const s = seen.get(d.id) ?? { transitions: 0, measurements: 0, approvalAsked: false };
    seen.set(d.id, s);
    const label = `${envName}#${d.number}`;
    // What is new, in the order it happened: steps and failed measurements interleave.
    const news: { at: number; say: () => void }[] = [
      ...d.transitions.slice(s.transitions).map((t) => ({ at: Date.parse(t.at), say: () => this.n.note(`${label}  ${transitionText(t, d)}`) })),
      ...d.measurements
        .slice(s.measurements)
        .filter((m) => m.outcome === 'failure')
        .map((m) => ({ at: Date.parse(m.at), say: () => this.n.line(this.n.p.red(`! ${label}  ${describeMeasurement(m)}: fails "${conditionOf(d, m.metric)}"`)) })),
    ];
    for (const x of news.sort((a, b) => a.at - b.at)) x.say();
    s.transitions = d.transitions.length;
    s.measurements = d.measurements.length;
    if (env.url) this.hooks.onRouter?.(env);
    if (d.status === 'waiting' && d.reason?.startsWith('approvals') && !s.approvalAsked) {
      s.approvalAsked = true;
      await this.hooks.onApprovalWait(d);
    }
  }
}

function conditionOf(d: ReleaseDetailView, metric: string): string {
  return d.config.strategy.analysis?.metrics.find((m) => m.name === metric)?.condition ?? '?';
}

function transitionText(t: Transition, d: ReleaseDetailView): string {
  if (t.from === null) return `created (${d.strategy}) for ${d.sha.slice(0, 8)}`;
  const steps = d.config.strategy.steps;
  // A canary's step N carries out its (N-1)th configured step (step 1: the first, right after
  // the canary's instances are ready): say which, so "step 3/6" reads as what happens now.
  const doing = steps && t.to === 'progressing' && t.step !== null && t.step >= 1 ? steps[t.step - 1] : undefined;
  const now = doing ? `: ${describeStep(doing)}` : '';
  // The last step is not a configured one: the canary is made the stable release.
  if (t.to === t.from && steps && t.step === steps.length + 1) return `step ${t.step}/${t.step}: the canary becomes the stable release`;
  if (t.to === t.from) return doing ? `${t.step === 1 && t.reason ? `${t.reason}; ` : ''}step ${t.step}/${steps!.length + 1}${now}` : (t.reason ?? '');
  return `${t.to.replace('_', ' ')}${t.reason ? `: ${t.reason}` : ''}${doing && t.step === 1 ? `; step 1/${steps!.length + 1}${now}` : ''}`;
}

function describeStep(s: CanaryStepView): string {
  switch (s.kind) {
    case 'weight':
      return `${s.weight}% of the traffic to the canary`;
    case 'analysis':
      return `analysis of its traffic for ${(s.durationMs ?? 0) / 1000}s`;
    case 'pause':
      return s.durationMs === undefined ? 'paused until `ferry promote`' : `pause ${s.durationMs / 1000}s`;
    default:
      return 'waiting for an approval';
  }
}
