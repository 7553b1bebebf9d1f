// The run journal: how `ferry run` records into the embedded store without waiting for it.
//
// Opening PGlite costs about a second of CPU (WASM start-up and PostgreSQL recovery) and its
// memory makes every job spawn slower (fork copies page tables). So a local run appends its
// events to a journal file (NDJSON, flushed often, fsync'd at the end) and never opens the
// store; the journal is then ingested into the store by a short-lived background process that
// the run starts when it ends, or by the next command that reads the store, whichever comes
// first. A journal whose writer died without finishing is ingested too, its unfinished jobs
// and pipeline marked failed, so nothing a run did is ever lost.
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FINAL_JOB_STATUSES, type JobStatus, type RunEvent } from '../pipeline/events.js';
import type { Db } from './db.js';
import { acquireLock, pidAlive } from './lock.js';
import { killJobLeftovers } from '../executor/leftovers.js';

const FLUSH_MS = 100;

interface Header {
  type: 'journal.header';
  version: 1;
  pid: number;
  at: number;
}
interface End {
  type: 'journal.end';
  at: number;
}
/** A process group a job started: stopped by whoever ingests the journal of a crashed run. */
interface ProcessNote {
  type: 'journal.process';
  jobId: string;
  pid: number;
}
type Line = Header | End | ProcessNote | RunEvent;

export function journalDir(home: string): string {
  return join(home, 'journal');
}

/** Appends run events to a new journal file; cheap enough to call for every log chunk. */
export class JournalWriter {
  readonly path: string;
  private fd: number;
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(home: string) {
    const dir = journalDir(home);
    mkdirSync(dir, { recursive: true });
    // Time first, so ingestion in name order is creation order (a run before its `ferry play`).
    this.path = join(dir, `${Date.now().toString().padStart(15, '0')}-${process.pid}.ndjson`);
    this.fd = openSync(this.path, 'wx', 0o600);
    this.write({ type: 'journal.header', version: 1, pid: process.pid, at: Date.now() });
  }

  private write(line: Line): void {
    this.buffer.push(JSON.stringify(line));
    if (!this.timer) {
      this.timer = setTimeout(() => this.flushNow(), FLUSH_MS);
      this.timer.unref();
    }
  }

  push(event: RunEvent): void {
    if (this.closed) throw new Error('journal is closed');
    this.write(event);
  }

  /** Notes a job's process group, written at once so a crash right after cannot hide it. */
  noteProcess(jobId: string, pid: number): void {
    if (this.closed) return;
    this.write({ type: 'journal.process', jobId, pid });
    this.flushNow();
  }

  /** Writes what is buffered (synchronously: no event can slip between buffer and file). */
  flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    const text = this.buffer.join('\n') + '\n';
    this.buffer = [];
    writeSync(this.fd, text);
  }

  /** Marks the journal complete and makes it durable. */
  close(): void {
    if (this.closed) return;
    this.write({ type: 'journal.end', at: Date.now() });
    this.flushNow();
    this.closed = true;
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

interface ParsedJournal {
  header: Header | null;
  events: RunEvent[];
  processes: ProcessNote[];
  complete: boolean;
}

function parseJournal(text: string): ParsedJournal {
  const out: ParsedJournal = { header: null, events: [], processes: [], complete: false };
  for (const raw of text.split('\n')) {
    if (!raw) continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      // A torn last line from a crash: everything before it still counts.
      break;
    }
    if (line.type === 'journal.header') out.header = line;
    else if (line.type === 'journal.end') out.complete = true;
    else if (line.type === 'journal.process') out.processes.push(line);
    else out.events.push(line);
  }
  return out;
}

/**
 * Events that close what a dead writer left open: its running and waiting jobs are failed
 * (runner lost) and its pipelines failed, so the history says what happened.
 */
