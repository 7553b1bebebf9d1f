// What a pipeline needs to know about the commit it runs: read from the local repository with
// plain git commands (git is the one tool Ferry requires on every machine that runs jobs).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readObjects, runCommand } from '../process/run.js';


export async function git(cwd: string, args: string[]): Promise<string> {
  // runCommand: through the server's spawner when there is one (see src/process/run.ts).
  return (await runCommand('git', args, { cwd })).stdout.toString('utf8');
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

/** A commit and one file of it, read by one `git cat-file --batch`: what a server trigger needs. */
export interface CommitWithFile {
  sha: string;
  authorName: string;
  authorEmail: string;
  /** Committer date, ISO 8601 with the committer's offset (as `%cI`). */
  timestamp: string;
  message: string;
  /** The file's text; null when the commit has no such file. */
  file: string | null;
}

/** "Name <email> 1764645594 +0100" → its parts, the date as `%cI` prints it. */
function parseSignature(line: string): { name: string; email: string; iso: string } {
  const m = /^(.*) <([^>]*)> (\d+) ([+-])(\d\d)(\d\d)$/.exec(line);
  if (!m) return { name: line, email: '', iso: '' };
  const offsetMin = (m[4] === '-' ? -1 : 1) * (Number(m[5]) * 60 + Number(m[6]));
  const local = new Date((Number(m[3]) + offsetMin * 60) * 1000).toISOString().slice(0, 19);
  return { name: m[1]!, email: m[2]!, iso: `${local}${m[4]}${m[5]}:${m[6]}` };
}

/**
 * Reads commit `rev` and its file `path` with one cat-file question (on the server, to a git
 * process already running) instead of the four or five git processes commitInfo needs: a
 * push's pipeline starts sooner. Throws NotARepositoryError when `rev` is no
 * commit of `repo`.
 */
export async function readCommitWithFile(repo: string, rev: string, path: string): Promise<CommitWithFile> {
  const out = await readObjects(repo, [`${rev}^{commit}`, `${rev}^{commit}:${path}`]).catch(() => {
    throw new NotARepositoryError(repo);
  });
  // Each answer: "<sha> <type> <size>\n<size bytes>\n", or "<name> missing\n".
  const objects: { sha: string; type: string; body: Buffer }[] = [];
  let at = 0;
  while (at < out.length) {
    const nl = out.indexOf(10, at);
    const [sha, type, size] = out.subarray(at, nl).toString('utf8').split(' ');
    if (type === 'missing' || type === 'ambiguous' || size === undefined) {
      objects.push({ sha: sha!, type: type ?? 'missing', body: Buffer.alloc(0) });
      at = nl + 1;
      continue;
    }
    const start = nl + 1;
    objects.push({ sha: sha!, type: type!, body: out.subarray(start, start + Number(size)) });
    at = start + Number(size) + 1;
  }
  const [commit, file] = objects;
  if (!commit || commit.type !== 'commit') throw new NotARepositoryError(repo);
  const text = commit.body.toString('utf8');
  const split = text.indexOf('\n\n');
  const headers = (split < 0 ? text : text.slice(0, split)).split('\n');
  const header = (name: string) => headers.find((h) => h.startsWith(`${name} `))?.slice(name.length + 1) ?? '';
  const author = parseSignature(header('author'));
  const committer = parseSignature(header('committer'));
  return {
    sha: commit.sha,
    authorName: author.name,
    authorEmail: author.email,
    timestamp: committer.iso,
    message: split < 0 ? '' : text.slice(split + 2).trim(),
    file: file && file.type === 'blob' ? file.body.toString('utf8') : null,
  };
}

/** The default branch of a repository without running git: a bare one's HEAD, else origin's HEAD, else its own HEAD. */
export async function defaultBranchOf(repo: string): Promise<string> {
  const read = (p: string) => readFile(join(repo, p), 'utf8').then((t) => t.trim(), () => '');
  const ref = (await read('.git/refs/remotes/origin/HEAD')) || (await read('HEAD')) || (await read('.git/HEAD'));
  return /^ref: refs\/(?:remotes\/origin|heads)\/(.+)$/.exec(ref)?.[1] ?? 'main';
}
