// The logs aggregate: a job attempt's output as chunks in order (stdout, stderr and Ferry's own
// `system` lines interleaved as they happened).
import { promisify } from 'node:util';
import { deflateRaw, inflateRawSync } from 'node:zlib';
import { iso, toJson, type Db } from './db.js';

const deflate = promisify(deflateRaw);

export type LogStream = 'stdout' | 'stderr' | 'system';

/** When later pieces of a coalesced chunk arrived: [offset in text, epoch ms]. */
export type LogMarks = [number, number][];

export interface LogChunk {
  seq: number;
  jobId: string;
  attempt: number;
  stream: LogStream;
  at: Date;
  text: string;
  marks: LogMarks | null;
}

export interface NewLogChunk {
  jobId: string;
  attempt: number;
  stream: LogStream;
  at: number;
  /** The row's text, in the pieces it arrived in (each clean: see cleanText). */
  pieces: string[];
  /** Their total length. */
  chars: number;
  marks?: LogMarks;
}

/** Rows per INSERT: 7 parameters each, well under PostgreSQL's 65,535. */
const ROWS_PER_INSERT = 1000;

/** Shorter text is stored as it is: compressing it would save little. */
const PACK_FROM_CHARS = 2048;

/**
 * Level 1 with a 4 KiB window and small hash tables: a fresh zlib stream per row costs far less
 * to set up (measured: a third of the CPU per 64 KiB row of the defaults) and log lines repeat
 * within a few lines anyway (the ratio came out the same). Output in one piece: with zlib's 16 KiB
 * default, each piece of output was one more trip between the thread pool and the event loop.
 */
const DEFLATE = { level: 1, windowBits: 12, memLevel: 4, chunkSize: 128 * 1024 } as const;

/**
 * A row's text compressed (raw deflate, base64), or null when it stays plain (migration 010).
 * zlib's asynchronous calls run in Node's thread pool: the event loop only hands the bytes over.
 */
async function pack(c: NewLogChunk): Promise<string | null> {
  if (c.chars < PACK_FROM_CHARS) return null;
  const bytes = c.pieces.length === 1 ? Buffer.from(c.pieces[0]!, 'utf8') : Buffer.concat(c.pieces.map((p) => Buffer.from(p, 'utf8')));
  return (await deflate(bytes, DEFLATE)).toString('base64');
}

function unpack(row: { text: string; packed: string | null }): string {
  return row.packed === null ? row.text : inflateRawSync(Buffer.from(row.packed, 'base64')).toString('utf8');
}

/** Each chunk's packed text, or null where it stays plain: for appendLogs, made before its transaction. */
export function packLogs(chunks: NewLogChunk[]): Promise<(string | null)[]> {
  return Promise.all(chunks.map(pack));
}

/**
 * Appends chunks in the given order (seq follows the order of the VALUES list), with their
 * packed text from packLogs. Each text is a parameter of its own: passing them inside one JSON
 * document cost the database a parse of every byte of log twice.
 */
export async function appendLogs(db: Db, chunks: NewLogChunk[], packed: (string | null)[]): Promise<void> {
  for (let from = 0; from < chunks.length; from += ROWS_PER_INSERT) {
    const rows = chunks.slice(from, from + ROWS_PER_INSERT);
    const params: unknown[] = [];
    const values = rows.map((c, i) => {
      const p = packed[from + i]!;
      const n = params.push(c.jobId, c.attempt, c.stream, iso(c.at), p === null ? c.pieces.join('') : '', p, c.marks ? toJson(c.marks) : null);
      return `($${n - 6}, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb)`;
    });
    await db.query(`INSERT INTO job_logs (job_id, attempt, stream, at, text, packed, marks) VALUES ${values.join(', ')}`, params);
  }
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
  let sql = 'SELECT seq, job_id, attempt, stream, at, text, packed, marks FROM job_logs WHERE job_id = $1 AND attempt = $2';
  if (q.streams) sql += ` AND stream = ANY($${params.push(q.streams)}::text[])`;
  if (q.afterSeq !== undefined) sql += ` AND seq > $${params.push(q.afterSeq)}`;
  sql += ' ORDER BY seq';
  const rows = await db.query<{ seq: number; job_id: string; attempt: number; stream: LogStream; at: Date; text: string; packed: string | null; marks: LogMarks | null }>(sql, params);
  return rows.map((r) => ({ seq: r.seq, jobId: r.job_id, attempt: r.attempt, stream: r.stream, at: r.at, text: unpack(r), marks: r.marks }));
}

export interface TimedLine {
  at: Date;
  stream: LogStream;
  text: string;
}

/**
 * The log as lines, each with the time its first character arrived (from the chunk's time and
 * its marks). A line split across chunks of different streams is cut where the stream changes.
 */
export function timedLines(chunks: LogChunk[]): TimedLine[] {
  const out: TimedLine[] = [];
  let open: TimedLine | null = null;
  for (const c of chunks) {
    const marks: LogMarks = [[0, c.at.getTime()], ...(c.marks ?? [])];
    let m = 0;
    let start = 0;
    while (start < c.text.length) {
      while (m + 1 < marks.length && marks[m + 1][0] <= start) m++;
      const nl = c.text.indexOf('\n', start);
      const end = nl === -1 ? c.text.length : nl;
      const piece = c.text.slice(start, end);
      if (open && open.stream === c.stream) open.text += piece;
      else {
        if (open) out.push(open);
        open = { at: new Date(marks[m][1]), stream: c.stream, text: piece };
      }
      if (nl === -1) break;
      out.push(open);
      open = null;
      start = nl + 1;
    }
  }
  if (open) out.push(open);
  return out;
}

/** The whole log text of a job's attempt (default the current one); null when the job has no
 * attempt and no output. */
export async function getJobLog(db: Db, jobId: string, q: Omit<LogQuery, 'afterSeq'> = {}): Promise<{ attempt: number; text: string } | null> {
  const attempt = await resolveAttempt(db, jobId, q.attempt);
  if (attempt === null) return null;
  const params: unknown[] = [jobId, attempt];
  let filter = '';
  if (q.streams) filter = ` AND stream = ANY($${params.push(q.streams)}::text[])`;
  const rows = await db.query<{ text: string; packed: string | null }>(`SELECT text, packed FROM job_logs WHERE job_id = $1 AND attempt = $2${filter} ORDER BY seq`, params);
  return { attempt, text: rows.map(unpack).join('') };
}
