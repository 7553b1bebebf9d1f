// The runner's side of the runner protocol over HTTP (Node's fetch; loopback for the server's
// own in-process runner, the network for remote ones). Artifacts, caches and the commit travel
// as tar streams, made by the system's tar and unpacked in this process (node-tar).
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { x as extract } from 'tar';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { matchFiles } from '../executor/files.js';
import type { ArtifactKey, ArtifactStore, CacheStore } from '../executor/types.js';
import type { HeartbeatWire, JobLeaseWire, LeaseRequest, LogChunkWire, LogsAnswerWire, OutcomeWire, ReportWire } from './protocol.js';
import { RUNNER_API } from './protocol.js';
import { encodeLogBatch, LOG_BATCH_TYPE } from './log-batch.js';

export class LeaseLostError extends Error {
  constructor() {
    super('the server says this runner no longer holds the job');
    this.name = 'LeaseLostError';
  }
}

/** A request body that is not JSON. */
class TypedBody {
  constructor(
    readonly type: string,
    readonly data: Buffer,
  ) {}
}

export class RunnerTransport {
  /**
   * The protocol's small requests (and log batches) go through node:http with kept-alive
   * connections: fetch's streams cost a noisy job's runner more CPU than encoding its log did.
   * (Idle kept-alive sockets do not hold the process open: the agent unrefs them.)
   */
  private readonly agent: http.Agent;

  constructor(
    private readonly server: string,
    private readonly token: string,
  ) {
    this.agent = new URL(server).protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  private url(path: string): string {
    return `${this.server.replace(/\/+$/, '')}${RUNNER_API}${path}`;
  }

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; body: T | null }> {
    const typed = body instanceof TypedBody ? body : body === undefined ? undefined : new TypedBody('application/json', Buffer.from(JSON.stringify(body)));
    const res = await this.request(method, path, typed, signal);
    if (res.status === 409) throw new LeaseLostError();
    if (res.status === 401) throw new Error('the server refused the runner token (401): register the runner again');
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
    return { status: res.status, body: res.text ? (JSON.parse(res.text) as T) : null };
  }

  private request(method: string, path: string, body: TypedBody | undefined, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const url = new URL(this.url(path));
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
    if (body) Object.assign(headers, { 'content-type': body.type, 'content-length': body.data.length });
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, { method, headers, agent: this.agent, signal }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body?.data);
    });
  }

  async lease(req: LeaseRequest, signal?: AbortSignal): Promise<JobLeaseWire | null> {
    const r = await this.call<JobLeaseWire>('POST', '/lease', req, signal);
    return r.status === 204 ? null : r.body;
  }

  async heartbeat(jobId: string, attempt: number): Promise<HeartbeatWire['answer']> {
    try {
      return (await this.call<HeartbeatWire>('POST', `/jobs/${jobId}/heartbeat`, { attempt })).body!.answer;
    } catch (err) {
      if (err instanceof LeaseLostError) return 'lost';
      throw err;
    }
  }

  /** One batch of the attempt's log; `batch` numbers them (see ./log-sender.ts). */
  async logs(jobId: string, attempt: number, chunks: LogChunkWire[], batch?: number): Promise<LogsAnswerWire> {
    return (await this.call<LogsAnswerWire>('POST', `/jobs/${jobId}/logs`, new TypedBody(LOG_BATCH_TYPE, encodeLogBatch({ attempt, batch, chunks })))).body ?? { accepted: 0 };
  }

  async report(jobId: string, attempt: number, report: ReportWire): Promise<void> {
    await this.call('POST', `/jobs/${jobId}/reports`, { attempt, ...report });
  }

  async complete(jobId: string, attempt: number, outcome: OutcomeWire): Promise<void> {
    await this.call('POST', `/jobs/${jobId}/complete`, { attempt, outcome });
  }

  /** Unpacks the commit of the job into `dir`: from the lease when it came inline, else downloaded. */
  async source(jobId: string, attempt: number, dir: string, inline?: string): Promise<void> {
    if (inline) return untar(Readable.from([Buffer.from(inline, 'base64')]), dir);
    const res = await this.fetchRaw('GET', `/jobs/${jobId}/source?attempt=${attempt}`);
    if (!res.ok || !res.body) throw new Error(`cannot download the source: ${res.status}`);
    await untar(Readable.fromWeb(res.body as WebReadableStream), dir);
  }

  fetchRaw(method: string, path: string, body?: Readable): Promise<Response> {
    return fetch(this.url(path), {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/x-tar' } : {}) },
      body: body ? (Readable.toWeb(body) as ReadableStream) : undefined,
      // Streaming request bodies need half-duplex in Node's fetch.
      ...(body ? { duplex: 'half' } : {}),
    } as RequestInit);
  }

  /** Artifacts of the job's attempt: uploaded for itself, downloaded from the jobs it needs. */
  artifactStore(jobId: string, attempt: number): ArtifactStore {
    return {
      save: async (_key: ArtifactKey, fromDir, paths, exclude, expireInMs) => {
        const files = await matchFiles(fromDir, paths, exclude);
        const q = expireInMs === undefined ? '' : `&expireInMs=${expireInMs}`;
        const res = await this.fetchRaw('PUT', `/jobs/${jobId}/artifacts?attempt=${attempt}${q}`, tar(fromDir, files));
        if (res.status === 409) throw new LeaseLostError();
        if (!res.ok) throw new Error(`artifact upload failed: ${res.status} ${await res.text()}`);
        await res.body?.cancel();
        return files.length;
      },
      restore: async (key, intoDir) => {
        const res = await this.fetchRaw('GET', `/jobs/${jobId}/artifacts/${key.jobId}?attempt=${attempt}`);
        if (res.status === 404) {
          await res.body?.cancel();
          return false;
        }
        if (!res.ok || !res.body) throw new Error(`artifact download failed: ${res.status}`);
        await untar(Readable.fromWeb(res.body as WebReadableStream), intoDir);
        return true;
      },
    };
  }

  cacheStore(): CacheStore {
    return {
      restore: async (key, intoDir) => {
        const res = await this.fetchRaw('GET', `/cache/${encodeURIComponent(key)}`);
        if (res.status === 404) {
          await res.body?.cancel();
          return false;
        }
        if (!res.ok || !res.body) throw new Error(`cache download failed: ${res.status}`);
        await untar(Readable.fromWeb(res.body as WebReadableStream), intoDir);
        return true;
      },
      save: async (key, fromDir, paths) => {
        const files = await matchFiles(fromDir, paths);
        const res = await this.fetchRaw('PUT', `/cache/${encodeURIComponent(key)}`, tar(fromDir, files));
        if (!res.ok) throw new Error(`cache upload failed: ${res.status} ${await res.text()}`);
        await res.body?.cancel();
        return files.length;
      },
    };
  }
}

/** A tar stream of `files` (relative to `dir`); names are passed NUL-separated, never parsed by a shell. */
function tar(dir: string, files: string[]): Readable {
  const child = spawn('tar', ['-c', '-f', '-', '-C', dir, '--null', '-T', '-'], { stdio: ['pipe', 'pipe', 'ignore'] });
  child.stdin.end(files.map((f) => `${f}\0`).join(''));
  return child.stdout;
}

/**
 * Unpacks a tar stream into `dir`, in this process: for the small commit most jobs get, about
 * a fifth of the time of starting the system's tar (what a push waits for). node-tar refuses
 * paths that would leave `dir` (absolute ones, `..`); strict: a damaged or cut archive fails.
 */
async function untar(body: Readable, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await pipeline(body, extract({ cwd: dir, strict: true }));
}
