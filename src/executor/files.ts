// Copying the files a job names (artifacts, cache) in and out of workspaces.
import { constants as fsc } from 'node:fs';
import { cp, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';

/** A path a job names must stay inside its workspace. */
export function assertInside(pattern: string): void {
  const n = normalize(pattern);
  if (isAbsolute(pattern) || n === '..' || n.startsWith('../')) {
    throw new Error(`path \`${pattern}\` leaves the job's workspace; artifact and cache paths must be relative to it`);
  }
}

/** Resolves `paths` (folders, files or globs, GitLab style) inside `fromDir` to relative file paths. */
export async function matchFiles(fromDir: string, paths: string[], exclude: string[] = []): Promise<string[]> {
  const patterns: string[] = [];
  for (const p of paths) {
    assertInside(p);
    const clean = p.replace(/\/+$/, '');
    const s = await stat(join(fromDir, clean)).catch(() => null);
    patterns.push(s?.isDirectory() ? `${clean}/**` : clean);
  }
  if (patterns.length === 0) return [];
  // Loaded by the first job with paths to match (artifacts, reports, cache), not by every run.
  const { glob } = await import('tinyglobby');
  return glob(patterns, { cwd: fromDir, dot: true, onlyFiles: true, ignore: exclude, followSymbolicLinks: false, expandDirectories: false });
}

/** Copies the matched files from `fromDir` to `toDir`, keeping their relative paths. */
export async function copyFiles(fromDir: string, toDir: string, files: string[]): Promise<void> {
  const made = new Set<string>();
  for (const f of files) {
    const dest = join(toDir, f);
    const d = dirname(dest);
    if (!made.has(d)) {
      await mkdir(d, { recursive: true });
      made.add(d);
    }
    await cp(join(fromDir, f), dest, { mode: fsc.COPYFILE_FICLONE, verbatimSymlinks: true });
  }
}

/** Copies a whole folder's content into another (merging, newer files win). */
export async function copyTree(fromDir: string, toDir: string): Promise<void> {
  await cp(fromDir, toDir, { recursive: true, force: true, mode: fsc.COPYFILE_FICLONE, verbatimSymlinks: true });
}

/**
 * Fills `finalDir` through a temporary sibling and a rename, so a reader never sees a
 * half-written folder and a crash leaves at worst a stray temp folder.
 */
export async function writeDirAtomically(finalDir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const tmp = `${finalDir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    const old = `${finalDir}.old-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const had = await rename(finalDir, old).then(
      () => true,
      () => false,
    );
    await mkdir(dirname(finalDir), { recursive: true });
    await rename(tmp, finalDir);
    if (had) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
