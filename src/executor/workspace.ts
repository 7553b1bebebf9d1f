// Clean workspaces of a commit. The commit is checked out once per pipeline into a source
// snapshot (a shared clone, plus the working tree's changes for `--dirty`); each job then gets its
// own copy of that snapshot, copy-on-write where the file system supports it. So jobs never see
// each other's files, and a pipeline of many jobs exports the repository only once.
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { git, workingTreeChanges } from '../pipeline/git.js';
import { copyListedTree, IN_PROCESS_COPY_MAX_ENTRIES, listing, resetListedTree } from './tree-copy.js';
import { RESET_LIMIT, type WorkspacePool } from './workspace-pool.js';

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
  await mkdir(join(gitDir, 'refs'));
  await Promise.all([
    writeFile(join(gitDir, 'objects', 'info', 'alternates'), `${join(source, 'objects')}\n`),
    writeFile(join(gitDir, 'HEAD'), `${sha}\n`),
    writeFile(
      join(gitDir, 'config'),
      `[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n[remote "origin"]\n\turl = ${repoRoot}\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n`,
    ),
    // The branches and tags, as the source has them, in one packed-refs file rather than a
    // folder tree: every job's copy makes (and its removal frees) a few files fewer.
    packedRefsOf(source).then((text) => writeFile(join(gitDir, 'packed-refs'), text)),
  ]);
  await git(dir, ['read-tree', '-u', '--reset', sha]);
  return true;
}

/**
 * The source's branches and tags as one packed-refs text: its packed-refs (without the peeled
 * lines, which git works out again when asked) overlaid with its loose refs, which win, as git
 * reads them. A ref being written right now (its .lock) is left out; so are symbolic refs.
 */
async function packedRefsOf(gitDir: string): Promise<string> {
  const refs = new Map<string, string>();
  const packed = await readFile(join(gitDir, 'packed-refs'), 'utf8').catch(() => '');
  for (const line of packed.split('\n')) {
    const m = /^([0-9a-f]{40,64}) (refs\/\S+)$/.exec(line);
    if (m) refs.set(m[2]!, m[1]!);
  }
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(gitDir, rel), { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (e) => {
        const ref = `${rel}/${e.name}`;
        if (e.isDirectory()) return walk(ref);
        if (!e.isFile() || e.name.endsWith('.lock')) return;
        const sha = (await readFile(join(gitDir, ref), 'utf8').catch(() => '')).trim();
        if (/^[0-9a-f]{40,64}$/.test(sha)) refs.set(ref, sha);
      }),
    );
  };
  await Promise.all([walk('refs/heads'), walk('refs/tags')]);
  return [...refs]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([ref, sha]) => `${sha} ${ref}\n`)
    .join('');
}

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
  if (entries <= IN_PROCESS_COPY_MAX_ENTRIES) return copyListedTree(await listing(snapshotDir), snapshotDir, jobDir);
  await mkdir(dirname(jobDir), { recursive: true });
  await run('cp', [...CP_FLAGS, snapshotDir, jobDir]);
}

/**
 * Copies of a snapshot made ahead of the jobs that will take them. A job's copy is otherwise
 * made after it is ready to run and before its shell starts, a few milliseconds every job
 * waits; made while earlier jobs run, it is a rename when the job starts. At most `ahead`
 * copies wait at a time, and none are made once every job that may still start has one, so a
 * run wastes at most the copies of jobs that never started (skipped, manual). With a pool, a
 * copy is an earlier job's workspace reset to the snapshot where one is there to take.
 */
export class SpareWorkspaces {
  private readonly spares: { dir: string; made: Promise<boolean> }[] = [];
  private count = 0;
  private stopped = false;
  /** Folders to remove after the run: what resets moved aside, workspaces the pool did not take. */
  private readonly trash: string[] = [];
  private readonly releasing: Promise<unknown>[] = [];

  constructor(
    private readonly snapshotDir: string,
    private readonly entries: number,
    private readonly ahead: number,
    /** How many jobs may still start and want a copy. */
    private readonly wanted: () => number,
    private readonly pool?: WorkspacePool,
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
    await this.copy(jobDir);
  }

  /** Starts copies up to `ahead`, for the jobs still to come. */
  fill(): void {
    while (!this.stopped && this.spares.length < Math.min(this.ahead, this.wanted())) {
      // `+` never appears in a job's folder name (see slug), so a spare cannot meet a job's;
      // named after the snapshot, so it cannot meet another execution's either.
      const dir = `${this.snapshotDir}+spare-${this.count++}`;
      const made = this.copy(dir).then(
        () => true,
        () => false,
      );
      this.spares.push({ dir, made });
    }
  }

  /** Whether workspaces of this snapshot's size are worth pooling (small ones; see tree-copy.ts). */
  private get poolable(): boolean {
    return this.pool !== undefined && this.entries <= IN_PROCESS_COPY_MAX_ENTRIES;
  }

  /** A workspace nobody will read again (its job passed): to the pool, or removed after the run. */
  release(dir: string): void {
    if (!this.poolable) {
      this.trash.push(dir);
      return;
    }
    this.releasing.push(
      this.pool!.give(dir).then((taken) => {
        if (!taken) this.trash.push(dir);
      }),
    );
  }

  private async copy(dir: string): Promise<void> {
    if (this.poolable && (await this.pool!.take(dir))) {
      try {
        this.trash.push(...(await resetListedTree(await listing(this.snapshotDir), this.snapshotDir, dir, RESET_LIMIT)));
        return;
      } catch {
        // Too big to be worth it, or not writable: out of the way, and copied afresh below.
        const trash = `${dir}+trash`;
        await rename(dir, trash).then(
          () => removeInBackground([trash]),
          () => rm(dir, { recursive: true, force: true }),
        );
      }
    }
    await createJobWorkspace(this.snapshotDir, dir, this.entries);
  }

  /**
   * Stops making copies; releases those never taken (to the pool, else for removal) and
   * returns the folders to remove.
   */
  async stop(): Promise<string[]> {
    this.stopped = true;
    const left = this.spares.splice(0);
    await Promise.all(left.map((s) => s.made));
    for (const s of left) this.release(s.dir);
    await Promise.all(this.releasing.splice(0));
    return this.trash.splice(0);
  }
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
