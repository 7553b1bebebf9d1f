// Workspaces of passed jobs, kept to be reset for later jobs instead of removed. Removing a
// workspace and copying the next one frees and makes every file and folder again; reset in
// place, a workspace costs only what changed (GitLab's runner and gitlab-ci-local reuse their
// build folders the same way). Where making files is slow after many were freed (ext4 without
// a journal scans past each freshly freed inode), this was most of a small job's cost.
//
// The pool is a folder (`<home>/work/+recycled`) shared by the runs of one Ferry home: a
// workspace is given by renaming it in and taken by renaming it out, so two runs at once never
// take the same one. Only small trees are pooled (see IN_PROCESS_COPY_MAX_ENTRIES): a large
// one is copied by `cp -a` and removed as before.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { IN_PROCESS_COPY_MAX_ENTRIES } from './tree-copy.js';

/** The pool's folder in a work folder; `+` never starts a pipeline's folder there. */
export const POOL_DIR = '+recycled';

/** How many workspaces the pool keeps at most: enough for the jobs a run has going at once. */
const POOL_MAX = 32;

/**
 * How many entries a pooled workspace may hold to be reset rather than removed: a job that
 * left a tree of its own (an npm install) is cheaper to remove in the background and copy anew.
 */
export const RESET_LIMIT = 2 * IN_PROCESS_COPY_MAX_ENTRIES;

export class WorkspacePool {
  private readonly dir: string;
  private names: Promise<string[]> | null = null;
  private ready: Promise<unknown> | null = null;

  constructor(workRoot: string) {
    this.dir = join(workRoot, POOL_DIR);
  }

  private known(): Promise<string[]> {
    this.names ??= readdir(this.dir).catch(() => [] as string[]);
    return this.names;
  }

  /** Moves a pooled workspace to `to`; false when the pool has none (left). */
  async take(to: string): Promise<boolean> {
    const names = await this.known();
    for (let name = names.shift(); name !== undefined; name = names.shift()) {
      // Another run may have taken it since the pool was read: then try the next.
      if (await rename(join(this.dir, name), to).then(() => true, () => false)) return true;
    }
    return false;
  }

  /** Moves a workspace into the pool; false when the pool is full (the caller removes it). */
  async give(dir: string): Promise<boolean> {
    const names = await this.known();
    if (names.length >= POOL_MAX) return false;
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
    const name = randomBytes(6).toString('hex');
    if (!(await rename(dir, join(this.dir, name)).then(() => true, () => false))) return false;
    names.push(name);
    return true;
  }
}
