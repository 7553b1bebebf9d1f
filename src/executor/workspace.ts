// Clean workspaces of a commit. The commit is checked out once per pipeline into a source
// snapshot (a shared clone, plus the working tree's changes for `--dirty`); each job then gets its
// own copy of that snapshot, copy-on-write where the file system supports it. So jobs never see
// each other's files, and a pipeline of many jobs exports the repository only once.
import { spawn } from 'node:child_process';
import { constants as fsc, copyFileSync, mkdirSync, readdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { cp, mkdir, rm, rmdir, stat } from 'node:fs/promises';
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
  // Every job copies this .git: drop what jobs never need (reflogs, remote-tracking refs, which
  // packed-refs still lists) and empty folders; git log/status/describe/commit work without them.
  await Promise.all([rm(join(dir, '.git', 'logs'), { recursive: true, force: true }), rm(join(dir, '.git', 'refs', 'remotes'), { recursive: true, force: true })]);
  await Promise.all([join(dir, '.git', 'objects', 'pack'), join(dir, '.git', 'refs', 'tags')].map((d) => rmdir(d).catch(() => undefined)));
  if (!opts.dirty) return;
  const { changed, deleted } = await workingTreeChanges(repoRoot);
  for (const path of changed) {
    if (path === FERRY_DIR || path.startsWith(`${FERRY_DIR}/`)) continue;
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await cp(join(repoRoot, path), join(dir, path), { force: true, verbatimSymlinks: true });
  }
  for (const path of deleted) await rm(join(dir, path), { force: true, recursive: true });
}

/**
 * A job's own copy of the pipeline's source snapshot. Small trees (most repositories, and the
 * clone's .git of a few dozen files) are copied right here with synchronous calls: ~1 ms, where
 * a `cp` process costs a spawn and fs.cp a promise per file. Large trees go to one `cp -a`
 * process (copy-on-write with --reflink where the file system can), off Ferry's event loop.
 */
export async function createJobWorkspace(snapshotDir: string, jobDir: string, entries = Infinity): Promise<void> {
  await rm(jobDir, { recursive: true, force: true });
  if (entries <= SYNC_COPY_MAX_ENTRIES) return copyTreeSync(snapshotDir, jobDir);
  await mkdir(dirname(jobDir), { recursive: true });
  await run('cp', [...CP_FLAGS, snapshotDir, jobDir]);
}

const SYNC_COPY_MAX_ENTRIES = 2000;

function copyTreeSync(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) copyTreeSync(src, dst);
    else if (e.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else copyFileSync(src, dst, fsc.COPYFILE_FICLONE);
  }
}

/** Files and folders below `dir`, counted up to `limit` (enough to choose how to copy it). */
export function countEntries(dir: string, limit = SYNC_COPY_MAX_ENTRIES + 1): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (++n >= limit) return;
      if (e.isDirectory()) walk(join(d, e.name));
      if (n >= limit) return;
    }
  };
  walk(dir);
  return n;
}

/** Removes folders in one `rm -rf` (fs.rm walks trees in JS, one call per file). */
export async function removeDirs(dirs: string[]): Promise<void> {
  if (dirs.length === 0) return;
  await run('rm', ['-rf', '--', ...dirs]);
}

const CP_FLAGS = process.platform === 'linux' ? ['-a', '--reflink=auto'] : ['-a'];

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed (exit ${code}): ${err.trim()}`))));
  });
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
