// Clean workspaces of a commit. The commit is checked out once per pipeline into a source
// snapshot (a shared clone, plus the working tree's changes for `--dirty`); each job then gets its
// own copy of that snapshot, copy-on-write where the file system supports it. So jobs never see
// each other's files, and a pipeline of many jobs exports the repository only once.
import { constants as fsc } from 'node:fs';
import { cp, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { git, workingTreeChanges } from '../pipeline/git.js';

/** The folder Ferry keeps its own state in: never part of a workspace. */
export const FERRY_DIR = '.ferry';

/**
 * Checks out `sha` of the repository at `repoRoot` into `dir`: a shared clone (objects borrowed
 * from the repository through git's alternates, so it costs no copy of history), detached at
 * the commit, so jobs can still run `git describe` or `git log` like in a GitLab job.
 */
export async function exportCommit(repoRoot: string, sha: string, dir: string, opts: { dirty?: boolean } = {}): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  // --template= : no sample hooks, fewer files for every job to copy.
  await git(repoRoot, ['clone', '--quiet', '--shared', '--no-checkout', '--template=', repoRoot, dir]);
  await git(dir, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', sha]);
  if (!opts.dirty) return;
  const { changed, deleted } = await workingTreeChanges(repoRoot);
  for (const path of changed) {
    if (path === FERRY_DIR || path.startsWith(`${FERRY_DIR}/`)) continue;
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await cp(join(repoRoot, path), join(dir, path), { force: true, verbatimSymlinks: true });
  }
  for (const path of deleted) await rm(join(dir, path), { force: true, recursive: true });
}

/** A job's own copy of the pipeline's source snapshot. */
export async function createJobWorkspace(snapshotDir: string, jobDir: string): Promise<void> {
  await rm(jobDir, { recursive: true, force: true });
  await cp(snapshotDir, jobDir, { recursive: true, mode: fsc.COPYFILE_FICLONE, verbatimSymlinks: true });
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A name safe to use as a folder name, still recognisable: `test: [20, linux]` -> `test-20-linux`. */
export function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'job';
}
