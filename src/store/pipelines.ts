// The pipelines aggregate: projects, pipelines and their numbering, and the history queries.
import { basename } from 'node:path';
import type { JobStatus, PipelineStatus } from '../pipeline/events.js';
import { cleanText, iso, toJson, type Db } from './db.js';
import { listJobs, type JobRow } from './jobs.js';

export interface Project {
  id: number;
  /** A local checkout's absolute path or a remote repository's URL. */
  path: string;
  name: string;
  /** Number of the project's latest pipeline (0 when none yet). */
  lastNumber: number;
  createdAt: Date;
  /** Server-side settings (e.g. the hashed token of a local repository's push hook). Absent
   * before the server's migration ran (a store only `ferry run` has used). */
  settings?: ProjectSettings;
}

export interface ProjectSettings {
  localHookHash?: string;
}

export interface PipelineSummary {
  id: string;
  projectId: number;
  projectPath: string;
  projectName: string;
  /** Sequential per project, from 1. */
  number: number;
  sha: string;
  branch: string | null;
  tag: string | null;
  source: string;
  status: PipelineStatus;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** finishedAt - startedAt; null while running. */
  durationMs: number | null;
  /** Number of jobs in each status (statuses with no job are absent). */
  jobCounts: Partial<Record<JobStatus, number>>;
  jobsTotal: number;
}

export interface PipelineDetail extends PipelineSummary {
  configText: string;
  variables: Record<string, string>;
  /** In plan order. */
  jobs: JobRow[];
}

export type PipelineRef = { id: string } | { project: string; number: number };

export interface ListPipelinesOptions {
  /** Only this project's pipelines (by path/URL), newest number first. Default: all projects, newest first. */
  project?: string;
  branch?: string;
  status?: PipelineStatus;
  /** Page size. Default 20. */
  limit?: number;
  /** With `project`: only pipelines numbered below this (for paging back). */
  beforeNumber?: number;
}

/** The display name of a project: the last path segment, without `.git`. */
export function projectName(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, '');
  const base = basename(trimmed.replace(/^[a-z+]+:\/\/[^/]*/i, '').replace(/^[^@/]+@[^:]+:/, '')) || trimmed;
  return base.replace(/\.git$/, '') || trimmed;
}

// -- writes (used by the recorder) ----------------------------------------------------------

/**
 * Creates the project if needed and takes its next pipeline number, in one statement. The
 * project row is locked until the transaction ends, so concurrent pipelines of one project
 * (several servers on PostgreSQL) get distinct, gapless numbers; UNIQUE (project_id, number)
 * is the backstop.
 */
export async function takePipelineNumber(db: Db, projectPath: string, wanted?: number): Promise<{ projectId: number; number: number }> {
  if (wanted !== undefined) {
    // The number a run took before it started (src/store/numbers.ts, or reservePipelineNumber):
    // kept unless a pipeline has it already.
    const [row] = await db.query<{ id: number }>(
      `INSERT INTO projects (path, name, last_number) VALUES ($1, $2, $3)
       ON CONFLICT (path) DO UPDATE SET last_number = greatest(projects.last_number, $3)
       RETURNING id`,
      [projectPath, projectName(projectPath), wanted],
    );
    const taken = await db.query('SELECT 1 FROM pipelines WHERE project_id = $1 AND number = $2', [row!.id, wanted]);
    if (taken.length === 0) return { projectId: row!.id, number: wanted };
  }
  return reservePipelineNumber(db, projectPath);
}

/** Takes the project's next pipeline number (creating the project if needed). */
export async function reservePipelineNumber(db: Db, projectPath: string): Promise<{ projectId: number; number: number }> {
  const [row] = await db.query<{ id: number; last_number: number }>(
    `INSERT INTO projects (path, name, last_number) VALUES ($1, $2, 1)
     ON CONFLICT (path) DO UPDATE SET last_number = projects.last_number + 1
     RETURNING id, last_number`,
    [projectPath, projectName(projectPath)],
  );
  return { projectId: row!.id, number: row!.last_number };
}

