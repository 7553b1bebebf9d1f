// What kind of project a repository holds, from its files: the first language stack that
// matches is the primary one (its build, tests and start command), a Dockerfile is noted beside
// it, and git says the default branch (the one production deploys from).
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, join, resolve } from 'node:path';
import { git } from '../pipeline/git.js';
import { docker, dockerfile, imageJob } from './stacks/docker.js';
import { generic } from './stacks/generic.js';
import { go } from './stacks/go.js';
import { maven } from './stacks/maven.js';
import { node } from './stacks/node.js';
import { python } from './stacks/python.js';
import { rust } from './stacks/rust.js';
import type { JobPlan, RepoFiles, Stack, StackPlan } from './stacks/types.js';

/** In order of preference when several match (a Python service with a package.json for its tooling is rarer than the reverse). */
export const LANGUAGE_STACKS: Stack[] = [node, python, go, maven, rust];
/** Every name `--stack` takes. */
export const STACKS: Stack[] = [...LANGUAGE_STACKS, docker, generic];

export interface Detection {
  stack: Stack;
  plan: StackPlan;
  /** The files that decided it (empty for generic, or when --stack forced a stack without them). */
  evidence: string[];
  /** Other stacks whose files are there too, with their evidence. */
  others: { name: string; evidence: string[] }[];
  /** A Dockerfile beside a language stack: its name, and an extra, manual image build. */
  dockerfile?: string;
  imageJob?: JobPlan;
  defaultBranch: string;
  isGitRepository: boolean;
}

export function repoFiles(dir: string): RepoFiles {
  const root = resolve(dir);
  const read = (p: string) => {
    try {
      return readFileSync(join(root, p), 'utf8');
    } catch {
      return null;
    }
  };
  return {
    dirName: basename(root),
    has: (p) => {
      try {
        statSync(join(root, p));
        return true;
      } catch {
        return false;
      }
    },
    read,
    json: (p) => {
      try {
        return JSON.parse(read(p) ?? '');
      } catch {
        return null;
      }
    },
    list: (d) => {
      try {
        return readdirSync(join(root, d)).sort();
      } catch {
        return [];
      }
    },
    onPath: (name) =>
      (process.env.PATH ?? '').split(delimiter).some((d) => {
        try {
          accessSync(join(d, name), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  };
}

/**
 * The branch production deploys from: origin's HEAD, else the current branch when it is main
 * or master, else whichever of those exists, else the current branch (even one without a
 * commit yet), else main.
 */
async function defaultBranch(dir: string): Promise<{ branch: string; isGitRepository: boolean }> {
  const ref = (args: string[]) => git(dir, args).then((s) => s.trim(), () => '');
  if (!(await ref(['rev-parse', '--git-dir']))) return { branch: 'main', isGitRepository: false };
  const origin = await ref(['symbolic-ref', '--quiet', '--short', 'refs/remotes/origin/HEAD']);
  if (origin) return { branch: origin.replace(/^origin\//, ''), isGitRepository: true };
  const current = await ref(['symbolic-ref', '--quiet', '--short', 'HEAD']);
  if (current === 'main' || current === 'master') return { branch: current, isGitRepository: true };
  for (const b of ['main', 'master']) {
    if (await ref(['rev-parse', '--verify', '--quiet', `refs/heads/${b}`])) return { branch: b, isGitRepository: true };
  }
  return { branch: current || 'main', isGitRepository: true };
}

/** Detects the stack of `dir`, or takes `forced` (a name of STACKS, checked by the caller). */
export async function detect(dir: string, forced?: string): Promise<Detection> {
  const repo = repoFiles(dir);
  const matches = LANGUAGE_STACKS.map((s) => ({ stack: s, evidence: s.evidence(repo) })).filter((m) => m.evidence.length > 0);
  const file = dockerfile(repo);
  let chosen = matches[0] ?? (file ? { stack: docker, evidence: docker.evidence(repo) } : { stack: generic, evidence: [] });
  if (forced) {
    const stack = STACKS.find((s) => s.name === forced)!;
    chosen = { stack, evidence: stack.evidence(repo) };
  }
  const { branch, isGitRepository } = await defaultBranch(dir);
  const plan = chosen.stack.plan(repo);
  const extraImage = file && chosen.stack !== docker && chosen.stack !== generic ? file : undefined;
  return {
    stack: chosen.stack,
    plan,
    evidence: chosen.evidence,
    others: matches.filter((m) => m.stack !== chosen.stack).map((m) => ({ name: m.stack.name, evidence: m.evidence })),
    dockerfile: extraImage,
    imageJob: extraImage ? imageJob(extraImage, plan.name) : undefined,
    defaultBranch: branch,
    isGitRepository,
  };
}
