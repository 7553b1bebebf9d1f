// What a pipeline needs to know about the commit it runs: read from the local repository with
// plain git commands (git is the one tool Ferry requires on every machine that runs jobs).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

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

/**
 * Reads everything about `rev` in two git calls (every spawn counts: a local run pays for them
 * before its first job starts). The default branch comes from origin's HEAD file when there is
 * one, read directly.
 */
/**
 * @param alongside started as soon as the commit is resolved, in parallel with reading its log
 *   (each git call is a process start on the path a user waits on).
 */
export async function commitInfo(dir: string, rev = 'HEAD', alongside?: (top: string, sha: string) => Promise<unknown>): Promise<CommitInfo> {
  let top: string, symbolic: string, sha: string;
  try {
    [top, sha, symbolic] = (await git(dir, ['rev-parse', '--show-toplevel', `${rev}^{commit}`, '--abbrev-ref', rev])).split('\n');
  } catch {
    // A bare repository (what a server receives pushes in) has no work tree to show.
    try {
      [top, sha, symbolic] = (await git(dir, ['rev-parse', '--absolute-git-dir', `${rev}^{commit}`, '--abbrev-ref', rev])).split('\n');
      if ((await git(dir, ['rev-parse', '--is-bare-repository'])).trim() !== 'true') throw new Error('not bare');
    } catch {
      throw new NotARepositoryError(dir);
    }
  }
  top = top.trim();
  sha = sha.trim();
  // `alongside`: more reading of the same commit (its ferry.yml) while the log is read.
  const [log] = await Promise.all([git(dir, ['log', '-1', '--format=%an%x00%ae%x00%cI%x00%D%x00%B', sha, '--']), alongside?.(top, sha)]);
  const [authorName, authorEmail, timestamp, decorations, ...rest] = log.split('\0');
  // %D: "HEAD -> main, tag: v1.2, origin/main": tags pointing at the commit, without another call.
  const tags = decorations
    .split(', ')
    .filter((d) => d.startsWith('tag: '))
    .map((d) => d.slice(5))
    .sort();
  const branch = rev === 'HEAD' && symbolic.trim() !== 'HEAD' ? symbolic.trim() : null;
  const originHead = await readFile(join(top, '.git', 'refs', 'remotes', 'origin', 'HEAD'), 'utf8').catch(() => '');
  return {
    repoRoot: top,
    sha,
    branch,
    // Like GitLab, a branch pipeline is not a tag pipeline even when the commit is tagged:
    // `ferry run --rev v1.2` runs the tag's pipeline.
    tag: branch ? null : (tags.find((t) => t === rev) ?? tags[0] ?? null),
    message: rest.join('\0').trim(),
    authorName,
    authorEmail,
    timestamp,
    defaultBranch: originHead.trim().replace(/^ref: refs\/remotes\/origin\//, '') || branch || 'main',
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
