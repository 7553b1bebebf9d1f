// Real git repositories in temp folders, for tests that run pipelines.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface TempRepo {
  dir: string;
  write(path: string, content: string): void;
  commit(message?: string): string;
  git(...args: string[]): string;
}

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_AUTHOR_EMAIL: 'author@example.test',
  GIT_COMMITTER_NAME: 'Test Author',
  GIT_COMMITTER_EMAIL: 'author@example.test',
};

export function makeRepo(files: Record<string, string> = {}, opts: { branch?: string } = {}): TempRepo {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-repo-'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' });
  git('init', '--quiet', `--initial-branch=${opts.branch ?? 'main'}`);
  const repo: TempRepo = {
    dir,
    git,
    write(path, content) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    },
    commit(message = 'change') {
      git('add', '-A');
      git('commit', '--quiet', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD').trim();
    },
  };
  for (const [p, c] of Object.entries(files)) repo.write(p, c);
  if (Object.keys(files).length) repo.commit('initial');
  return repo;
}
