// The pipeline file after loading: every default applied, `extends`, `default:` and YAML merge
// keys resolved, durations in milliseconds. The planner (src/pipeline/plan.ts) consumes this;
// nothing downstream ever looks at raw YAML again.

/** Where a value came from in ferry.yml, 1-based like editors show it. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export type When = 'on_success' | 'on_failure' | 'always' | 'manual' | 'never';

/** GitLab's retry reasons that Ferry can tell apart on a shell executor. */
export type RetryWhen =
  | 'always'
  | 'script_failure'
  | 'job_execution_timeout'
  | 'runner_system_failure'
  | 'unknown_failure';

export interface RetrySpec {
  /** Extra attempts after the first (0-2 like GitLab; Ferry allows up to 10). */
  max: number;
  when: RetryWhen[];
  /** Retry only when the script exits with one of these codes (empty = any). */
  exitCodes: number[];
}

export interface Rule {
  /** The `if:` expression, unparsed; src/config/expr.ts parses and evaluates it. */
  if?: string;
  when?: When;
  allowFailure?: boolean;
  variables?: Record<string, string>;
  pos: SourcePos;
}

export interface ArtifactsSpec {
  paths: string[];
  exclude: string[];
  /** undefined = keep forever. */
  expireInMs?: number;
  when: 'on_success' | 'on_failure' | 'always';
}

export interface CacheSpec {
  /** May contain $VARIABLES, expanded per job by the planner. */
  key: string;
  paths: string[];
  policy: 'pull-push' | 'pull' | 'push';
  when: 'on_success' | 'on_failure' | 'always';
}

export interface DeploySpec {
  environment: string;
}

export interface JobConfig {
  name: string;
  stage: string;
  script: string[];
  beforeScript: string[];
  afterScript: string[];
  /** null: the job named no `needs`, so it waits for every job of earlier stages. */
  needs: JobNeed[] | null;
  rules: Rule[] | null;
  when: When;
  /** true, false, or the exit codes that count as an allowed failure. */
  allowFailure: boolean | { exitCodes: number[] };
  retry: RetrySpec;
  timeoutMs?: number;
  variables: Record<string, string>;
  artifacts?: ArtifactsSpec;
  cache: CacheSpec[];
  /** `parallel: { matrix: [...] }`: each entry maps a variable to its values. */
  matrix?: Record<string, string[]>[];
  /** `parallel: N` (plain count). */
  parallel?: number;
  reports: { junit: string[] };
  deploy?: DeploySpec;
  tags: string[];
  /** A newer pipeline on the same branch may cancel this job. */
  interruptible?: boolean;
  /** Jobs of one resource group never run at the same time. */
  resourceGroup?: string;
  /** Regex source (as written, with slashes) that finds the coverage figure in the log. */
  coverage?: string;
  /** Jobs whose artifacts are downloaded; undefined = GitLab's default (needs, or earlier stages). */
  dependencies?: string[];
  pos: SourcePos;
}

export interface JobNeed {
  job: string;
  /** Download the needed job's artifacts (GitLab's `artifacts: true`, the default). */
  artifacts: boolean;
  optional: boolean;
  pos: SourcePos;
}

export interface PipelineConfig {
  file: string;
  stages: string[];
  variables: Record<string, string>;
  jobs: JobConfig[];
  /** `environments:`: parsed as data now; the delivery controller gives it meaning. */
  environments: Record<string, unknown>;
  /** `workflow: { rules }`: decides whether a pipeline is created at all. */
  workflowRules: Rule[] | null;
}

/** One problem found in a pipeline file, with where and how to fix it. */
export interface ConfigIssue {
  pos: SourcePos;
  message: string;
  hint?: string;
  /** Stable code so tests and tools can match: e.g. 'unknown-key', 'cycle', 'unknown-need'. */
  code: string;
}

export class ConfigError extends Error {
  constructor(public readonly issues: ConfigIssue[]) {
    super(issues.map((i) => `${i.pos.file}:${i.pos.line}:${i.pos.col}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}
