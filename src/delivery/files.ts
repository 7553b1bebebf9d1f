// A release's files on the server's host: the commit's tree (as committed: pipeline/archive.ts) with the artifacts of
// the jobs the deploy job needs unpacked over it, under FERRY_HOME/releases/<id>/files. Made
// once per release and kept while the release may be rolled back to.
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { archiveCommit } from '../pipeline/archive.js';
import { runCommand } from '../process/run.js';

export function releaseDir(home: string, releaseId: string): string {
  return join(home, 'releases', releaseId);
}

/** Builds the release's files; returns their folder. Safe to call again after a crash. */
export async function prepareReleaseFiles(p: { home: string; releaseId: string; repo: string; sha: string; artifactTars: string[] }): Promise<string> {
  const dir = join(releaseDir(p.home, p.releaseId), 'files');
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const tar = join(releaseDir(p.home, p.releaseId), 'source.tar');
  // Through the server's spawner (src/process/run.ts): the server's own spawns are costly.
  await archiveCommit(p.home, p.repo, p.sha, tar);
  await runCommand('tar', ['-xf', tar, '-C', tmp]);
  await rm(tar, { force: true });
  for (const a of p.artifactTars) if (existsSync(a)) await runCommand('tar', ['-xf', a, '-C', tmp]);
  await rename(tmp, dir);
  return dir;
}
