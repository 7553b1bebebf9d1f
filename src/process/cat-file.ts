// Long-lived `git cat-file --batch` processes, one per repository. Reading a pushed commit and
// its ferry.yml then costs a write and a read instead of starting git (~15 ms on a small
// machine: most of what a push waited for before its pipeline was planned). They live in the
// server's spawner (./spawner-child.ts), so the server itself never forks for them.
//
// Objects that arrive after the process started are found: git looks loose objects up on each
// request, and reads the list of packs again when an object is not in the ones it knows.
import { spawn, type ChildProcess } from 'node:child_process';

/** A repository's process is stopped after this long unused. */
const IDLE_MS = 5 * 60_000;
/** At most this many repositories have a process; the least recently used one goes first. */
const MAX_PROCESSES = 16;

interface Question {
  /** How many answers (one per line asked) make the reply. */
  answers: number;
  got: Buffer[];
  resolve(out: Buffer): void;
  reject(err: Error): void;
}

/**
 * The length of the first whole answer in `buf` ("<sha> <type> <size>\n<body>\n", or
 * "<name> missing\n" and the like for what is no object), or 0 if it has not all arrived.
 */
export function answerLength(buf: Buffer): number {
  const nl = buf.indexOf(10);
  if (nl < 0) return 0;
  const header = buf.subarray(0, nl).toString('latin1');
  const size = /^[0-9a-f]{40,64} \S+ (\d+)$/.exec(header)?.[1];
  if (size === undefined) return nl + 1;
  const total = nl + 1 + Number(size) + 1;
  return buf.length >= total ? total : 0;
}

class BatchProcess {
  private readonly child: ChildProcess;
  private readonly queue: Question[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private idle: NodeJS.Timeout | undefined;
  gone = false;

  constructor(
    repo: string,
    private readonly onGone: () => void,
  ) {
    this.child = spawn('git', ['cat-file', '--batch'], { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    this.child.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
    this.child.stdout!.on('data', (d: Buffer) => this.read(d));
    this.child.stdin!.on('error', () => undefined); // a dead process is reported by 'close'
    // A repository folder that is gone reads as "spawn git ENOENT": say which.
    this.child.on('error', (e) => this.end(new Error(`git cat-file --batch in ${repo} could not start: ${e.message}`)));
    this.child.on('close', (code) => this.end(new Error(`git cat-file --batch in ${repo} exited (${code}): ${err.trim()}`)));
    this.child.unref();
    this.touch();
  }

  ask(lines: string[]): Promise<Buffer> {
    this.touch();
    return new Promise((resolve, reject) => {
      this.queue.push({ answers: lines.length, got: [], resolve, reject });
      this.child.stdin!.write(lines.map((l) => `${l}\n`).join(''));
    });
  }

  stop(): void {
    this.child.stdin!.end();
  }

  private touch(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop(), IDLE_MS).unref();
  }

  private read(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const q = this.queue[0];
      const n = q ? answerLength(this.pending) : 0;
      if (!q || n === 0) return;
      q.got.push(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      if (q.got.length === q.answers) {
        this.queue.shift();
        q.resolve(Buffer.concat(q.got));
      }
    }
  }

  private end(err: Error): void {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.idle);
    for (const q of this.queue.splice(0)) q.reject(err);
    this.onGone();
  }
}

const processes = new Map<string, BatchProcess>();

/**
 * What `git cat-file --batch` answers to `lines` (object names, one per line, no newlines in
 * them) in `repo`: the same bytes as a `git cat-file --batch` run with them as its input.
 */
export function catFileBatch(repo: string, lines: string[]): Promise<Buffer> {
  if (lines.some((l) => l.includes('\n'))) return Promise.reject(new Error('an object name holds a newline'));
  let p = processes.get(repo);
  if (p) processes.delete(repo); // re-inserted below: the map's order is the order of last use
  else {
    if (processes.size >= MAX_PROCESSES) {
      const [oldest, q] = processes.entries().next().value!;
      processes.delete(oldest);
      q.stop();
    }
    const made: BatchProcess = new BatchProcess(repo, () => {
      if (processes.get(repo) === made) processes.delete(repo);
    });
    p = made;
  }
  processes.set(repo, p);
  return p.ask(lines);
}

/** Stops every process (their repositories' next question starts a new one). */
export function stopCatFiles(): void {
  for (const p of processes.values()) p.stop();
  processes.clear();
}
