// Copies of small trees made in-process: a source snapshot's listing is read once, and each
// job's copy is made from it with parallel asynchronous calls (see createJobWorkspace), or an
// old workspace is reset to it in place (see resetListedTree and ./workspace-pool.ts).
import { constants as fsc, readdirSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Trees up to this many entries are copied (and reset) here; larger ones by one `cp -a`. */
export const IN_PROCESS_COPY_MAX_ENTRIES = 2000;

/**
 * A tree's entries, relative: folders by depth (parents first), files, files to hard-link (see
 * SHARED_GIT_FILES), and symlinks with their targets.
 */
export interface Listing {
  dirsByDepth: string[][];
  files: string[];
  shared: string[];
  links: [path: string, target: string][];
}

/**
 * Files of a workspace's .git that jobs get as hard links to the snapshot's rather than copies.
 * Git never writes these in place: it writes a new file beside (HEAD.lock, index.lock ...) and
 * renames it over, which breaks the link, so a job that commits, checks out or configures
 * changes its own .git only (a script that appends to one in place, `echo >> .git/config`,
 * would change it for the run's later jobs too; git itself never does). Each is a file the
 * job's copy does not make, nor its removal free: on file systems where making a file costs
 * more after many were freed (ext4 without a journal skips freshly freed inodes one by one),
 * that is most of what copying a small workspace costs.
 */
const SHARED_GIT_FILES = new Set(['.git/HEAD', '.git/config', '.git/index', '.git/packed-refs', '.git/shallow', '.git/objects/info/alternates']);

/** Listings of recent snapshots (a snapshot never changes once exported); a few suffice. */
const listings = new Map<string, Promise<Listing>>();
const LISTINGS_KEPT = 16;

export function listing(dir: string): Promise<Listing> {
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
  const out: Listing = { dirsByDepth: [], files: [], shared: [], links: [] };
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true });
    await Promise.all(
      entries.map(async (e) => {
        const path = rel ? join(rel, e.name) : e.name;
        if (e.isDirectory()) {
          (out.dirsByDepth[depth] ??= []).push(path);
          await walk(path, depth + 1);
        } else if (e.isSymbolicLink()) out.links.push([path, await readlink(join(root, path))]);
        else if (e.isFile() && SHARED_GIT_FILES.has(path)) out.shared.push(path);
        else out.files.push(path);
      }),
    );
  };
  await walk('', 0);
  return out;
}

/** Makes `to` a copy of the tree `from` listed in `l` (`to` must not exist). */
export async function copyListedTree(l: Listing, from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const level of l.dirsByDepth) await Promise.all(level.map((d) => mkdir(join(to, d))));
  await Promise.all([
    ...l.files.map((f) => copyFile(join(from, f), join(to, f), fsc.COPYFILE_FICLONE)),
    // Where hard links are refused (another file system, a link limit), a copy does the same.
    ...l.shared.map((f) => link(join(from, f), join(to, f)).catch(() => copyFile(join(from, f), join(to, f)))),
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


/**
 * Makes `to`, an earlier copy of some tree, a copy of the tree `from` listed in `l`, reusing its
 * folders and files: what the listing does not hold goes, what it holds is written over in
 * place (a file only when no other name links to it), what is missing is made. The result is
 * what copyListedTree would make, less the cost of making and freeing every file and folder
 * again. Folders it does not hold (a job's build output, its node_modules) are moved out of the
 * way, beside `to`, rather than removed file by file here: their paths are returned for the
 * caller to remove. Throws (leaving `to` in no particular state) when the folders it walks hold
 * more than `limit` entries or it cannot write; the caller then removes it and copies afresh.
 */
export async function resetListedTree(l: Listing, from: string, to: string, limit: number): Promise<string[]> {
  const dirs = new Set(l.dirsByDepth.flat());
  const files = new Set(l.files);
  const shared = new Set(l.shared);
  const presentDirs = new Set<string>();
  const presentFiles = new Set<string>();
  const extra: string[] = [];
  const extraDirs: string[] = [];
  let seen = 0;
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel ? join(to, rel) : to, { withFileTypes: true });
    seen += entries.length;
    if (seen > limit) throw new Error(`more than ${limit} entries: not worth resetting`);
    await Promise.all(
      entries.map(async (e) => {
        const path = rel ? join(rel, e.name) : e.name;
        if (e.isDirectory() && dirs.has(path)) {
          presentDirs.add(path);
          await walk(path);
        } else if (e.isFile() && (files.has(path) || shared.has(path))) presentFiles.add(path);
        else if (e.isDirectory()) extraDirs.push(path);
        // Anything else (the job's own files, symlinks, which are cheap to make again) goes.
        else extra.push(path);
      }),
    );
  };
  await walk('');
  const moved = extraDirs.map((_, i) => `${to}+trash-${i}`);
  await Promise.all([...extra.map((p) => unlink(join(to, p))), ...extraDirs.map((p, i) => rm(moved[i]!, { recursive: true, force: true }).then(() => rename(join(to, p), moved[i]!)))]);
  for (const level of l.dirsByDepth) await Promise.all(level.filter((d) => !presentDirs.has(d)).map((d) => mkdir(join(to, d))));
  const put = async (f: string, isShared: boolean): Promise<void> => {
    const src = join(from, f);
    const dst = join(to, f);
    if (presentFiles.has(f)) {
      // Written over only when nothing else links to it: through another name it would change
      // that file too (an older snapshot's, which other copies share).
      if ((await lstat(dst)).nlink === 1) return copyFile(src, dst);
      await unlink(dst);
    }
    if (isShared) await link(src, dst).catch(() => copyFile(src, dst));
    else await copyFile(src, dst, fsc.COPYFILE_FICLONE);
  };
  await Promise.all([
    ...l.files.map((f) => put(f, false)),
    ...l.shared.map((f) => put(f, true)),
    ...l.links.map(([path, target]) => symlink(target, join(to, path))),
  ]);
  return moved;
}
