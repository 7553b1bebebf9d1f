// The release aggregate: a commit on its way to an environment, a persisted state machine that
// the delivery controller (src/delivery/controller.ts) drives step by step. Every status change
// is a row in release_transitions (time, actor, reason); every analysis measurement is kept.
// Signals from people and alerts (promote, abort, approve) are written to their own columns so
// that the controller, which owns `progress`, never loses them to a concurrent update.
import { randomUUID } from 'node:crypto';
import type { EnvironmentConfig } from '../config/types.js';
import { toJson, type Db } from './db.js';

export const RELEASE_STATUSES = ['pending', 'waiting', 'progressing', 'succeeded', 'failed', 'rolled_back', 'aborted'] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];
export const ACTIVE_STATUSES: readonly ReleaseStatus[] = ['pending', 'waiting', 'progressing'];
export const FINAL_STATUSES: readonly ReleaseStatus[] = ['succeeded', 'failed', 'rolled_back', 'aborted'];

/** What a strategy keeps between steps; enough to resume after a restart of the server. */
export interface ReleaseProgress {
  /** Instances of this release on the edge (ids). */
  instances?: string[];
  /** Instances of the previous release still serving, during a rolling release. */
  oldInstances?: string[];
  /** The new version's share of traffic now (0..100). */
  weight?: number;
  /** True once any traffic went to this release: undoing it is a rollback, not just a failure. */
  tookTraffic?: boolean;
  /** Blue-green: when the previous release's warm instances are stopped. */
  retireAt?: number;
  /** Blue-green: the warm instances were stopped. */
  retired?: boolean;
  /** Per metric, failed and inconclusive measurements so far. */
  failures?: Record<string, number>;
  inconclusive?: Record<string, number>;
  /** The freeze override given by an admin, if any. */
  freezeOverride?: { actor: string; reason: string };
}

export interface Signal {
  actor: string;
  reason?: string;
  at: number;
}

export interface Release {
  id: string;
  projectId: number;
  environment: string;
  number: number;
  pipelineId: string | null;
  jobId: string | null;
  sha: string;
  branch: string | null;
  authorEmail: string | null;
  createdBy: string;
  config: EnvironmentConfig;
  filesDir: string | null;
  status: ReleaseStatus;
  reason: string | null;
  step: number;
  stepStartedAt: Date | null;
  progress: ReleaseProgress;
  previousId: string | null;
  redeployOf: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  promoteRequested: (Signal & { full: boolean }) | null;
  abortRequested: (Signal & { rollback: boolean }) | null;
}

interface Row {
  id: string;
  project_id: number;
  environment: string;
  number: number;
  pipeline_id: string | null;
  job_id: string | null;
  sha: string;
  branch: string | null;
  author_email: string | null;
  created_by: string;
  config: EnvironmentConfig;
  files_dir: string | null;
  status: ReleaseStatus;
  reason: string | null;
  step: number;
  step_started_at: Date | null;
  progress: ReleaseProgress;
  previous_id: string | null;
  redeploy_of: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  promote_requested: (Signal & { full: boolean }) | null;
  abort_requested: (Signal & { rollback: boolean }) | null;
}

function fromRow(r: Row): Release {
  return {
    id: r.id,
    projectId: r.project_id,
    environment: r.environment,
    number: r.number,
    pipelineId: r.pipeline_id,
    jobId: r.job_id,
    sha: r.sha,
    branch: r.branch,
    authorEmail: r.author_email,
    createdBy: r.created_by,
    config: r.config,
    filesDir: r.files_dir,
    status: r.status,
    reason: r.reason,
    step: r.step,
    stepStartedAt: r.step_started_at,
    progress: r.progress ?? {},
    previousId: r.previous_id,
    redeployOf: r.redeploy_of,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    promoteRequested: r.promote_requested,
    abortRequested: r.abort_requested,
  };
}

export interface NewRelease {
  projectId: number;
  environment: string;
  pipelineId?: string;
  jobId?: string;
  sha: string;
  branch?: string | null;
  authorEmail?: string | null;
  createdBy: string;
  config: EnvironmentConfig;
  filesDir?: string;
  redeployOf?: string;
  at?: number;
}

