// The seam of `ferry init`: one small module per stack says whether a repository is of its kind
// and how such a project is built, tested and started. templates.ts turns that into ferry.yml;
// adding a stack never touches the others.

/** The files of the repository being set up, read on demand (a handful of small files). */
export interface RepoFiles {
  /** The repository's folder name: the project's name when no manifest gives one. */
  readonly dirName: string;
  has(path: string): boolean;
  /** A file's text, or null when it is missing or unreadable. */
  read(path: string): string | null;
  /** A JSON file's value, or null when it is missing or not JSON. */
  json(path: string): unknown;
  /** The names in a folder (empty when there is none). */
  list(dir: string): string[];
  /** Is `name` an executable on this machine's PATH? (tools the generated jobs may use). */
  onPath(name: string): boolean;
}

export interface JobPlan {
  /** Comment lines written above the job (without `#`). */
  comment: string[];
  script: string[];
  variables?: Record<string, string>;
  cache?: { key: string; paths: string[] };
  artifacts?: string[];
  /** A JUnit report the job writes (a file or a glob). */
  junit?: string;
}

export interface StackPlan {
  /** The project's name (package.json, go.mod, pom.xml, ...), for the header and image tags. */
  name: string;
  /** What people read: "Node.js (npm)". */
  title: string;
  build: JobPlan;
  test: JobPlan;
  /** More checks beside the tests (lint), run after build. */
  checks?: Record<string, JobPlan>;
  /** How the environments' process target starts one instance, listening on $PORT. */
  start: { command: string; comment: string[] };
  /** Things the person should check or do, printed by `ferry init` and not written to the file. */
  notes: string[];
}

export interface Stack {
  /** What `--stack` takes. */
  name: string;
  /** The files that show a repository is of this stack; empty when it is not. */
  evidence(repo: RepoFiles): string[];
  /** How to build, test and start it; works without the evidence too (`--stack` forces it). */
  plan(repo: RepoFiles): StackPlan;
}

/** A job that fails with a message: what a template writes where it cannot know the command. */
export function todoLine(what: string): string {
  return `echo "ferry.yml: ${what.replace(/\$/g, '\\$')}" >&2 && exit 1`;
}

/** Names usable as a container image name and in YAML without quoting. */
export function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/^@[^/]+\//, '')
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[-._]+|[-._]+$/g, '') || 'app'
  );
}
