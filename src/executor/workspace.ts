// Clean workspaces of a commit. The commit is checked out once per pipeline into a source
// snapshot (a shared clone, plus the working tree's changes for `--dirty`); each job then gets its
// own copy of that snapshot, copy-on-write where the file system supports it. So jobs never see
// each other's files, and a pipeline of many jobs exports the repository only once.
import { spawn } from 'node:child_process';
import { constants as fsc, readdirSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readlink, rm, rmdir, stat, symlink } from 'node:fs/promises';
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
 * clone's .git of a few dozen files) are copied here, file by file, in parallel on Node's thread
 * pool: the snapshot's listing is read once per snapshot, and the job's folders and files are
 * made with asynchronous calls, so the event loop keeps starting and finishing other jobs
 * meanwhile (synchronous copies held it ~9 ms per job where file-system calls are slow). Large
 * trees go to one `cp -a` process (copy-on-write with --reflink where the file system can).
 */
export async function createJobWorkspace(snapshotDir: string, jobDir: string, entries = Infinity): Promise<void> {
  await rm(jobDir, { recursive: true, force: true });
  if (entries <= IN_PROCESS_COPY_MAX_ENTRIES) return copyTree(await listing(snapshotDir), snapshotDir, jobDir);
  await mkdir(dirname(jobDir), { recursive: true });
  await run('cp', [...CP_FLAGS, snapshotDir, jobDir]);
}

const IN_PROCESS_COPY_MAX_ENTRIES = 2000;

/** A tree's entries, relative: folders by depth (parents first), files, and symlinks with their targets. */
interface Listing {
  dirsByDepth: string[][];
  files: string[];
  links: [path: string, target: string][];
}

/** Listings of recent snapshots (a snapshot never changes once exported); a few suffice. */
const listings = new Map<string, Promise<Listing>>();
const LISTINGS_KEPT = 16;

function listing(dir: string): Promise<Listing> {
  let l = listings.get(dir);
  if (!l) {
    l = listTree(dir);
    listings.set(dir, l);
    l.catch(() => listings.delete(dir));
    if (listings.size > LISTINGS_KEPT) listings.delete(listings.keys().next().value!);
  }
  return l;
}

async function listTree(root: string): Promise<Listing> {
  const out: Listing = { dirsByDepth: [], files: [], links: [] };
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    await Promise.all(
      entries.map(async (e) => {
        const path = rel ? join(rel, e.name) : e.name;
        if (e.isDirectory()) {
          (out.dirsByDepth[depth] ??= []).push(path);
          await walk(path, depth + 1);
        } else if (e.isSymbolicLink()) out.links.push([path, await readlink(join(root, path))]);
        else out.files.push(path);
      }),
    );
  };
  await walk('', 0);
  return out;
}

async function copyTree(l: Listing, from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const level of l.dirsByDepth) await Promise.all(level.map((d) => mkdir(join(to, d))));
  await Promise.all([
    ...l.files.map((f) => copyFile(join(from, f), join(to, f), fsc.COPYFILE_FICLONE)),
    ...l.links.map(([path, target]) => symlink(target, join(to, path))),
  ]);
}

/** Files and folders below `dir`, counted up to `limit` (enough to choose how to copy it). */
export function countEntries(dir: string, limit = IN_PROCESS_COPY_MAX_ENTRIES + 1): number {
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
