// The commit's files as a tar, made once per commit under FERRY_HOME/sources and kept: every job
// of a pipeline downloads the same files. The archive is started as soon as a pipeline is
// recorded (src/server/trigger.ts), so the first job's runner finds it made or being made
// instead of waiting for a `git archive` it asked for; both share one promise per file.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Project } from '../store/pipelines.js';
import type { ServerContext } from './context.js';
import { projectRepo } from './trigger.js';

const making = new Map<string, Promise<string>>();

/** The path of the tar of `sha` of `project`, made if need be. */
export function sourceTar(ctx: ServerContext, project: Project, sha: string): Promise<string> {
  const file = join(ctx.home, 'sources', `${project.id}-${sha}.tar`);
  if (existsSync(file)) return Promise.resolve(file);
  let p = making.get(file);
  if (!p) {
    p = projectRepo(ctx, project)
      .then((repo) => archive(repo, sha, file))
      .then(() => file)
      .finally(() => making.delete(file));
    making.set(file, p);
  }
  return p;
}

/** `git archive` of `sha` into `file`; a failed archive is an error, never a cached empty file. */
async function archive(repo: string, sha: string, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const child = spawn('git', ['archive', '--format=tar', `--output=${tmp}`, sha], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', resolve);
  });
  if (code !== 0) {
    await rm(tmp, { force: true });
    throw new Error(`git archive ${sha} in ${repo} failed (${code}): ${err.trim()}`);
  }
  await rename(tmp, file);
}
