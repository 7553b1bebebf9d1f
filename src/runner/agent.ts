// The runner: leases jobs from a Ferry server, runs each with the same job code as `ferry run`
// (src/executor/job.ts), streams its log, heart-beats, and reports the outcome. The server's
// own in-process runner and `ferry runner` on another machine are this same loop.
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { killJobLeftovers } from '../executor/leftovers.js';
import { DEFAULT_LOG_LIMIT, LogLimiter } from '../executor/log-limit.js';
import { join } from 'node:path';
import { runAttempt } from '../executor/job.js';
import { ShellExecutor } from '../executor/shell.js';
import type { Executor } from '../executor/types.js';
import { jobVariables } from '../pipeline/variables.js';
import { SecretMasker } from '../secrets/masker.js';
import type { JobLeaseWire, LogChunkWire, OutcomeWire } from './protocol.js';
import { LogSender } from './log-sender.js';
import { LeaseLostError, type RunnerTransport } from './transport.js';

/** How long one lease request may wait on the server for a job. */
const LEASE_WAIT_MS = 20_000;

export interface AgentOptions {
  transport: RunnerTransport;
  concurrency: number;
  /** Where job workspaces are made (each job's folder is removed when it ends). */
  workDir: string;
  executor?: Executor;
  version?: string;
  /** Jobs are taken when all their tags are among these. */
  tags?: string[];
  /** Where the runner tells what it does (stderr for `ferry runner`). */
  say?: (line: string) => void;
}

/**
 * Stops what jobs of a previous run of this runner left behind (it was killed or crashed) and
 * removes their folders. Call before start().
 */
export async function recoverAbandonedJobs(workDir: string): Promise<number> {
  let killed = 0;
  for (const name of await readdir(workDir).catch(() => [] as string[])) {
    const pidFile = await readFile(join(workDir, name, 'pid'), 'utf8').catch(() => '');
    const [pid, jobId] = pidFile.trim().split(' ');
    if (pid && jobId) killed += killJobLeftovers(Number(pid), jobId);
    await rm(join(workDir, name), { recursive: true, force: true });
  }
  return killed;
}

export class RunnerAgent {
  private stopped = false;
  private readonly leasing = new AbortController();
  private readonly running = new Map<string, AbortController>();
  private loops: Promise<void>[] = [];
  private readonly executor: Executor;

  constructor(private readonly opts: AgentOptions) {
    this.executor = opts.executor ?? new ShellExecutor();
  }

  start(): void {
    for (let i = 0; i < this.opts.concurrency; i++) this.loops.push(this.loop());
  }

  /** Stops taking jobs, cancels the running ones (reported as canceled), and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.leasing.abort();
    for (const ac of this.running.values()) ac.abort();
    await Promise.all(this.loops);
  }

  get busy(): number {
    return this.running.size;
  }

  private async loop(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      let lease: JobLeaseWire | null;
      try {
        lease = await this.opts.transport.lease(
          { waitMs: LEASE_WAIT_MS, tags: this.opts.tags, info: { hostname: hostname(), version: this.opts.version, concurrency: this.opts.concurrency, executor: this.executor.name } },
          this.leasing.signal,
        );
        backoff = 250;
      } catch (err) {
        if (this.stopped) return;
        this.opts.say?.(`ferry runner: cannot reach the server (${(err as Error).message}); retrying in ${backoff} ms`);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      }
      if (lease) await this.runLeased(lease);
    }
  }

  private async runLeased(lease: JobLeaseWire): Promise<void> {
    const { transport } = this.opts;
    const { job, jobId, attempt } = lease;
    const ac = new AbortController();
    this.running.set(jobId, ac);
    let lost = false;
    const dir = join(this.opts.workDir, `${jobId}-${attempt}`);
    const snapshotDir = join(dir, 'source');
    const workspaceDir = join(dir, 'workspace');

    // Log chunks are sent in numbered batches, recorded by the server in order (see ./log-sender.ts).
    const sender = new LogSender({
      send: (batch, number) => transport.logs(jobId, attempt, batch, number),
      isFatal: (err) => err instanceof LeaseLostError,
      onError: (err) => {
        if (err instanceof LeaseLostError) {
          lost = true;
          ac.abort();
        }
      },
    });
    const flush = () => sender.flush();
    // Secrets are masked before anything is buffered for sending: one streaming masker per
    // stream, so a value written in two pieces (or its base64, URL-encoded, multi-line forms)
    // is caught however the output was cut. The server masks again as it records.
    const secretValues = (lease.secretNames ?? []).map((n) => lease.variables[n]).filter((v): v is string => typeof v === 'string');
    const masker = secretValues.length ? new SecretMasker(secretValues) : null;
    const streamMaskers = new Map<LogChunkWire['stream'], SecretMasker>();
    const buffer = (stream: LogChunkWire['stream'], text: string, truncated = false) => sender.push({ stream, at: Date.now(), text, ...(truncated ? { truncated } : {}) });
    // The limit is applied to masked text (see src/executor/log-limit.ts); past it, output is
    // dropped here, before it costs masking or bandwidth. The job keeps running.
    const limiter = new LogLimiter(lease.logLimit ?? DEFAULT_LOG_LIMIT, buffer);
    const log = (stream: LogChunkWire['stream'], text: string) => {
      if (limiter.truncated || sender.cut) return;
      if (!masker) return limiter.write(stream, text);
      let m = streamMaskers.get(stream);
      if (!m) streamMaskers.set(stream, (m = masker.fork()));
      const masked = m.push(text);
      if (masked) limiter.write(stream, masked);
    };
    /** The end of the job's output: what the maskers held back while it might have been part of a secret. */
    const flushMaskers = () => {
      for (const [stream, m] of streamMaskers) {
        const rest = m.flush();
        if (rest && !sender.cut) limiter.write(stream, rest);
      }
    };

