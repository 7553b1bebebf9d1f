// What a pipeline needs to know about the commit it runs: read from the local repository with
// plain git commands (git is the one tool Ferry requires on every machine that runs jobs).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export interface CommitInfo {
  repoRoot: string;
  sha: string;
  branch: string | null;
  tag: string | null;
  message: string;
  authorName: string;
  authorEmail: string;
  timestamp: string;
  /** The branch HEAD of origin points at, or the current branch; GitLab's CI_DEFAULT_BRANCH. */
  defaultBranch: string;
}

export class NotARepositoryError extends Error {
  constructor(dir: string) {
    super(`${dir} is not inside a git repository with at least one commit. Run \`git init && git add -A && git commit -m init\` first, or pass --dir.`);
    this.name = 'NotARepositoryError';
  }
}

/** Reads everything about `rev` in three git calls, run in parallel. */
export async function commitInfo(dir: string, rev = 'HEAD'): Promise<CommitInfo> {
  let top: string;
  let log: string;
  try {
    [top, log] = await Promise.all([
      git(dir, ['rev-parse', '--show-toplevel']),
      git(dir, ['log', '-1', '--format=%H%x00%an%x00%ae%x00%cI%x00%B', rev, '--']),
    ]);
  } catch {
    throw new NotARepositoryError(dir);
  }
  const [branchOut, tagOut, originHead] = await Promise.all([
    rev === 'HEAD' ? git(dir, ['symbolic-ref', '-q', '--short', 'HEAD']).catch(() => '') : Promise.resolve(''),
    git(dir, ['tag', '--points-at', rev]).catch(() => ''),
    git(dir, ['symbolic-ref', '-q', '--short', 'refs/remotes/origin/HEAD']).catch(() => ''),
  ]);
  const [sha, authorName, authorEmail, timestamp, ...rest] = log.split('\0');
  const branch = branchOut.trim() || null;
  return {
    repoRoot: top.trim(),
    sha: sha.trim(),
    branch,
    tag: tagOut.split('\n')[0]?.trim() || null,
    message: rest.join('\0').trim(),
    authorName,
    authorEmail,
    timestamp,
    defaultBranch: originHead.trim().replace(/^origin\//, '') || branch || 'main',
  };
}

/** Paths changed in the working tree relative to HEAD: for `--dirty` runs. */
export async function workingTreeChanges(repoRoot: string): Promise<{ changed: string[]; deleted: string[] }> {
  const [changed, deleted] = await Promise.all([
    git(repoRoot, ['ls-files', '-z', '--modified', '--others', '--exclude-standard']),
    git(repoRoot, ['ls-files', '-z', '--deleted']),
  ]);
  const split = (s: string) => s.split('\0').filter(Boolean);
  const del = new Set(split(deleted));
  return { changed: split(changed).filter((p) => !del.has(p)), deleted: [...del] };
}