export function closeAbandoned(events: RunEvent[], at: number): RunEvent[] {
  const jobs = new Map<string, { pipelineId: string; status: JobStatus; attempt: number }>();
  const pipelines = new Map<string, boolean>();
  for (const e of events) {
    if (e.type === 'pipeline.started') {
      pipelines.set(e.pipelineId, false);
      for (const j of e.jobs) jobs.set(j.jobId, { pipelineId: e.pipelineId, status: 'created', attempt: 0 });
    } else if (e.type === 'job.state') {
      jobs.set(e.jobId, { pipelineId: e.pipelineId, status: e.status, attempt: e.attempt });
      if (!pipelines.has(e.pipelineId)) pipelines.set(e.pipelineId, false);
    } else if (e.type === 'pipeline.finished') {
      pipelines.set(e.pipelineId, true);
    }
  }
  const extra: RunEvent[] = [];
  for (const [jobId, j] of jobs) {
    if (FINAL_JOB_STATUSES.has(j.status) || j.status === 'manual' || pipelines.get(j.pipelineId)) continue;
    if (j.status === 'running' || j.status === 'pending') {
      extra.push({ type: 'job.log', at, pipelineId: j.pipelineId, jobId, attempt: j.attempt, stream: 'system', text: '\nferry: the run recording this job stopped (killed or crashed) before the job ended\n' });
      extra.push({ type: 'job.state', at, pipelineId: j.pipelineId, jobId, status: 'failed', attempt: j.attempt, reason: 'runner_system_failure' });
    } else {
      extra.push({ type: 'job.state', at, pipelineId: j.pipelineId, jobId, status: 'canceled', attempt: j.attempt, reason: 'canceled' });
    }
  }
  for (const [pipelineId, finished] of pipelines) {
    if (!finished) extra.push({ type: 'pipeline.finished', at, pipelineId, status: 'failed' });
  }
  return extra;
}

export interface IngestResult {
  files: number;
  events: number;
  /** Journals left for later: their writer is still running. */
  live: number;
}

/**
 * Records every finished (or abandoned) journal under `home` into the store, oldest first, each
 * in one transaction, deleting each journal only after its transaction committed. The caller
 * holds the store (its lock), so two ingesters never run at once.
 */
export async function ingestJournals(db: Db, home: string): Promise<IngestResult> {
  // The store's own lock covers PGlite; on PostgreSQL two commands of one home could otherwise
  // record the same journal twice.
  const lock = await acquireLock(join(home, 'journal.lock'), { timeoutMs: 120_000, pollMs: 20 });
  try {
    return await ingestUnlocked(db, home);
  } finally {
    await lock.release();
  }
}

async function ingestUnlocked(db: Db, home: string): Promise<IngestResult> {
  const dir = journalDir(home);
  const result: IngestResult = { files: 0, events: 0, live: 0 };
  // Loaded here, not at the top: `ferry run` imports this file for the writer alone, and the
  // recorder's store modules would add to the start-up of every run.
  const { RunRecorder } = await import('./recorder.js');
  const recorder = new RunRecorder(db);
  // New journals may appear while we work (another run ended): look again until none are left.
  const done = new Set<string>();
  for (;;) {
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.ndjson') && !done.has(n)).sort();
    if (names.length === 0) return result;
    for (const name of names) {
      done.add(name);
      const path = join(dir, name);
      const text = await readFile(path, 'utf8').catch(() => null);
      if (text === null) continue;
      const j = parseJournal(text);
      if (!j.complete) {
        if (j.header && pidAlive(j.header.pid) && j.header.pid !== process.pid) {
          result.live++;
          continue;
        }
        j.events.push(...closeAbandoned(j.events, Date.now()));
        // The run is gone but its jobs' processes may not be.
        for (const p of j.processes) killJobLeftovers(p.pid, p.jobId);
      }
      await recorder.apply(j.events);
      await unlink(path);
      result.files++;
      result.events += j.events.length;
    }
  }
}
