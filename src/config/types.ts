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
  /** `environments:` by name, normalized (see EnvironmentConfig); the delivery controller runs them. */
  environments: Record<string, EnvironmentConfig>;
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

// ---------------------------------------------------------------------------------------------
// Environments (`environments:`): where and how a deploy job's release goes. Durations are in
// milliseconds; every default is applied here so the delivery controller never guesses.

export interface EnvironmentConfig {
  name: string;
  target: TargetSpec;
  strategy: StrategySpec;
  health: HealthSpec;
  /** The environment's router (process target): the port users reach it on, sticky sessions. */
  router: RouterSpec;
  protection: ProtectionSpec;
  /** Variables given to the application's processes (after the pipeline's own). */
  variables: Record<string, string>;
  /** A release found under way by a restarted server: resumed at its step, or rolled back. */
  onRestart: 'resume' | 'rollback';
  pos: SourcePos;
}

export interface RouterSpec {
  /** Who routes users' requests: the edge's router (absent or 'edge', the default) or the team's
   * HAProxy, driven through its runtime API (the instances still run on the edge). */
  provider?: 'edge' | 'haproxy';
  /** Port of the environment's router on 127.0.0.1; undefined = the edge picks one and keeps it. */
  port?: number;
  /** Host to listen on (default 127.0.0.1); with HAProxy, where blue-green's preview listens. */
  host: string;
  /** Keep a client on the version it first got, through a cookie. */
  sticky: boolean;
  /** Edge: answer idempotent requests the canary failed from stable (default true). */
  retryCanaryErrors?: boolean;
  /** haproxy: its runtime API at level admin, a unix socket path or host:port of a TCP stats socket. */
  socket?: string;
  /** haproxy: the backend holding the `stable*` and `canary*` server slots Ferry drives. */
  backend?: string;
  /** haproxy: its Prometheus exporter (per-server figures); absent = `show stat` on the socket. */
  statsUrl?: string;
  /** haproxy: where users reach the environment (HAProxy's frontend), as Target.url() says it. */
  url?: string;
}

export type TargetSpec = ProcessTargetSpec | ScriptTargetSpec;

/** Instances of a command supervised by the edge; each gets PORT and the release's files as cwd. */
export interface ProcessTargetSpec {
  type: 'process';
  command: string;
  instances: number;
  /** Working directory inside the release's files (default: its root). */
  cwd?: string;
}

/** The user's own commands for each move (ECS, Terraform, Ansible, ...); FERRY_* variables say what to do. */
export interface ScriptTargetSpec {
  type: 'script';
  deploy: string[];
  /** Run with FERRY_CANARY_WEIGHT=0..100 for each weight step; absent = the target has no traffic split. */
  setWeight?: string[];
  promote?: string[];
  rollback?: string[];
  /** The longest each action's commands may run (default 10 minutes). */
  timeoutMs?: number;
}

export type StrategySpec = RollingSpec | BlueGreenSpec | CanarySpec;

export interface RollingSpec {
  type: 'rolling';
  /** Extra instances started above `instances` while replacing (default 1). */
  maxSurge: number;
  /** Instances that may be out of service while replacing (default 0). */
  maxUnavailable: number;
}

export interface BlueGreenSpec {
  type: 'blue-green';
  /** Port on which green answers before the switch (undefined = the edge picks one). */
  previewPort?: number;
  /** Checks against green's preview port before the switch. */
  smoke: WebCheckSpec[];
  /** How long blue stays running after the switch, for an instant rollback (default 5m). */
  keepWarmMs: number;
  /** Analysis after the switch, while blue is still warm. */
  analysis?: AnalysisSpec;
}

export interface CanarySpec {
  type: 'canary';
  steps: CanaryStep[];
  /** Analysis that runs in the background from the first weight step to the end, and the
   * defaults for `analysis` steps. */
  analysis?: AnalysisSpec;
}

export type CanaryStep =
  | { kind: 'weight'; weight: number; pos: SourcePos }
  /** durationMs undefined: wait until `ferry promote`. */
  | { kind: 'pause'; durationMs?: number; pos: SourcePos }
  | { kind: 'analysis'; durationMs: number; pos: SourcePos }
  | { kind: 'approval'; pos: SourcePos };

export interface AnalysisSpec {
  /** How often every metric is measured (default 1s). */
  intervalMs: number;
  /** Failed measurements allowed per metric; one more fails the release (default 1). */
  failureLimit: number;
  /** Inconclusive measurements allowed (too little traffic, source unreachable); one more fails it (default 5). */
  inconclusiveLimit: number;
  metrics: MetricSpec[];
}

export type MetricSpec = RouterMetricSpec | PrometheusMetricSpec | WebMetricSpec;

interface MetricBase {
  name: string;
  /** A comparison over the metric's values, like `error_rate < 0.01` or `p99_ms < stable_p99_ms * 1.5 + 20`;
   * parsed by src/config/condition.ts. */
  condition: string;
  pos: SourcePos;
}

/** Figures of the canary's (or new version's) traffic at the router over the last interval:
 * error_rate, p50_ms, p95_ms, p99_ms, request_rate, requests, and the same of stable as stable_*. */
export interface RouterMetricSpec extends MetricBase {
  source: 'router';
  /** Fewer requests than this in an interval make the measurement inconclusive (default 20). */
  minRequests: number;
}

/** A PromQL instant query; its single value is `result` in the condition. Query may use
 * $FERRY_ENVIRONMENT, $FERRY_VERSION, $FERRY_STABLE_VERSION, $FERRY_INTERVAL (like 5s). */
export interface PrometheusMetricSpec extends MetricBase {
  source: 'prometheus';
  query: string;
  /** Prometheus base URL (default http://127.0.0.1:9090). */
  address: string;
}

/** An HTTP request whose answer is checked; condition over `status`, `status_ok` (0/1: one of expectStatus, else 2xx),
 * `duration_ms`, and `body_matches` (0/1, only with expectBody). */
export interface WebMetricSpec extends MetricBase, WebCheckSpec {
  source: 'web';
}

export interface WebCheckSpec {
  /** A URL, or a path (starting with /) resolved against the new version's address. */
  url: string;
  method: string;
  expectStatus?: number[];
  /** A regular expression (re2) the body must match. */
  expectBody?: string;
  timeoutMs: number;
}

export interface HealthSpec {
  /** Readiness: an instance takes traffic only after this path answers 2xx. */
  readiness: ProbeSpec;
  /** Liveness: an instance is restarted after `failureThreshold` failed checks in a row; null = none. */
  liveness: ProbeSpec | null;
  /** An instance that is not ready by then fails the release (default 60s). */
  startTimeoutMs: number;
}

export interface ProbeSpec {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
}

export interface ProtectionSpec {
  /** Approvals needed from deployers other than the change's author (0 = none). */
  approvals: number;
  /** Branches (re2 patterns when written /like this/) allowed to deploy here; null = any. */
  branches: string[] | null;
  freeze: FreezeWindow[];
}

export interface FreezeWindow {
  /** Cron expression of when each window opens (croner syntax, 5 or 6 fields). */
  cron: string;
  durationMs: number;
  /** IANA time zone for the cron (default: the server's). */
  timezone?: string;
  pos: SourcePos;
}
