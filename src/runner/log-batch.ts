// The wire form of a batch of log chunks from a runner: one JSON line that describes the chunks,
// then their text as raw UTF-8, back to back.
//
//   {"attempt":1,"batch":7,"chunks":[{"stream":"stdout","at":1764680000000,"bytes":65536},...]}\n<bytes><bytes>...
//
// `batch` numbers the attempt's batches from 1: the server records them in that order, once each.
//
// Why not JSON: a JSON body of a megabyte becomes one JavaScript string of a megabyte on both
// sides, and V8 puts every string over 128 KiB in its large-object space, where making one costs
// ~40 times what the same text costs as 64 KiB strings (measured: 5.4 ms against 0.2 ms per MiB).
// A noisy job's log is the one place where that dominates. Here no big string is ever made: the
// runner encodes each chunk to bytes on its own, and the server decodes each one on its own,
// in pieces of at most PIECE_BYTES.
import type { LogChunkWire } from './protocol.js';

export const LOG_BATCH_TYPE = 'application/vnd.ferry.log-batch';

/** The logs route's body limit: a runner's largest batch (4 Mi code units, 3 bytes each at most) and room. */
export const LOG_BATCH_BODY_LIMIT = 16 * 1024 * 1024;

/** The most bytes one decoded string holds: under V8's 128 KiB large-object threshold even as two-byte text. */
export const PIECE_BYTES = 60 * 1024;

const STREAMS = new Set<LogChunkWire['stream']>(['stdout', 'stderr', 'system']);
const NEWLINE = 0x0a;

interface ChunkHeader {
  stream: LogChunkWire['stream'];
  at: number;
  bytes: number;
  truncated?: boolean;
}

export interface LogBatch {
  attempt: number;
  /** The batch's number (1, 2, ...) when the sender numbers them. */
  batch?: number;
  chunks: LogChunkWire[];
}

export function encodeLogBatch({ attempt, batch, chunks }: LogBatch): Buffer {
  const bodies = chunks.map((c) => Buffer.from(c.text, 'utf8'));
  const header: ChunkHeader[] = chunks.map((c, i) => ({ stream: c.stream, at: c.at, bytes: bodies[i]!.length, ...(c.truncated ? { truncated: true } : {}) }));
  return Buffer.concat([Buffer.from(`${JSON.stringify({ attempt, ...(batch === undefined ? {} : { batch }), chunks: header })}\n`), ...bodies]);
}

export class LogBatchError extends Error {
  readonly statusCode = 400;
  constructor(message: string) {
    super(`log batch (${LOG_BATCH_TYPE}): ${message}`);
  }
}

/**
 * The batch as chunks; a chunk longer than PIECE_BYTES comes out as several chunks of the same
 * stream and time, cut between characters. Throws LogBatchError when the batch is malformed.
 */
export function decodeLogBatch(body: Buffer): LogBatch {
  const eol = body.indexOf(NEWLINE);
  if (eol < 0) throw new LogBatchError('no header line');
  let header: unknown;
  try {
    header = JSON.parse(body.toString('utf8', 0, eol));
  } catch (err) {
    throw new LogBatchError(`the header line is not JSON: ${(err as Error).message}`);
  }
  const h = header as { attempt?: unknown; batch?: unknown; chunks?: unknown };
  const positive = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
  if (typeof h !== 'object' || h === null || !positive(h.attempt) || (h.batch !== undefined && !positive(h.batch)) || !Array.isArray(h.chunks)) {
    throw new LogBatchError('the header must be {"attempt": <integer ≥ 1>, "batch": <integer ≥ 1, optional>, "chunks": [...]}');
  }
  const chunks: LogChunkWire[] = [];
  let pos = eol + 1;
  h.chunks.forEach((raw: unknown, i: number) => {
    const c = raw as Partial<ChunkHeader>;
    if (typeof c !== 'object' || c === null || !STREAMS.has(c.stream!) || typeof c.at !== 'number' || !Number.isFinite(c.at) || !Number.isInteger(c.bytes) || c.bytes! < 0) {
      throw new LogBatchError(`chunk ${i}: needs stream (stdout, stderr or system), at (a number) and bytes (an integer ≥ 0)`);
    }
    const end = pos + c.bytes!;
    if (end > body.length) throw new LogBatchError(`chunk ${i} says ${c.bytes} bytes but the body ends ${body.length - pos} bytes on`);
    // A truncation marker's text is the runner's own cut line, short (the server writes its own).
    if (c.truncated === true) chunks.push({ stream: c.stream!, at: c.at, text: body.toString('utf8', pos, end), truncated: true });
    else for (const text of pieces(body, pos, end)) chunks.push({ stream: c.stream!, at: c.at, text });
    pos = end;
  });
  if (pos !== body.length) throw new LogBatchError(`${body.length - pos} bytes after the last chunk`);
  return { attempt: h.attempt as number, ...(h.batch === undefined ? {} : { batch: h.batch as number }), chunks };
}

/** The text of body[start, end) in strings of at most PIECE_BYTES, never cutting a UTF-8 sequence. */
function pieces(body: Buffer, start: number, end: number): string[] {
  if (end === start) return [''];
  const out: string[] = [];
  while (start < end) {
    let cut = Math.min(end, start + PIECE_BYTES);
    // Back off to the start of a character: continuation bytes are 10xxxxxx.
    if (cut < end) while (cut > start + 1 && (body[cut]! & 0xc0) === 0x80) cut--;
    out.push(body.toString('utf8', start, cut));
    start = cut;
  }
  return out;
}
