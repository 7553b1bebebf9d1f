// Turns the run events of src/pipeline/events.ts into rows. A whole array of events is applied
// in ONE transaction and folded first into a handful of set-based statements (one per table),
// so the cost of a batch hardly depends on how many events it holds.
import { FINAL_JOB_STATUSES, type JobStateChanged, type PipelineStatus, type RunEvent } from '../pipeline/events.js';
import { cleanText, type Db } from './db.js';
import { markLogsTruncated, patchJobs, upsertAttempts, insertJobs, type AttemptPatch, type JobPatch } from './jobs.js';
import { appendLogs, packLogs, type NewLogChunk } from './logs.js';
import { finishPipelines, insertPipeline, pipelineNumbers, reopenPipelines, takePipelineNumber } from './pipelines.js';
import { insertReports, type NewReport } from './reports.js';

export interface RecordedPipeline {
  pipelineId: string;
  projectId: number;
  number: number;
}

export interface ApplyResult {
  /** Pipelines created by this batch's pipeline.started events, with their assigned numbers. */
  started: RecordedPipeline[];
}

/**
 * Consecutive output of one job attempt and stream is stored as one row up to this size. The
 * text is kept as the pieces it came in, never joined into one string: V8 makes a string over
 * 128 KiB in its large-object space, at ~40 times the cost (see src/runner/log-batch.ts).
 */
const MAX_ROW_CHARS = 256 * 1024;

export class RunRecorder {
  constructor(private readonly db: Db) {}

  /**
   * Folds events into rows and compresses their log text: the slow part of recording a noisy
   * job's output, done before any transaction so that it holds no lock (see apply).
   */
  static async prepare(events: RunEvent[]): Promise<PreparedEvents> {
    const plan = planEvents(events);
    return { events, plan, packed: await packLogs(plan.logs) };
  }

  /** Records a batch of events, in order, atomically: all of them or (on error) none. */
  async apply(batch: RunEvent[] | PreparedEvents): Promise<ApplyResult> {
    const prepared = Array.isArray(batch) ? await RunRecorder.prepare(batch) : batch;
    if (prepared.events.length === 0) return { started: [] };
    return this.db.transaction((tx) => applyPlan(tx, prepared));
  }
}

/** Events ready to record: RunRecorder.prepare. */
export interface PreparedEvents {
  events: RunEvent[];
  plan: Plan;
  packed: (string | null)[];
}

/** What a batch of events does, folded per row. */
export interface Plan {
  starts: Extract<RunEvent, { type: 'pipeline.started' }>[];
  jobs: Map<string, JobPatch & { pipelineId: string }>;
  attempts: Map<string, AttemptPatch>;
  logs: NewLogChunk[];
  /** Attempts whose log was cut at the per-job limit in this batch. */
  truncated: { jobId: string; attempt: number }[];
  reports: NewReport[];
  /** Per pipeline, the last thing that happened to its status in this batch. */
  pipelineStatus: Map<string, { kind: 'finished'; status: PipelineStatus; at: number } | { kind: 'reopen' }>;
}

export function planEvents(events: RunEvent[]): Plan {
  const plan: Plan = { starts: [], jobs: new Map(), attempts: new Map(), logs: [], truncated: [], reports: [], pipelineStatus: new Map() };
  // The open log row of each job attempt: consecutive output of the same stream is appended to it.
  const openLog = new Map<string, NewLogChunk>();
  for (const e of events) {
    switch (e.type) {
      case 'pipeline.started':
        plan.starts.push(e);
        break;
      case 'job.state':
        foldJobState(plan, e);
        if (e.status === 'running') plan.pipelineStatus.set(e.pipelineId, { kind: 'reopen' });
        break;
      case 'job.log': {
        if (e.truncated) plan.truncated.push({ jobId: e.jobId, attempt: e.attempt });
        if (e.text.length === 0) break;
        const key = `${e.jobId}\u0000${e.attempt}`;
        const open = openLog.get(key);
        const text = cleanText(e.text);
        if (open && open.stream === e.stream && open.chars + text.length <= MAX_ROW_CHARS) {
          const last = open.marks?.at(-1)?.[1] ?? open.at;
          if (e.at !== last) (open.marks ??= []).push([open.chars, e.at]);
          open.pieces.push(text);
          open.chars += text.length;
        } else {
          const chunk: NewLogChunk = { jobId: e.jobId, attempt: e.attempt, stream: e.stream, at: e.at, pieces: [text], chars: text.length };
          plan.logs.push(chunk);
          openLog.set(key, chunk);
        }
        break;
      }
      case 'job.report':
        plan.reports.push({ jobId: e.jobId, attempt: e.attempt, kind: e.kind, file: e.file, report: e.report });
        break;
      case 'pipeline.finished':
        plan.pipelineStatus.set(e.pipelineId, { kind: 'finished', status: e.status, at: e.at });
        break;
      default: {
        const unknown: never = e;
        throw new Error(`unknown run event ${JSON.stringify((unknown as { type?: unknown }).type)}`);
      }
    }
  }
  return plan;
}

