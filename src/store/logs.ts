// The logs aggregate: a job attempt's output as chunks in order (stdout, stderr and Ferry's own
// `system` lines interleaved as they happened).
import { cleanText, iso, toJson, type Db } from './db.js';

export type LogStream = 'stdout' | 'stderr' | 'system';

export interface LogChunk {
  seq: number;
  jobId: string;
  attempt: number;
  stream: LogStream;
  at: Date;
  text: string;
}

export interface NewLogChunk {
  jobId: string;
  attempt: number;
  stream: LogStream;
  at: number;
  text: string;
}

/** Appends chunks in the given order, in one statement. */
export async function appendLogs(db: Db, chunks: NewLogChunk[]): Promise<void> {
  if (chunks.length === 0) return;
  await db.query(
    `INSERT INTO job_logs (job_id, attempt, stream, at, text)
     SELECT x.job_id, x.attempt, x.stream, x.at, x.text
     FROM jsonb_to_recordset($1::jsonb) AS x(i int, job_id text, attempt int, stream text, at timestamptz, text text)
     ORDER BY x.i`,
    [toJson(chunks.map((c, i) => ({ i, job_id: c.jobId, attempt: c.attempt, stream: c.stream, at: iso(c.at), text: cleanText(c.text) })))],
  );
}

export interface LogQuery {
  /** Default: the job's current attempt (or, when it has none, the newest attempt with output). */
  attempt?: number;
  /** Only these streams. Default all. */
  streams?: LogStream[];
  /** Only chunks after this seq (for following a live log). */
  afterSeq?: number;
}

async function resolveAttempt(db: Db, jobId: string, attempt: number | undefined): Promise<number | null> {
  if (attempt !== undefined) return attempt;
  const [row] = await db.query<{ attempt: number | null }>(
    `SELECT coalesce(
       (SELECT nullif(attempt, 0) FROM jobs WHERE id = $1),
       (SELECT max(attempt) FROM job_logs WHERE job_id = $1)) AS attempt`,
    [jobId],
  );
  return row?.attempt ?? null;
}

/** The chunks of one attempt, in order. */
export async function getLogChunks(db: Db, jobId: string, q: LogQuery = {}): Promise<LogChunk[]> {
  const attempt = await resolveAttempt(db, jobId, q.attempt);
  if (attempt === null) return [];
  const params: unknown[] = [jobId, attempt];
  let sql = 'SELECT seq, job_id, attempt, stream, at, text FROM job_logs WHERE job_id = $1 AND attempt = $2';
  if (q.streams) sql += ` AND stream = ANY($${params.push(q.streams)}::text[])`;
  if (q.afterSeq !== undefined) sql += ` AND seq > $${params.push(q.afterSeq)}`;
  sql += ' ORDER BY seq';
  const rows = await db.query<{ seq: number; job_id: string; attempt: number; stream: LogStream; at: Date; text: string }>(sql, params);
  return rows.map((r) => ({ seq: r.seq, jobId: r.job_id, attempt: r.attempt, stream: r.stream, at: r.at, text: r.text }));
}

/** The whole log text of a job's attempt (default the current one); null when the job has no
 * attempt and no output. */
export async function getJobLog(db: Db, jobId: string, q: Omit<LogQuery, 'afterSeq'> = {}): Promise<{ attempt: number; text: string } | null> {
  const attempt = await resolveAttempt(db, jobId, q.attempt);
  if (attempt === null) return null;
  const params: unknown[] = [jobId, attempt];
  let filter = '';
  if (q.streams) filter = ` AND stream = ANY($${params.push(q.streams)}::text[])`;
  const [row] = await db.query<{ text: string | null }>(
    `SELECT string_agg(text, '' ORDER BY seq) AS text FROM job_logs WHERE job_id = $1 AND attempt = $2${filter}`,
    params,
  );
  return { attempt, text: row?.text ?? '' };
}
