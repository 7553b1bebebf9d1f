// A commit as a tar file, as committed: what server jobs download and releases are made from.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../process/run.js';

/**
 * A git folder of Ferry's own that reads `repo`'s objects (through alternates) and whose
 * info/attributes turns off export-ignore and export-subst for every path. `git archive` obeys
 * those attributes of the commit's .gitattributes: a project marking `tests/ export-ignore` (as
 * packages do, to keep tests out of release tarballs) would send its jobs a commit without its
 * tests, and `$Format:...$` placeholders filled in. Jobs and releases must get the commit as it is, like the
 * clone a local run makes; info/attributes is the one place that overrides the commit's own
 * attributes without touching the project's repository. Made once per repository.
 */
async function archiveGitDir(home: string, repo: string): Promise<string> {
  const dir = join(home, 'archive-git', createHash('sha256').update(repo).digest('hex').slice(0, 16));
  if (existsSync(join(dir, 'HEAD'))) return dir;
  const objects = (await runCommand('git', ['rev-parse', '--path-format=absolute', '--git-path', 'objects'], { cwd: repo })).stdout.toString('utf8').trim();
  await mkdir(join(dir, 'objects', 'info'), { recursive: true });
  await mkdir(join(dir, 'info'), { recursive: true });
  await mkdir(join(dir, 'refs'), { recursive: true });
  await writeFile(join(dir, 'objects', 'info', 'alternates'), `${objects}\n`);
  await writeFile(join(dir, 'info', 'attributes'), '* -export-ignore -export-subst\n');
  // Written last: its presence says the folder is complete.
  await writeFile(join(dir, 'HEAD'), 'ref: refs/heads/none\n');
  return dir;
}

/**
 * `git archive` of `sha` of `repo` into `file` (a tar), through the git folder above. Runs
 * through the server's spawner when there is one (src/process/run.ts).
 */
export async function archiveCommit(home: string, repo: string, sha: string, file: string): Promise<void> {
  const gitDir = await archiveGitDir(home, repo);
  await runCommand('git', [`--git-dir=${gitDir}`, 'archive', '--format=tar', `--output=${file}`, sha], { cwd: repo });
}
