// Live followers of job logs. However many viewers follow one job, one tail reads what is new
// from the store and writes it to all of them: a thousand viewers cost one query per wake-up,
// not a thousand. The store stays the order of record: a viewer first reads what was written
// before it came (after the Last-Event-ID it gives, when it reconnects); then the tail reads from
// the furthest-behind viewer's place and hands each what it has not had, so no one misses or
// repeats a chunk, whichever replica recorded it.
import { FINAL_JOB_STATUSES } from '../pipeline/events.js';
import { getJob } from '../store/jobs.js';
import { getLogChunks, type LogChunk } from '../store/logs.js';
import type { ServerContext } from './context.js';

/** What a viewer is sent: SSE text, made once per chunk for all viewers. */
export interface LogViewer {
  write(text: string): void;
  /** Ends the viewer's stream (after `end` or `error` was written). */
  close(): void;
}

/** A comment line every so often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
/**
 * Without a wake-up from this replica's bus (the job's runner reports to another replica), a
 * tail looks again this often.
 */
const POLL_MS = 1000;

function errorEvent(err: unknown): string {
  return `event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`;
}

function logEvent(c: LogChunk): string {
  return `event: log\nid: ${c.seq}\ndata: ${JSON.stringify({ stream: c.stream, at: c.at, text: c.text, attempt: c.attempt })}\n\n`;
}

interface Follower {
  viewer: LogViewer;
  /** Caught up with what was written before it came: the tail now writes to it. */
  live: boolean;
  /** The last chunk it was sent. */
  lastSeq: number;
}

class Tail {
  private readonly followers = new Map<LogViewer, Follower>();
  private running = false;
  private again = false;
  /** The `end` event, once the job is over: later arrivals get it after catching up. */
  private final: string | null = null;
  private readonly unsubscribe: () => void;
  private readonly keepalive: NodeJS.Timeout;
  private readonly poll: NodeJS.Timeout;

  constructor(
    private readonly ctx: ServerContext,
    private readonly jobId: string,
    private readonly attempt: number | undefined,
    private readonly onIdle: () => void,
  ) {
    this.unsubscribe = ctx.bus.subscribe((e) => {
      if ((e.type === 'job.log' || e.type === 'job.state') && e.jobId === jobId) void this.pump();
    });
    this.keepalive = setInterval(() => {
      for (const f of this.followers.values()) f.viewer.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.poll = setInterval(() => void this.pump(), POLL_MS);
  }

  async add(viewer: LogViewer, afterSeq: number): Promise<void> {
    const f: Follower = { viewer, live: false, lastSeq: afterSeq };
    this.followers.set(viewer, f);
    try {
      for (const c of await getLogChunks(this.ctx.db, this.jobId, { attempt: this.attempt, afterSeq })) {
        viewer.write(logEvent(c));
        f.lastSeq = c.seq;
      }
    } catch (err) {
      return this.drop(f, errorEvent(err));
    }
    f.live = true;
    void this.pump();
  }

  remove(viewer: LogViewer): void {
    if (this.followers.delete(viewer) && this.followers.size === 0) this.stop();
  }

  private drop(f: Follower, last: string): void {
    f.viewer.write(last);
    f.viewer.close();
    this.remove(f.viewer);
  }

  private live(): Follower[] {
    return [...this.followers.values()].filter((f) => f.live);
  }

  /**
   * Reads from where the furthest-behind live follower is (they are all at one place but for
   * a moment after one catches up) and hands each what it has not had.
   */
  private async readNew(): Promise<void> {
    const live = this.live();
    if (live.length === 0) return;
    const from = Math.min(...live.map((f) => f.lastSeq));
    for (const c of await getLogChunks(this.ctx.db, this.jobId, { attempt: this.attempt, afterSeq: from })) {
      const text = logEvent(c);
      for (const f of live) {
        if (c.seq <= f.lastSeq || !this.followers.has(f.viewer)) continue;
        f.viewer.write(text);
        f.lastSeq = c.seq;
      }
    }
  }

  /**
   * Whatever woke it, reads what is new once for every live follower; once the job is over,
   * ends each live follower after one last read from its place (a follower that caught up
   * late is ended on a later turn, after its own last read).
   */
  private async pump(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.live().length === 0) return; // each catching-up follower pumps when it is done
    this.running = true;
    try {
      do {
        this.again = false;
        await this.readNew();
        if (!this.final) {
          const now = await getJob(this.ctx.db, this.jobId);
          if (now && FINAL_JOB_STATUSES.has(now.status) && !this.again) {
            // What the final report wrote after the last wake-up still comes before `end`.
            await this.readNew();
            this.final = `event: end\ndata: ${JSON.stringify({ status: now.status, exitCode: now.exitCode, logTruncated: now.logTruncated })}\n\n`;
          }
        }
        if (this.final) for (const f of this.live()) this.drop(f, this.final);
      } while (this.again && this.followers.size > 0);
    } catch (err) {
      for (const f of this.live()) this.drop(f, errorEvent(err));
    } finally {
      this.running = false;
    }
  }

  private stop(): void {
    this.unsubscribe();
    clearInterval(this.keepalive);
    clearInterval(this.poll);
    this.onIdle();
  }
}

/** One tail per followed job (and attempt) on this replica. */
export class LogTails {
  private readonly tails = new Map<string, Tail>();

  constructor(private readonly ctx: ServerContext) {}

  /** Streams the job's log to `viewer` from after `afterSeq`; returns what stops it (the viewer went away). */
  follow(jobId: string, attempt: number | undefined, viewer: LogViewer, afterSeq = 0): () => void {
    const key = `${jobId}:${attempt ?? ''}`;
    let tail = this.tails.get(key);
    if (!tail) {
      const t: Tail = new Tail(this.ctx, jobId, attempt, () => {
        if (this.tails.get(key) === t) this.tails.delete(key);
      });
      this.tails.set(key, (tail = t));
    }
    void tail.add(viewer, afterSeq);
    return () => tail.remove(viewer);
  }

  /** How many tails are open (for tests: none is left once its viewers are gone). */
  get size(): number {
    return this.tails.size;
  }
}