export interface NewPipeline {
  id: string;
  projectId: number;
  number: number;
  sha: string;
  branch: string | null;
  tag: string | null;
  source: string;
  status: PipelineStatus;
  configText: string;
  variables: Record<string, string>;
  createdAt: number;
  startedAt: number | null;
}

export async function insertPipeline(db: Db, p: NewPipeline): Promise<void> {
  await db.query(
    `INSERT INTO pipelines (id, project_id, number, sha, branch, tag, source, status, config_text, variables, created_at, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)`,
    [p.id, p.projectId, p.number, p.sha, p.branch, p.tag, p.source, p.status, cleanText(p.configText), toJson(p.variables), iso(p.createdAt), iso(p.startedAt)],
  );
}

/** Existing pipelines among `ids`, with their numbers. */
export async function pipelineNumbers(db: Db, ids: string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: string; number: number }>('SELECT id, number FROM pipelines WHERE id = ANY($1::text[])', [ids]);
  return new Map(rows.map((r) => [r.id, r.number]));
}

export async function finishPipelines(db: Db, patches: { id: string; status: PipelineStatus; finishedAt: number }[]): Promise<void> {
  if (patches.length === 0) return;
  await db.query(
    `UPDATE pipelines AS p SET status = x.status, finished_at = x.finished_at
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, status text, finished_at timestamptz)
     WHERE p.id = x.id`,
    [toJson(patches.map((p) => ({ id: p.id, status: p.status, finished_at: iso(p.finishedAt) })))],
  );
}

/** A job of a finished pipeline started again (e.g. a manual job played later): the pipeline runs again. */
export async function reopenPipelines(db: Db, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(`UPDATE pipelines SET status = 'running', finished_at = NULL WHERE id = ANY($1::text[]) AND status <> 'running'`, [ids]);
}

// -- reads ----------------------------------------------------------------------------------

interface ProjectRow {
  id: number;
  path: string;
  name: string;
  last_number: number;
  created_at: Date;
  settings?: ProjectSettings;
}

const toProject = (r: ProjectRow): Project => ({ id: r.id, path: r.path, name: r.name, lastNumber: r.last_number, createdAt: r.created_at, settings: r.settings });

export async function findProject(db: Db, path: string): Promise<Project | null> {
  const [row] = await db.query<ProjectRow>('SELECT * FROM projects WHERE path = $1', [path]);
  return row ? toProject(row) : null;
}

/**
 * What a repository URL (https://, ssh://, file://, git@host:path) looks like, rather than a
 * path on this machine; case-insensitive. One pattern for isRemote and for SQL (`path ~* ...`,
 * src/store/polling.ts): both engines read it the same way.
 */
export const REMOTE_PATH = '^[a-z+]+://|^[^/]+@[^:]+:';
const REMOTE = new RegExp(REMOTE_PATH, 'i');

export function isRemote(path: string): boolean {
  return REMOTE.test(path);
}

export async function getProject(db: Db, id: number): Promise<Project | null> {
  const [row] = await db.query<ProjectRow>('SELECT * FROM projects WHERE id = $1', [id]);
  return row ? toProject(row) : null;
}

/**
 * What a job's runner needs of its pipeline: the project, the commit and the pipeline's
 * variables, in one read (getPipeline would read every job of the pipeline too).
 */
export async function getPipelineSource(db: Db, pipelineId: string): Promise<{ project: Project; sha: string; variables: Record<string, string> } | null> {
  const [row] = await db.query<ProjectRow & { sha: string; variables: Record<string, string> | null }>(
    'SELECT pr.*, p.sha, p.variables FROM pipelines p JOIN projects pr ON pr.id = p.project_id WHERE p.id = $1',
    [pipelineId],
  );
  return row ? { project: toProject(row), sha: row.sha, variables: row.variables ?? {} } : null;
}

export async function listProjects(db: Db): Promise<Project[]> {
  return (await db.query<ProjectRow>('SELECT * FROM projects ORDER BY name, id')).map(toProject);
}

