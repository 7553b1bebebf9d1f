// The schedules aggregate: per project, pipelines started by cron. Firing is decided here, in
// the store, so that server replicas sharing one PostgreSQL fire each slot once: a replica moves
// a due schedule's next_run_at forward only if it still holds the slot it saw (compare-and-set
// under the row lock), in the transaction that records the pipeline. The other replica's update
// then matches no row, and it drops what it prepared.
import { toJson, type Db } from './db.js';

export interface Schedule {
  id: number;
  projectId: number;
  cron: string;
  /** IANA time zone the cron is read in. */
  timezone: string;
  /** Branch (or tag) to run; null: the repository's HEAD. */
  branch: string | null;
  variables: Record<string, string>;
  description: string;
  /** False: paused, fires nothing until resumed. */
  active: boolean;
  /** Who made it; its pipelines are started in their name. */
  createdBy: string;
  createdAt: Date;
  nextRunAt: Date;
  /** The last slot fired, and its pipeline or why it made none. */
  lastRunAt: Date | null;
  lastPipelineId: string | null;
  /** The last pipeline's number and status, when it is still kept. */
  lastPipeline: { number: number; status: string } | null;
  lastError: string | null;
}

export type NewSchedule = Pick<Schedule, 'projectId' | 'cron' | 'timezone' | 'branch' | 'variables' | 'description' | 'createdBy' | 'nextRunAt'>;

interface Row {
  id: number;
  project_id: number;
  cron: string;
  timezone: string;
  branch: string | null;
  variables: Record<string, string>;
  description: string;
  active: boolean;
  created_by: string;
  created_at: Date;
  next_run_at: Date;
  last_run_at: Date | null;
  last_pipeline_id: string | null;
  last_error: string | null;
  last_number?: number | null;
  last_status?: string | null;
}

function toSchedule(r: Row): Schedule {
  return {
    id: r.id,
    projectId: r.project_id,
    cron: r.cron,
    timezone: r.timezone,
    branch: r.branch,
    variables: r.variables ?? {},
    description: r.description,
    active: r.active,
    createdBy: r.created_by,
    createdAt: r.created_at,
    nextRunAt: r.next_run_at,
    lastRunAt: r.last_run_at,
    lastPipelineId: r.last_pipeline_id,
    lastPipeline: r.last_number != null && r.last_status != null ? { number: r.last_number, status: r.last_status } : null,
    lastError: r.last_error,
  };
}

export async function createSchedule(db: Db, s: NewSchedule): Promise<Schedule> {
  const [row] = await db.query<Row>(
    `INSERT INTO schedules (project_id, cron, timezone, branch, variables, description, created_by, next_run_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8) RETURNING *`,
    [s.projectId, s.cron, s.timezone, s.branch, toJson(s.variables), s.description, s.createdBy, s.nextRunAt.toISOString()],
  );
  return toSchedule(row!);
}

export async function listSchedules(db: Db, projectId: number): Promise<Schedule[]> {
  const rows = await db.query<Row>(
    `SELECT s.*, p.number AS last_number, p.status AS last_status
     FROM schedules s LEFT JOIN pipelines p ON p.id = s.last_pipeline_id
     WHERE s.project_id = $1 ORDER BY s.id`,
    [projectId],
  );
  return rows.map(toSchedule);
}

/** One schedule of a project, with its last pipeline; null when it has none of that id. */
export async function getSchedule(db: Db, projectId: number, id: number): Promise<Schedule | null> {
  const [row] = await db.query<Row>(
    `SELECT s.*, p.number AS last_number, p.status AS last_status
     FROM schedules s LEFT JOIN pipelines p ON p.id = s.last_pipeline_id
     WHERE s.project_id = $1 AND s.id = $2`,
    [projectId, id],
  );
  return row ? toSchedule(row) : null;
}

/** What an edit may change; `nextRunAt` is the caller's to work out from the new cron and zone. */
export type SchedulePatch = Partial<Pick<Schedule, 'cron' | 'timezone' | 'branch' | 'variables' | 'description' | 'active' | 'nextRunAt'>>;

const PATCH_COLUMNS: Record<keyof SchedulePatch, string> = {
  cron: 'cron',
  timezone: 'timezone',
  branch: 'branch',
  variables: 'variables',
  description: 'description',
  active: 'active',
  nextRunAt: 'next_run_at',
};

/** Changes a schedule; returns it as it is now, or null when the project has no such schedule. */
export async function updateSchedule(db: Db, projectId: number, id: number, patch: SchedulePatch): Promise<Schedule | null> {
  const sets: string[] = [];
  const values: unknown[] = [projectId, id];
  for (const [key, value] of Object.entries(patch) as [keyof SchedulePatch, SchedulePatch[keyof SchedulePatch]][]) {
    if (value === undefined) continue;
    values.push(key === 'variables' ? toJson(value) : value instanceof Date ? value.toISOString() : value);
    sets.push(`${PATCH_COLUMNS[key]} = $${values.length}${key === 'variables' ? '::jsonb' : ''}`);
  }
  if (sets.length) {
    const rows = await db.query(`UPDATE schedules SET ${sets.join(', ')} WHERE project_id = $1 AND id = $2 RETURNING id`, values);
    if (rows.length === 0) return null;
  }
  return getSchedule(db, projectId, id);
}

/** False when the project has no such schedule. */
export async function deleteSchedule(db: Db, projectId: number, id: number): Promise<boolean> {
  return (await db.query('DELETE FROM schedules WHERE project_id = $1 AND id = $2 RETURNING id', [projectId, id])).length > 0;
}

/** Active schedules due now (by the database's clock, the one every replica shares), oldest slot first. */
export async function dueSchedules(db: Db, limit = 20): Promise<Schedule[]> {
  return (await db.query<Row>('SELECT * FROM schedules WHERE active AND next_run_at <= now() ORDER BY next_run_at LIMIT $1', [limit])).map(toSchedule);
}

/** Milliseconds until the next active schedule is due (0: one is due now); null when there is none. */
export async function msUntilNextDue(db: Db): Promise<number | null> {
  const [row] = await db.query<{ at: Date | null; now: Date }>('SELECT min(next_run_at) FILTER (WHERE active) AS at, now() AS now FROM schedules');
  return row?.at ? Math.max(0, row.at.getTime() - row.now.getTime()) : null;
}

/**
 * Takes the slot `seen` of a schedule: moves it to `next` and notes the run. Call inside the
 * transaction that records the run's pipeline. False when the slot is gone (another replica
 * fired it, the schedule was edited, paused or deleted): the caller must then record nothing.
 */
export async function takeSlot(tx: Db, id: number, seen: Date, next: Date, error: string | null): Promise<boolean> {
  const rows = await tx.query(
    `UPDATE schedules SET next_run_at = $3, last_run_at = $2, last_error = $4, last_pipeline_id = NULL
     WHERE id = $1 AND next_run_at = $2 AND active RETURNING id`,
    [id, seen.toISOString(), next.toISOString(), error],
  );
  return rows.length > 0;
}

/** The pipeline a slot made (recorded in the same transaction as takeSlot, after the pipeline). */
export async function noteScheduledPipeline(tx: Db, id: number, pipelineId: string): Promise<void> {
  await tx.query('UPDATE schedules SET last_pipeline_id = $2 WHERE id = $1', [id, pipelineId]);
}
