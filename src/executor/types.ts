// The executor seam: everything that decides *where* a job's commands run (a shell on this
// machine today; a container or a Kubernetes pod later) sits behind this interface. Preparing
// the workspace (source, artifacts, cache) and collecting results is shared, in job.ts.

export interface ScriptRun {
  /** The job's working directory, already holding the commit, artifacts and cache. */
  cwd: string;
  /** Shell lines run in order in one shell; the first failing line fails the run. */
  lines: string[];
  /** The complete environment of the job's processes. */
  env: Record<string, string>;
  timeoutMs?: number;
  /** Aborted on cancel: the executor must stop every process of the job within a second. */
  signal: AbortSignal;
  onOutput(stream: 'stdout' | 'stderr', text: string): void;
  /** The id of the process (group) running the lines, once started: for crash recovery. */
  onStart?(pid: number): void;
}

export interface ScriptResult {
  exitCode: number | null;
  timedOut: boolean;
  canceled: boolean;
  /** Set when the executor itself failed (could not start the shell, ...): a system failure. */
  systemError?: string;
}

export interface Executor {
  readonly name: string;
  runScript(run: ScriptRun): Promise<ScriptResult>;
}

/** Where job artifacts live between jobs. Local: a folder; remote runners: the server. */
export interface ArtifactStore {
  /** Copies the files matching `paths` (globs or folders) out of `fromDir`; returns files saved. */
  save(key: ArtifactKey, fromDir: string, paths: string[], exclude: string[], expireInMs?: number): Promise<number>;
  /** Unpacks a job's artifacts into `intoDir`; false when that job kept none (or they expired). */
  restore(key: ArtifactKey, intoDir: string): Promise<boolean>;
}

export interface ArtifactKey {
  pipelineId: string;
  jobId: string;
}

export interface CacheStore {
  restore(key: string, intoDir: string): Promise<boolean>;
  save(key: string, fromDir: string, paths: string[]): Promise<number>;
}
