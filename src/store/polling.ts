// The store side of polling remotes (src/server/poller.ts): which remote projects are due, one
// replica claiming each poll, and the heads last seen, moved by compare-and-set so that a
// changed head makes one pipeline however many replicas saw it.
import type { Db } from './db.js';
import { REMOTE_PATH } from './pipelines.js';

/**
 * Claims the projects due for a poll (never polled, or not for `intervalMs`) that have no
 * webhook: moves their polled_at to now and returns them. A replica that finds them claimed
 * already gets nothing. Remote projects only (a URL, not a folder on this machine).
 */
export async function claimDuePolls(db: Db, intervalMs: number, limit = 20): Promise<{ id: number; firstPoll: boolean }[]> {
  const rows = await db.query<{ id: number; first_poll: boolean }>(
    `WITH due AS (
       SELECT id, polled_at IS NULL AS first_poll FROM projects
       WHERE webhook_secret IS NULL
         AND path ~* $3
         AND (polled_at IS NULL OR polled_at <= now() - make_interval(secs => $1::double precision / 1000))
       ORDER BY polled_at NULLS FIRST
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     )
     UPDATE projects p SET polled_at = now() FROM due WHERE p.id = due.id RETURNING p.id, due.first_poll`,
    [intervalMs, limit, REMOTE_PATH],
  );
  return rows.map((r) => ({ id: r.id, firstPoll: r.first_poll }));
}

/** The heads last seen of a project: ref -> sha. */
export async function seenRefs(db: Db, projectId: number): Promise<Map<string, string>> {
  const rows = await db.query<{ ref: string; sha: string }>('SELECT ref, sha FROM polled_refs WHERE project_id = $1', [projectId]);
  return new Map(rows.map((r) => [r.ref, r.sha]));
}

/**
 * Moves a head from `seen` (null: a new ref) to `sha`. False when another replica moved it
 * first (or made it, for a new ref). Call in the transaction that records the pipeline.
 */
export async function moveRef(db: Db, projectId: number, ref: string, seen: string | null, sha: string): Promise<boolean> {
  const rows =
    seen === null
      ? await db.query('INSERT INTO polled_refs (project_id, ref, sha) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING ref', [projectId, ref, sha])
      : await db.query('UPDATE polled_refs SET sha = $4 WHERE project_id = $1 AND ref = $2 AND sha = $3 RETURNING ref', [projectId, ref, seen, sha]);
  return rows.length > 0;
}

export async function forgetRefs(db: Db, projectId: number, refs: string[]): Promise<void> {
  if (refs.length) await db.query('DELETE FROM polled_refs WHERE project_id = $1 AND ref = ANY($2::text[])', [projectId, refs]);
}