    const beat = setInterval(() => {
      transport.heartbeat(jobId, attempt).then(
        (answer) => {
          if (answer === 'cancel') ac.abort();
          if (answer === 'lost') {
            lost = true;
            ac.abort();
          }
        },
        () => undefined, // A missed beat is retried at the next tick; the lease outlasts a few.
      );
    }, lease.heartbeatMs);

    let outcome: OutcomeWire;
    try {
      await transport.source(jobId, attempt, snapshotDir, lease.source);
      const env: Record<string, string> = {};
      // Never the runner's token, nor the master key (the server's own runner inherits the
      // server's environment): a job, even one of a fork, could otherwise print it.
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FERRY_RUNNER_') && k !== 'FERRY_MASTER_KEY') env[k] = v;
      Object.assign(env, lease.variables, job.variables, jobVariables(job, workspaceDir));
      log('system', `Running on ${hostname()} with the ${this.executor.name} executor\n`);
      if (masker?.skipped) log('system', `${masker.skipped} of this job's secrets are too short to be masked in its log (under 4 characters)\n`);
      const r = await runAttempt({
        pipelineId: lease.pipelineId,
        job,
        attempt,
        // The source was unpacked for this attempt alone: it becomes the workspace by a rename
        // rather than a copy (half the files to make and remove per job).
        workspaces: { create: (to) => rename(snapshotDir, to) },
        workspaceDir,
        env,
        executor: this.executor,
        artifacts: transport.artifactStore(jobId, attempt),
        cache: transport.cacheStore(),
        signal: ac.signal,
        log,
        // Written beside the workspace, so that after a crash of this runner the next start
        // can stop what the job left running (see recoverAbandonedJobs).
        // Synchronous: the file must exist before anything could kill this runner mid-job.
        onProcess: (pid) => {
          try {
            writeFileSync(join(dir, 'pid'), `${pid} ${jobId}\n`);
          } catch {
            // No record: a crash now would leave this job's processes to the lease reaper only.
          }
        },
        report: (kind, file, report) => {
          const masked = masker ? deepMask(report, masker) : report;
          void flush().then(() => transport.report(jobId, attempt, { kind, file, report: masked }).catch(() => undefined));
        },
      });
      outcome = { status: r.status, exitCode: r.exitCode, reason: r.reason };
    } catch (err) {
      log('system', `ferry runner: ${(err as Error).message}\n`);
      outcome = { status: 'failed', exitCode: null, reason: 'runner_system_failure' };
    } finally {
      clearInterval(beat);
    }
    flushMaskers();
    await flush();
    if (!lost) {
      await transport.complete(jobId, attempt, outcome).catch((err) => {
        if (!(err instanceof LeaseLostError)) this.opts.say?.(`ferry runner: could not report ${job.name}: ${(err as Error).message}`);
      });
    }
    this.running.delete(jobId);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every string inside `value` (object keys too) masked at once: for test reports. */
export function deepMask<T>(value: T, masker: SecretMasker): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return masker.mask(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [masker.mask(k), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
