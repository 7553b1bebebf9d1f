// The commit's files as a tar, made once per commit under FERRY_HOME/sources and kept while
// used: every job of a pipeline downloads the same files. Tars not used for a day are removed
// (pruneSources); a job of an old pipeline (a retry, a manual job) makes its tar again. The
// archive is started as soon as a pipeline is triggered (src/server/trigger.ts), so the first
// job's runner finds it made or being made instead of waiting for a `git archive` it asked
// for; both share one promise per file.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Project } from '../store/pipelines.js';
import { archiveCommit } from '../pipeline/archive.js';
import type { ServerContext } from './context.js';
import { projectRepo } from './trigger.js';

const making = new Map<string, Promise<string>>();

/** The path of the tar of `sha` of `project`, made if need be. */
export function sourceTar(ctx: ServerContext, project: Project, sha: string): Promise<string> {
  const file = join(ctx.home, 'sources', `${project.id}-${sha}.tar`);
  if (existsSync(file)) {
    // Its mtime says when it was last used (file systems mounted noatime keep no access time);
    // not awaited: every lease comes here. Removed meanwhile: the read fails, the runner asks again.
    const now = new Date();
    utimes(file, now, now).catch(() => undefined);
    return Promise.resolve(file);
  }
  let p = making.get(file);
  if (!p) {
    p = projectRepo(ctx, project)
      .then((repo) => archive(ctx.home, repo, sha, file))
      .then(() => file)
      .finally(() => making.delete(file));
    making.set(file, p);
  }
  return p;
}

/** `git archive` of `sha` into `file`; a failed archive is an error, never a cached empty file. */
async function archive(home: string, repo: string, sha: string, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await archiveCommit(home, repo, sha, tmp);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new Error(`git archive ${sha} in ${repo} failed: ${(err as Error).message}`);
  }
  await rename(tmp, file);
}

/** Sources up to this size travel inside the lease (base64) instead of in a request of their own. */
export const INLINE_SOURCE_MAX = 256 * 1024;
/** How long a lease waits for the archive to be made before leaving it to the download. */
const INLINE_WAIT_MS = 250;

/**
 * The tar of a small commit as base64, for the lease that hands out its job: the runner starts
 * the job without another round trip (most of what a push waits for between a runner taking a
 * job and the job running). Undefined for a large commit or when the tar cannot be made now:
 * the runner then downloads it (GET .../source), which says what went wrong.
 */
export async function inlineSource(ctx: ServerContext, project: Project, sha: string): Promise<string | undefined> {
  try {
    // The archive was started when the pipeline was recorded and is usually made by now; a
    // large one still being made is left to the download, which runs under the job's
    // heartbeat (the lease answer does not).
    const file = await Promise.race([sourceTar(ctx, project, sha), new Promise<null>((r) => setTimeout(r, INLINE_WAIT_MS, null).unref())]);
    if (!file || (await stat(file)).size > INLINE_SOURCE_MAX) return undefined;
    return (await readFile(file)).toString('base64');
  } catch {
    return undefined;
  }
}

/** Tars unused for this long are removed. */
export const SOURCE_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Removes the tars under FERRY_HOME/sources not used for `ttlMs` (and temporary files left by
 * an archive that was interrupted); returns how many. One being made right now is not there yet.
 */
export async function pruneSources(home: string, ttlMs = SOURCE_TTL_MS, now = Date.now()): Promise<number> {
  const dir = join(home, 'sources');
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = join(dir, name);
    const st = await stat(file).catch(() => null);
    if (!st || now - st.mtimeMs < ttlMs) continue;
    await rm(file, { force: true });
    removed++;
  }
  return removed;
}
