// Which secrets a leased job gets, and the server's second line of masking for what it writes.
//
// A job gets its project's secrets only when its pipeline is trusted (FERRY_PIPELINE_TRUSTED,
// set by the trigger and not overridable by trigger variables): pipelines of forks and untrusted
// merge requests run with none. The values travel in the lease only; the pipeline's recorded
// variables never hold them.
//
// The runner masks every chunk before sending it (src/runner/agent.ts). The server masks again
// as it records, with one streaming SecretMasker per stream of each running attempt, so that a
// runner that does not mask (an old or a modified one) still cannot put a secret in the store,
// including one split across two requests. The maskers live in this replica's memory: a replica
// that did not hand out the lease (or restarted since) rebuilds them from the store at the first
// chunk it receives.
import type { PlannedJob } from '../pipeline/plan.js';
import { deepMask } from '../runner/agent.js';
import type { LogChunkWire } from '../runner/protocol.js';
import { SecretMasker } from '../secrets/masker.js';
import { jobSecrets } from '../store/secrets.js';
import type { ServerContext } from './context.js';

/** The secrets for a job of this pipeline; throws SecretError when one cannot be decrypted. */
export async function secretsForJob(
  ctx: ServerContext,
  pipeline: { projectId: number; variables: Record<string, string> },
  job: Pick<PlannedJob, 'deploy'>,
): Promise<Record<string, string>> {
  if (pipeline.variables.FERRY_PIPELINE_TRUSTED !== 'true') return {};
  return jobSecrets(ctx.db, ctx.masterKey, pipeline.projectId, job.deploy?.environment);
}

type Stream = LogChunkWire['stream'];

interface Entry {
  /** null: the job has no secrets, nothing to mask. */
  base: SecretMasker | null;
  streams: Map<Stream, SecretMasker>;
  lastUsed: number;
}

/** Entries untouched this long are checked against the store and dropped once their attempt has ended. */
const STALE_MS = 5 * 60_000;

export class ServerMaskers {
  private readonly entries = new Map<string, Promise<Entry>>();
  private lastSweep = Date.now();

  constructor(private readonly ctx: ServerContext) {}

  /** At lease time: the secret values of the attempt just handed out. */
  remember(jobId: string, attempt: number, values: string[]): void {
    this.entries.set(key(jobId, attempt), Promise.resolve(newEntry(values)));
  }

  /** Masks chunks of a running attempt; held-back text comes out with a later chunk or at finish(). */
  async mask(jobId: string, attempt: number, chunks: LogChunkWire[]): Promise<LogChunkWire[]> {
    await this.sweep();
    const e = await this.entry(jobId, attempt);
    if (!e.base) return chunks;
    const out: LogChunkWire[] = [];
    for (const c of chunks) {
      const text = streamOf(e, c.stream).push(c.text);
      if (text) out.push({ ...c, text });
    }
    return out;
  }

  /** Masks every string in a value (a parsed test report) at once. */
  async maskValue<T>(jobId: string, attempt: number, value: T): Promise<T> {
    const e = await this.entry(jobId, attempt);
    return e.base ? deepMask(value, e.base) : value;
  }

  /** The end of the attempt: what the maskers still hold, as chunks to record; forgets the attempt. */
  async finish(jobId: string, attempt: number): Promise<LogChunkWire[]> {
    const k = key(jobId, attempt);
    const pending = this.entries.get(k);
    this.entries.delete(k);
    if (!pending) return [];
    const e = await pending;
    const out: LogChunkWire[] = [];
    for (const [stream, m] of e.streams) {
      const text = m.flush();
      if (text) out.push({ stream, at: Date.now(), text });
    }
    return out;
  }

  private entry(jobId: string, attempt: number): Promise<Entry> {
    const k = key(jobId, attempt);
    let p = this.entries.get(k);
    if (!p) {
      p = this.load(jobId).catch((err: unknown) => {
        this.entries.delete(k); // the store was unavailable: try again with the next chunk
        throw err;
      });
      this.entries.set(k, p);
    }
    return p.then((e) => {
      e.lastUsed = Date.now();
      return e;
    });
  }

  private async load(jobId: string): Promise<Entry> {
    const [row] = await this.ctx.db.query<{ spec: PlannedJob | null; project_id: number; variables: Record<string, string> }>(
      'SELECT j.spec, p.project_id, p.variables FROM jobs j JOIN pipelines p ON p.id = j.pipeline_id WHERE j.id = $1',
      [jobId],
    );
    if (!row) return newEntry([]);
    try {
      return newEntry(Object.values(await secretsForJob(this.ctx, { projectId: row.project_id, variables: row.variables }, row.spec ?? {})));
    } catch {
      // The lease decrypted them a moment ago, so the key changed meanwhile: the runner's masking
      // is all there is. Chunks are still recorded rather than lost.
      return newEntry([]);
    }
  }

  /** Drops the maskers of attempts that ended without complete (lease reaped, runner gone). */
  private async sweep(): Promise<void> {
    const now = Date.now();
    if (now - this.lastSweep < STALE_MS / 5) return;
    this.lastSweep = now;
    const stale: string[] = [];
    for (const [k, p] of this.entries) {
      const e = await p.catch(() => null);
      if (e && now - e.lastUsed > STALE_MS) stale.push(k);
    }
    if (stale.length === 0) return;
    const running = await this.ctx.db.query<{ k: string }>(
      "SELECT id || ':' || attempt AS k FROM jobs WHERE status = 'running' AND id || ':' || attempt = ANY($1::text[])",
      [stale],
    );
    const alive = new Set(running.map((r) => r.k));
    for (const k of stale) if (!alive.has(k)) this.entries.delete(k);
  }
}

function key(jobId: string, attempt: number): string {
  return `${jobId}:${attempt}`;
}

function newEntry(values: string[]): Entry {
  return { base: values.length ? new SecretMasker(values) : null, streams: new Map(), lastUsed: Date.now() };
}

function streamOf(e: Entry, stream: Stream): SecretMasker {
  let m = e.streams.get(stream);
  if (!m) {
    m = e.base!.fork();
    e.streams.set(stream, m);
  }
  return m;
}
