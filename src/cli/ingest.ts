// `ferry ingest`: records finished run journals into the store. Started in the background by
// `ferry run`; harmless to run by hand.
import type { Command } from 'commander';
import { ingestJournals } from '../store/journal.js';
import { openDb } from '../store/open.js';

export function registerIngest(program: Command): void {
  program
    .command('ingest', { hidden: true })
    .description('Record finished run journals into the store (ferry run starts this by itself).')
    .requiredOption('--home <dir>', "Ferry's home folder")
    .action(async (opts: { home: string }) => {
      const db = await openDb({ home: opts.home, url: process.env.DATABASE_URL, lockTimeoutMs: 120_000 });
      try {
        await ingestJournals(db, opts.home);
      } finally {
        await db.close();
      }
    });
}
