// Where a command run on this machine records its events. Embedded store: a journal, ingested
// after the run by a short background process (see src/store/journal.ts for why). PostgreSQL
// (DATABASE_URL): straight into the database from a worker thread.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RunEvent } from '../pipeline/events.js';
import { JournalWriter } from '../store/journal.js';
import { takeLocalPipelineNumber } from '../store/numbers.js';
import { startStoreWriter } from '../store/writer.js';

export interface Recording {
  /** The pipeline's number when known before the run (embedded store). */
  readonly number?: number;
  push(event: RunEvent): void;
  /** Makes everything pushed durable; resolves with the pipeline's number. */
  finish(): Promise<number | undefined>;
}

export async function startRecording(opts: { home: string; project?: string; newPipeline: boolean }): Promise<Recording> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const writer = startStoreWriter({ url });
    return {
      push: (e) => writer.push(e),
      async finish() {
        const { pipelineNumber } = await writer.flush();
        await writer.close();
        return pipelineNumber;
      },
    };
  }
  const number = opts.newPipeline && opts.project ? await takeLocalPipelineNumber(opts.home, opts.project) : undefined;
  const journal = new JournalWriter(opts.home);
  return {
    number,
    push: (e) => journal.push(e),
    async finish() {
      journal.close();
      startBackgroundIngest(opts.home);
      return number;
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
  const main = fileURLToPath(new URL(`./main.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, main, 'ingest', '--home', home], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, FERRY_HOME: home },
  });
  child.on('error', () => undefined);
  child.unref();
}