/** Creates a release in `pending`, numbered after the environment's last one. */
export async function createRelease(db: Db, r: NewRelease): Promise<Release> {
  return db.transaction(async (tx) => {
    const at = new Date(r.at ?? Date.now()).toISOString();
    // The environment row is the lock that numbers releases one after the other.
    await tx.query('INSERT INTO environments (project_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [r.projectId, r.environment]);
    const [env] = await tx.query<{ stable_release_id: string | null }>(
      'SELECT stable_release_id FROM environments WHERE project_id = $1 AND name = $2 FOR UPDATE',
      [r.projectId, r.environment],
    );
    const [last] = await tx.query<{ n: number }>('SELECT coalesce(max(number), 0)::int AS n FROM releases WHERE project_id = $1 AND environment = $2', [r.projectId, r.environment]);
    const id = `rel_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
    const [row] = await tx.query<Row>(
      `INSERT INTO releases (id, project_id, environment, number, pipeline_id, job_id, sha, branch, author_email, created_by, config, files_dir, status, previous_id, redeploy_of, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, 'pending', $13, $14, $15)
       RETURNING *`,
      [id, r.projectId, r.environment, last!.n + 1, r.pipelineId ?? null, r.jobId ?? null, r.sha, r.branch ?? null, r.authorEmail ?? null, r.createdBy, toJson(r.config), r.filesDir ?? null, env?.stable_release_id ?? null, r.redeployOf ?? null, at],
    );
    await tx.query('INSERT INTO release_transitions (release_id, at, from_status, to_status, step, actor, reason) VALUES ($1, $2, NULL, $3, 0, $4, $5)', [id, at, 'pending', r.createdBy, r.redeployOf ? `redeploy of ${r.redeployOf}` : 'created']);
    return fromRow(row!);
  });
}

export async function getRelease(db: Db, id: string): Promise<Release | null> {
  const [row] = await db.query<Row>('SELECT * FROM releases WHERE id = $1', [id]);
  return row ? fromRow(row) : null;
}

/** A release named by its id, or by `<environment>#<number>` / a number within an environment. */
export async function findRelease(db: Db, ref: string, scope?: { projectId: number; environment: string }): Promise<Release | null> {
  if (ref.startsWith('rel_')) return getRelease(db, ref);
  const m = /^(?:(.+)#)?(\d+)$/.exec(ref);
  if (!m || !scope) return null;
  const [row] = await db.query<Row>('SELECT * FROM releases WHERE project_id = $1 AND environment = $2 AND number = $3', [scope.projectId, m[1] ?? scope.environment, Number(m[2])]);
  return row ? fromRow(row) : null;
}

export async function listReleases(db: Db, q: { projectId: number; environment?: string; limit?: number }): Promise<Release[]> {
  const rows = await db.query<Row>(
    `SELECT * FROM releases WHERE project_id = $1 AND ($2::text IS NULL OR environment = $2)
     ORDER BY created_at DESC, number DESC LIMIT $3`,
    [q.projectId, q.environment ?? null, q.limit ?? 20],
  );
  return rows.map(fromRow);
}

/** The release an environment is working on now (the oldest one not finished), if any. */
export async function activeRelease(db: Db, projectId: number, environment: string): Promise<Release | null> {
  const [row] = await db.query<Row>(
    "SELECT * FROM releases WHERE project_id = $1 AND environment = $2 AND status IN ('pending', 'waiting', 'progressing') ORDER BY number LIMIT 1",
    [projectId, environment],
  );
  return row ? fromRow(row) : null;
}

export interface EnvironmentRow {
  projectId: number;
  name: string;
  stableReleaseId: string | null;
  routerPort: number | null;
}

export async function getEnvironment(db: Db, projectId: number, name: string): Promise<EnvironmentRow | null> {
  const [r] = await db.query<{ project_id: number; name: string; stable_release_id: string | null; router_port: number | null }>(
    'SELECT * FROM environments WHERE project_id = $1 AND name = $2',
    [projectId, name],
  );
  return r ? { projectId: r.project_id, name: r.name, stableReleaseId: r.stable_release_id, routerPort: r.router_port } : null;
}

export async function listEnvironments(db: Db, projectId?: number): Promise<EnvironmentRow[]> {
  const rows = await db.query<{ project_id: number; name: string; stable_release_id: string | null; router_port: number | null }>(
    'SELECT * FROM environments WHERE $1::int IS NULL OR project_id = $1 ORDER BY project_id, name',
    [projectId ?? null],
  );
  return rows.map((r) => ({ projectId: r.project_id, name: r.name, stableReleaseId: r.stable_release_id, routerPort: r.router_port }));
}

export async function setRouterPort(db: Db, projectId: number, name: string, port: number): Promise<void> {
  await db.query('UPDATE environments SET router_port = $3 WHERE project_id = $1 AND name = $2', [projectId, name, port]);
}

/**
 * Moves a release to `to` and records the transition. With `from`, only when the release is
 * still in one of those states (returns false otherwise): two controllers, or a controller and an
 * abort, never both win. A release that succeeds becomes its environment's stable release.
 */
export async function transition(
  db: Db,
  id: string,
  t: { to: ReleaseStatus; from?: readonly ReleaseStatus[]; actor: string; reason?: string; detail?: unknown; at?: number },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const at = new Date(t.at ?? Date.now()).toISOString();
    const [cur] = await tx.query<{ status: ReleaseStatus; step: number; project_id: number; environment: string }>('SELECT status, step, project_id, environment FROM releases WHERE id = $1 FOR UPDATE', [id]);
    if (!cur) return false;
    if (t.from && !t.from.includes(cur.status)) return false;
    if (cur.status === t.to) return true;
    const final = FINAL_STATUSES.includes(t.to);
    await tx.query(
      `UPDATE releases SET status = $2, reason = $3,
         started_at = CASE WHEN $2 = 'progressing' AND started_at IS NULL THEN $4::timestamptz ELSE started_at END,
         finished_at = CASE WHEN $5 THEN $4::timestamptz ELSE finished_at END,
         owner = CASE WHEN $5 THEN NULL ELSE owner END
       WHERE id = $1`,
      [id, t.to, t.reason ?? null, at, final],
    );
    await tx.query(
      'INSERT INTO release_transitions (release_id, at, from_status, to_status, step, actor, reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)',
      [id, at, cur.status, t.to, cur.step, t.actor, t.reason ?? null, t.detail === undefined ? null : toJson(t.detail)],
    );
    if (t.to === 'succeeded') await tx.query('UPDATE environments SET stable_release_id = $3 WHERE project_id = $1 AND name = $2', [cur.project_id, cur.environment, id]);
    return true;
  });
}

/** Records a step change (a transition row within `progressing`) and the strategy's progress. */
export async function saveStep(db: Db, id: string, s: { step: number; progress: ReleaseProgress; actor?: string; reason?: string; at?: number }): Promise<void> {
  await db.transaction(async (tx) => {
    const at = new Date(s.at ?? Date.now()).toISOString();
    const [cur] = await tx.query<{ step: number; status: ReleaseStatus }>('SELECT step, status FROM releases WHERE id = $1 FOR UPDATE', [id]);
    if (!cur) return;
    const moved = cur.step !== s.step;
    await tx.query(
      `UPDATE releases SET step = $2, progress = $3::jsonb, step_started_at = CASE WHEN $4 THEN $5::timestamptz ELSE coalesce(step_started_at, $5::timestamptz) END WHERE id = $1`,
      [id, s.step, toJson(s.progress), moved, at],
    );
    if (moved || s.reason) {
      await tx.query(
        'INSERT INTO release_transitions (release_id, at, from_status, to_status, step, actor, reason) VALUES ($1, $2, $3, $3, $4, $5, $6)',
        [id, at, cur.status, s.step, s.actor ?? 'controller', s.reason ?? null],
      );
    }
  });
}

export async function saveProgress(db: Db, id: string, progress: ReleaseProgress): Promise<void> {
  await db.query('UPDATE releases SET progress = $2::jsonb WHERE id = $1', [id, toJson(progress)]);
}

export async function setFilesDir(db: Db, id: string, dir: string): Promise<void> {
  await db.query('UPDATE releases SET files_dir = $2 WHERE id = $1', [id, dir]);
}

export interface Transition {
  at: Date;
  from: ReleaseStatus | null;
  to: ReleaseStatus;
  step: number | null;
  actor: string;
  reason: string | null;
  detail: unknown;
}

export async function listTransitions(db: Db, id: string): Promise<Transition[]> {
  const rows = await db.query<{ at: Date; from_status: ReleaseStatus | null; to_status: ReleaseStatus; step: number | null; actor: string; reason: string | null; detail: unknown }>(
    'SELECT at, from_status, to_status, step, actor, reason, detail FROM release_transitions WHERE release_id = $1 ORDER BY id',
    [id],
  );
  return rows.map((r) => ({ at: r.at, from: r.from_status, to: r.to_status, step: r.step, actor: r.actor, reason: r.reason, detail: r.detail }));
}

export type MeasurementOutcome = 'success' | 'failure' | 'inconclusive';

export interface Measurement {
  at: Date;
  step: number;
  metric: string;
  source: string;
  outcome: MeasurementOutcome;
  values: Record<string, number | null>;
  message: string | null;
}

export async function recordMeasurements(db: Db, releaseId: string, list: Omit<Measurement, 'at'>[], at = Date.now()): Promise<void> {
  if (list.length === 0) return;
  await db.query(
    `INSERT INTO release_measurements (release_id, at, step, metric, source, outcome, ivalues, message)
     SELECT $1, $2::timestamptz, m.step, m.metric, m.source, m.outcome, m.ivalues, m.message
     FROM jsonb_to_recordset($3::jsonb) AS m(step int, metric text, source text, outcome text, ivalues jsonb, message text)`,
    [releaseId, new Date(at).toISOString(), toJson(list.map((m) => ({ step: m.step, metric: m.metric, source: m.source, outcome: m.outcome, ivalues: m.values, message: m.message })))],
  );
}

export async function listMeasurements(db: Db, releaseId: string, limit = 200): Promise<Measurement[]> {
  const rows = await db.query<{ at: Date; step: number; metric: string; source: string; outcome: MeasurementOutcome; ivalues: Record<string, number | null>; message: string | null }>(
    'SELECT * FROM (SELECT at, step, metric, source, outcome, ivalues, message, id FROM release_measurements WHERE release_id = $1 ORDER BY id DESC LIMIT $2) m ORDER BY id',
    [releaseId, limit],
  );
  return rows.map((r) => ({ at: r.at, step: r.step, metric: r.metric, source: r.source, outcome: r.outcome, values: r.ivalues, message: r.message }));
}

/** Asks the controller to move on: past the current pause or approval step, or (full) to 100%. */
export async function requestPromote(db: Db, id: string, s: { actor: string; full: boolean; reason?: string }): Promise<boolean> {
  const rows = await db.query("UPDATE releases SET promote_requested = $2::jsonb WHERE id = $1 AND status IN ('waiting', 'progressing') RETURNING id", [id, toJson({ actor: s.actor, full: s.full, reason: s.reason, at: Date.now() })]);
  return rows.length > 0;
}

/** Asks the controller to stop the release and put traffic back on the stable release. */
export async function requestAbort(db: Db, id: string, s: { actor: string; reason: string; rollback: boolean }): Promise<boolean> {
  const rows = await db.query(
    "UPDATE releases SET abort_requested = coalesce(abort_requested, $2::jsonb) WHERE id = $1 AND status IN ('pending', 'waiting', 'progressing') RETURNING id",
    [id, toJson({ actor: s.actor, reason: s.reason, rollback: s.rollback, at: Date.now() })],
  );
  return rows.length > 0;
}

/** The controller took a promote request into account. */
export async function clearPromote(db: Db, id: string): Promise<void> {
  await db.query('UPDATE releases SET promote_requested = NULL WHERE id = $1', [id]);
}

export async function addApproval(db: Db, releaseId: string, a: { user: string; comment?: string; at?: number }): Promise<boolean> {
  const rows = await db.query('INSERT INTO release_approvals (release_id, user_name, at, comment) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING release_id', [
    releaseId,
    a.user,
    new Date(a.at ?? Date.now()).toISOString(),
    a.comment ?? null,
  ]);
  return rows.length > 0;
}

export async function listApprovals(db: Db, releaseId: string): Promise<{ user: string; at: Date; comment: string | null }[]> {
  const rows = await db.query<{ user_name: string; at: Date; comment: string | null }>('SELECT user_name, at, comment FROM release_approvals WHERE release_id = $1 ORDER BY at', [releaseId]);
  return rows.map((r) => ({ user: r.user_name, at: r.at, comment: r.comment }));
}

/**
 * Takes (or keeps) the releases this controller drives: active ones nobody owns, or whose owner
 * stopped renewing. Returns the ids now owned by `owner`.
 */
export async function claimReleases(db: Db, owner: string, leaseMs: number, at = Date.now()): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `UPDATE releases SET owner = $1, owner_expires_at = $2::timestamptz + make_interval(secs => $3::double precision / 1000)
     WHERE id IN (
       SELECT id FROM releases
       WHERE status IN ('pending', 'waiting', 'progressing')
         AND (owner IS NULL OR owner = $1 OR owner_expires_at < $2::timestamptz)
       ORDER BY created_at
       FOR UPDATE SKIP LOCKED)
     RETURNING id`,
    [owner, new Date(at).toISOString(), leaseMs],
  );
  return rows.map((r) => r.id);
}
