// What the read commands share: find the repository and Ferry's home, open the store, find a
// pipeline by number (or the latest).
import { ingestJournals } from '../store/journal.js';
import { openDb } from '../store/open.js';
import type { Db } from '../store/db.js';
import { getPipeline, latestPipeline, type PipelineDetail } from '../store/pipelines.js';
import { git, NotARepositoryError } from '../pipeline/git.js';
import { resolveHome } from '../pipeline/run-local.js';
import { CliError, EXIT } from './exit-codes.js';

export interface RepoStore {
  repoRoot: string;
  home: string;
  db: Db;
}

export async function repoRootOf(dir: string): Promise<string> {
  try {
    return (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
  } catch {
    throw new NotARepositoryError(dir);
  }
}

/** Opens the store of the repository around `dir`, runs `fn`, and always closes the store. */
export async function withRepoStore<T>(dir: string, fn: (s: RepoStore) => Promise<T>): Promise<T> {
  const repoRoot = await repoRootOf(dir);
  const home = await resolveHome(repoRoot);
  // Usually the holder is the short background ingest of the last run: say so only if it lasts.
  let notice: NodeJS.Timeout | undefined;
  const db = await openDb({
    home,
    url: process.env.DATABASE_URL,
    onLockWait: (pid) => {
      notice = setTimeout(() => process.stderr.write(`ferry: waiting for another ferry (pid ${pid}) to finish with the store…\n`), 2000);
    },
  }).finally(() => clearTimeout(notice));
  try {
    // Runs record through journals: take in whatever is not in the store yet.
    await ingestJournals(db, home);
    return await fn({ repoRoot, home, db });
  } finally {
    await db.close();
  }
}

/** `ref` is a pipeline number, or undefined for the latest pipeline of the repository. */
export async function findPipeline(s: RepoStore, ref: string | undefined): Promise<PipelineDetail> {
  let number: number;
  if (ref === undefined) {
    const latest = await latestPipeline(s.db, s.repoRoot);
    if (!latest) throw new CliError('no pipeline has run in this repository yet; start one with `ferry run`', EXIT.ENVIRONMENT);
    number = latest.number;
  } else {
    number = Number(ref.replace(/^#/, ''));
    if (!Number.isInteger(number) || number < 1) throw new CliError(`\`${ref}\` is not a pipeline number (see \`ferry history\`)`, EXIT.USAGE);
  }
  const p = await getPipeline(s.db, { project: s.repoRoot, number });
  if (!p) throw new CliError(`no pipeline #${number} in this repository (see \`ferry history\`)`, EXIT.ENVIRONMENT);
  return p;
}
