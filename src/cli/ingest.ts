// `ferry ingest`: records finished run journals into the store. Started in the background by
// `ferry run`; harmless to run by hand.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ingestJournals, journalDir } from '../store/journal.js';
import { acquireLock } from '../store/lock.js';
import { openDb } from '../store/open.js';

function hasJournals(home: string): boolean {
  const dir = journalDir(home);
  return existsSync(dir) && readdirSync(dir).some((n) => n.endsWith('.ndjson'));
}

export function registerIngest(program: Command): void {
  program
    .command('ingest', { hidden: true })
    .description('Record finished run journals into the store (ferry run starts this by itself).')
    .requiredOption('--home <dir>', "Ferry's home folder")
    .action(async (opts: { home: string }) => {
      // Every `ferry run` starts one of these as it ends; an ingester records every journal it
      // finds, those that appear meanwhile included. So one that waited for the one before it
      // often finds nothing left: it looks before opening the store, which costs the embedded
      // one a second or two of CPU that several quick runs in a row would pay each time.
      if (!hasJournals(opts.home)) return;
      const turn = await acquireLock(join(opts.home, 'ingest.lock'), { timeoutMs: 120_000, pollMs: 50 });
      try {
        if (!hasJournals(opts.home)) return;
        const db = await openDb({ home: opts.home, url: process.env.DATABASE_URL, lockTimeoutMs: 120_000 });
        try {
          await ingestJournals(db, opts.home);
        } finally {
          await db.close();
        }
      } finally {
        await turn.release();
      }
    });
}
