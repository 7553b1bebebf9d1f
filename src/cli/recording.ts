// Where a command run on this machine records its events: always a journal first (see
// src/store/journal.ts for why), ingested into the embedded store by a short background process
// after the run, or, with DATABASE_URL, into PostgreSQL right when the run ends (cheap there).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { selfCommand } from '../self-command.js';
import type { RunEvent } from '../pipeline/events.js';
import { ingestJournals, JournalWriter, journalDir } from '../store/journal.js';
import { takeLocalPipelineNumber } from '../store/numbers.js';

/** The store's modules (migrations, queries) load only with DATABASE_URL: a local run never opens it. */
const openDb: typeof import('../store/open.js').openDb = async (o) => (await import('../store/open.js')).openDb(o);

export interface Recording {
  /** The pipeline's number, taken before the run starts (for a new pipeline). */
  readonly number?: number;
  push(event: RunEvent): void;
  /** A job's process group, so that a crash of this process can be cleaned up after. */
  noteProcess(jobId: string, pid: number): void;
  /** Makes everything pushed durable (and, on PostgreSQL, recorded). */
  finish(): Promise<void>;
}

export async function startRecording(opts: { home: string; project?: string; newPipeline: boolean }): Promise<Recording> {
  const url = process.env.DATABASE_URL;
  const pending = existsSync(journalDir(opts.home)) && readdirSync(journalDir(opts.home)).length > 0;
  let number: number | undefined;
  if (url) {
    if (opts.newPipeline && opts.project) {
      const db = await openDb({ url });
      try {
        // A journal left by a crashed run is recorded (and its processes stopped) first.
        if (pending) await ingestJournals(db, opts.home);
        const { reservePipelineNumber } = await import('../store/pipelines.js');
        number = (await reservePipelineNumber(db, opts.project)).number;
      } finally {
        await db.close();
      }
    }
  } else {
    if (pending) startBackgroundIngest(opts.home);
    if (opts.newPipeline && opts.project) number = await takeLocalPipelineNumber(opts.home, opts.project);
  }
  const journal = new JournalWriter(opts.home);
  return {
    number,
    push: (e) => journal.push(e),
    noteProcess: (jobId, pid) => journal.noteProcess(jobId, pid),
    async finish() {
      journal.close();
      if (!url) return startBackgroundIngest(opts.home);
      const db = await openDb({ url });
      try {
        await ingestJournals(db, opts.home);
      } finally {
        await db.close();
      }
    },
  };
}

/**
 * Starts `ferry ingest` detached: it records the journal into the store and exits (in a second
 * or two), so the next `ferry history` finds everything in place. Nothing depends on it: any
 * command that reads the store ingests what is left first.
 */
export function startBackgroundIngest(home: string): void {
  if (process.env.FERRY_BACKGROUND_INGEST === '0') return;
  const self = selfCommand(['ingest', '--home', home]);
  const child = spawn(self.command, self.args, {
    detached: true,
    stdio: 'ignore',
  });
  child.on('error', () => undefined);
  // Background work: it must not slow down the next `ferry run` someone starts right away.
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, 15);
    } catch {
      // Not allowed here: it then runs at normal priority, which is only slower for others.
    }
  }
  child.unref();
}