interface SummaryRow {
  id: string;
  project_id: number;
  project_path: string;
  project_name: string;
  number: number;
  sha: string;
  branch: string | null;
  tag: string | null;
  source: string;
  status: PipelineStatus;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  job_counts: Partial<Record<JobStatus, number>> | null;
  config_text?: string;
  variables?: Record<string, string>;
}

const SUMMARY_SELECT = `
  SELECT p.id, p.project_id, pr.path AS project_path, pr.name AS project_name, p.number, p.sha, p.branch, p.tag,
         p.source, p.status, p.created_at, p.started_at, p.finished_at,
         (SELECT jsonb_object_agg(c.status, c.n)
            FROM (SELECT status, count(*)::int AS n FROM jobs WHERE pipeline_id = p.id GROUP BY status) AS c) AS job_counts`;

function toSummary(r: SummaryRow): PipelineSummary {
  const jobCounts = r.job_counts ?? {};
  return {
    id: r.id,
    projectId: r.project_id,
    projectPath: r.project_path,
    projectName: r.project_name,
    number: r.number,
    sha: r.sha,
    branch: r.branch,
    tag: r.tag,
    source: r.source,
    status: r.status,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.started_at && r.finished_at ? r.finished_at.getTime() - r.started_at.getTime() : null,
    jobCounts,
    jobsTotal: Object.values(jobCounts).reduce((a, b) => a + (b ?? 0), 0),
  };
}

/** Pipeline history, newest first, with job counts by status and durations. */
export async function listPipelines(db: Db, opts: ListPipelinesOptions = {}): Promise<PipelineSummary[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (opts.project !== undefined) where.push(`pr.path = $${params.push(opts.project)}`);
  if (opts.branch !== undefined) where.push(`p.branch = $${params.push(opts.branch)}`);
  if (opts.status !== undefined) where.push(`p.status = $${params.push(opts.status)}`);
  if (opts.beforeNumber !== undefined) where.push(`p.number < $${params.push(opts.beforeNumber)}`);
  const order = opts.project !== undefined ? 'p.number DESC' : 'p.created_at DESC, p.number DESC';
  const rows = await db.query<SummaryRow>(
    `${SUMMARY_SELECT}
     FROM pipelines p JOIN projects pr ON pr.id = p.project_id
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY ${order}
     LIMIT $${params.push(opts.limit ?? 20)}`,
    params,
  );
  return rows.map(toSummary);
}

/** A pipeline by id, or by project path and number, with its jobs; null when unknown. */
export async function getPipeline(db: Db, ref: PipelineRef): Promise<PipelineDetail | null> {
  const [row] =
    'id' in ref
      ? await db.query<SummaryRow>(
          `${SUMMARY_SELECT}, p.config_text, p.variables FROM pipelines p JOIN projects pr ON pr.id = p.project_id WHERE p.id = $1`,
          [ref.id],
        )
      : await db.query<SummaryRow>(
          `${SUMMARY_SELECT}, p.config_text, p.variables FROM pipelines p JOIN projects pr ON pr.id = p.project_id
           WHERE pr.path = $1 AND p.number = $2`,
          [ref.project, ref.number],
        );
  if (!row) return null;
  return { ...toSummary(row), configText: row.config_text ?? '', variables: row.variables ?? {}, jobs: await listJobs(db, row.id) };
}

/** The project's newest pipeline (optionally on one branch), or null. */
export async function latestPipeline(db: Db, project: string, opts: { branch?: string } = {}): Promise<PipelineSummary | null> {
  const [p] = await listPipelines(db, { project, branch: opts.branch, limit: 1 });
  return p ?? null;
}

/** The number the project's next pipeline will get (1 for an unknown project). Informational:
 * the number is only taken when the pipeline is recorded. */
export async function nextPipelineNumber(db: Db, project: string): Promise<number> {
  const p = await findProject(db, project);
  return (p?.lastNumber ?? 0) + 1;
}