function foldJobState(plan: Plan, e: JobStateChanged): void {
  const final = FINAL_JOB_STATUSES.has(e.status);
  const prev = plan.jobs.get(e.jobId);
  let startedAt: number | null = prev?.startedAt ?? null;
  if (e.status === 'running') {
    if (!(prev && prev.status === 'running' && prev.attempt === e.attempt)) startedAt = e.at;
  } else if (final) {
    if (!prev || prev.attempt !== e.attempt) startedAt = null;
  } else {
    startedAt = null;
  }
  plan.jobs.set(e.jobId, {
    id: e.jobId,
    pipelineId: e.pipelineId,
    status: e.status,
    attempt: e.attempt,
    exitCode: e.exitCode ?? null,
    reason: e.reason ?? null,
    allowedFailure: e.allowedFailure ?? false,
    workspace: e.workspace ?? prev?.workspace ?? null,
    startedAt,
    finishedAt: final ? e.at : null,
  });
  // An attempt exists from its start; a final status without a start (canceled while pending)
  // is recorded too when the attempt number is known.
  if (e.attempt >= 1 && (e.status === 'running' || final)) {
    const key = `${e.jobId}\u0000${e.attempt}`;
    const a = plan.attempts.get(key) ?? { jobId: e.jobId, number: e.attempt, status: e.status, exitCode: null, reason: null, startedAt: null, finishedAt: null };
    a.status = e.status;
    if (e.status === 'running') {
      a.startedAt ??= e.at;
      a.finishedAt = null;
    } else {
      a.finishedAt = e.at;
      a.exitCode = e.exitCode ?? null;
      a.reason = e.reason ?? null;
    }
    plan.attempts.set(key, a);
  }
}

async function applyPlan(tx: Db, { plan, packed }: PreparedEvents): Promise<ApplyResult> {
  const started: RecordedPipeline[] = [];

  // 1. New pipelines and their planned jobs. A pipeline recorded before (an event replayed) is skipped.
  const existing = await pipelineNumbers(tx, plan.starts.map((s) => s.pipelineId));
  for (const s of plan.starts) {
    if (existing.has(s.pipelineId)) continue;
    const { projectId, number } = await takePipelineNumber(tx, s.project, s.number);
    await insertPipeline(tx, {
      id: s.pipelineId,
      projectId,
      number,
      sha: s.sha,
      branch: s.branch,
      tag: s.tag,
      source: s.source,
      status: 'running',
      configText: s.configText,
      variables: s.variables,
      createdAt: s.at,
      startedAt: s.at,
    });
    await insertJobs(tx, s.pipelineId, s.jobs.map((j) => ({ id: j.jobId, name: j.name, stage: j.stage, needs: j.needs, when: j.when, allowFailure: j.allowFailure, spec: j.spec })));
    existing.set(s.pipelineId, number);
    started.push({ pipelineId: s.pipelineId, projectId, number });
  }

  // 2. Job rows and attempt rows (jobs may belong to a pipeline recorded by an earlier process).
  const patches = [...plan.jobs.values()];
  const found = await patchJobs(tx, patches);
  const missing = patches.filter((p) => !found.has(p.id));
  if (missing.length > 0) {
    throw new Error(
      `job.state for ${missing.length} unknown job(s): ${missing
        .slice(0, 5)
        .map((m) => `${m.id} (pipeline ${m.pipelineId})`)
        .join(', ')} — was the pipeline.started event recorded?`,
    );
  }
  await upsertAttempts(tx, [...plan.attempts.values()]);

  // 3. Output and test reports.
  await appendLogs(tx, plan.logs, packed);
  await markLogsTruncated(tx, plan.truncated);
  await insertReports(tx, plan.reports);

  // 4. Pipeline status.
  const finished: { id: string; status: PipelineStatus; finishedAt: number }[] = [];
  const reopened: string[] = [];
  for (const [id, s] of plan.pipelineStatus) {
    if (s.kind === 'finished') finished.push({ id, status: s.status, finishedAt: s.at });
    else reopened.push(id);
  }
  await reopenPipelines(tx, reopened);
  await finishPipelines(tx, finished);
  return { started };
}
