// Clean workspaces of a commit. The commit is checked out once per pipeline into a source
// snapshot (a shared clone, plus the working tree's changes for `--dirty`); each job then gets its
// own copy of that snapshot, copy-on-write where the file system supports it. So jobs never see
// each other's files, and a pipeline of many jobs exports the repository only once.
import { spawn } from 'node:child_process';
import { constants as fsc, readdirSync } from 'node:fs';
import { copyFile, cp, mkdir, readdir, readFile, readlink, rename, rm, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { git, workingTreeChanges } from '../pipeline/git.js';

/** The folder Ferry keeps its own state in: never part of a workspace. */
export const FERRY_DIR = '.ferry';

/**
 * Checks out `sha` of the repository at `repoRoot` into `dir`: a repository sharing the
 * source's objects through git's alternates (so it costs no copy of history), with its
 * branches and tags, detached at the commit, so jobs can still run `git describe` or `git log`
 * like in a GitLab job.
 */
export async function exportCommit(repoRoot: string, sha: string, dir: string, opts: { dirty?: boolean } = {}): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  if (!(await shareRepository(repoRoot, sha, dir))) await cloneShared(repoRoot, sha, dir);
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
 * What `git clone --shared` makes, written directly, then one `git read-tree` to check out the
 * commit: a clone costs three processes (git, a shell, git-upload-pack to list the refs) and
 * a checkout a fourth, about 45 ms before the first job can start, more on a busy machine.
 * Only for a plain repository (a .git folder, no repository format extensions such as sha256
 * objects, reftable or partial clones); false leaves `dir` to the clone.
 */
async function shareRepository(repoRoot: string, sha: string, dir: string): Promise<boolean> {
  const source = join(repoRoot, '.git');
  const config = await readFile(join(source, 'config'), 'utf8').catch(() => null);
  if (config === null || /^\s*\[extensions\]/im.test(config) || !(await stat(join(source, 'objects')).then((s) => s.isDirectory(), () => false))) return false;
  const gitDir = join(dir, '.git');
  await mkdir(join(gitDir, 'objects', 'info'), { recursive: true });
  await Promise.all([
    writeFile(join(gitDir, 'objects', 'info', 'alternates'), `${join(source, 'objects')}\n`),
    writeFile(join(gitDir, 'HEAD'), `${sha}\n`),
    writeFile(
      join(gitDir, 'config'),
      `[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n[remote "origin"]\n\turl = ${repoRoot}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n`,
    ),
    // The branches and tags, as the source has them (loose files and packed-refs).
    copyFile(join(source, 'packed-refs'), join(gitDir, 'packed-refs')).catch(() => undefined),
    cp(join(source, 'refs', 'heads'), join(gitDir, 'refs', 'heads'), { recursive: true, filter: notLock }).catch(() => mkdir(join(gitDir, 'refs', 'heads'), { recursive: true })),
    cp(join(source, 'refs', 'tags'), join(gitDir, 'refs', 'tags'), { recursive: true, filter: notLock }).catch(() => undefined),
  ]);
  await git(dir, ['read-tree', '-u', '--reset', sha]);
  return true;
}

/** A ref being written right now (its .lock) is not copied: it would block that ref in the copy. */
const notLock = (path: string) => !path.endsWith('.lock');

async function cloneShared(repoRoot: string, sha: string, dir: string): Promise<void> {
  // --template= : no sample hooks, fewer files for every job to copy.
  await git(repoRoot, ['clone', '--quiet', '--shared', '--no-checkout', '--template=', repoRoot, dir]);
  await git(dir, ['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', sha]);
  // Every job copies this .git: drop what jobs never need (reflogs, remote-tracking refs, which
  // packed-refs still lists) and empty folders; git log/status/describe/commit work without them.
  await Promise.all([rm(join(dir, '.git', 'logs'), { recursive: true, force: true }), rm(join(dir, '.git', 'refs', 'remotes'), { recursive: true, force: true })]);
  await Promise.all([join(dir, '.git', 'objects', 'pack'), join(dir, '.git', 'refs', 'tags')].map((d) => rmdir(d).catch(() => undefined)));
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

/**
 * Copies of a snapshot made ahead of the jobs that will take them. A job's copy is otherwise
 * made after it is ready to run and before its shell starts, a few milliseconds every job
 * waits; made while earlier jobs run, it is a rename when the job starts. At most `ahead`
 * copies wait at a time, and none are made once every job that may still start has one, so a
 * run wastes at most the copies of jobs that never started (skipped, manual).
 */
export class SpareWorkspaces {
  private readonly spares: { dir: string; made: Promise<boolean> }[] = [];
  private count = 0;
  private stopped = false;

  constructor(
    private readonly snapshotDir: string,
    private readonly entries: number,
    private readonly ahead: number,
    /** How many jobs may still start and want a copy. */
    private readonly wanted: () => number,
  ) {}

  /** Gives `jobDir` a fresh copy of the snapshot: a spare when one is ready, else a new copy. */
  async create(jobDir: string): Promise<void> {
    const spare = this.spares.shift();
    const ok = spare ? await spare.made : false;
    await rm(jobDir, { recursive: true, force: true });
    this.fill();
    if (spare && ok) {
      try {
        return await rename(spare.dir, jobDir);
      } catch {
        // Not movable: copy afresh below.
      }
    }
    if (spare) await rm(spare.dir, { recursive: true, force: true }).catch(() => undefined);
    await createJobWorkspace(this.snapshotDir, jobDir, this.entries);
  }

  /** Starts copies up to `ahead`, for the jobs still to come. */
  fill(): void {
    while (!this.stopped && this.spares.length < Math.min(this.ahead, this.wanted())) {
      // `+` never appears in a job's folder name (see slug), so a spare cannot meet a job's;
      // named after the snapshot, so it cannot meet another execution's either.
      const dir = `${this.snapshotDir}+spare-${this.count++}`;
      const made = createJobWorkspace(this.snapshotDir, dir, this.entries).then(
        () => true,
        () => false,
      );
      this.spares.push({ dir, made });
    }
  }

  /** Stops making copies; returns the folders of those never taken, for removal. */
  async stop(): Promise<string[]> {
    this.stopped = true;
    const left = this.spares.splice(0);
    await Promise.all(left.map((s) => s.made));
    return left.map((s) => s.dir);
  }
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

/**
 * Removes folders with an `rm -rf` that is not waited for (nor kept alive: it is detached and
 * ends on its own in moments). For what nobody will read again, such as passed jobs' workspaces.
 */
export function removeInBackground(dirs: string[]): void {
  if (dirs.length === 0) return;
  const child = spawn('rm', ['-rf', '--', ...dirs], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
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
