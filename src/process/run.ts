// Running a short command to its end (git, tar), here or through the spawner.
//
// Why a spawner: Node starts a child with fork(), which copies the parent's page tables, so
// it costs in proportion to the parent's memory, on the event loop. The server holds the
// embedded PostgreSQL (about 700 MB mapped): there one spawn blocked every request for ~48 ms
// (a small process: ~5 ms), and a push waits for several (git cat-file, git archive). The
// server starts a small helper process once (./spawner-child.ts) and sends it the commands.
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { spawnerChildFile } from '../self-command.js';

export interface RunOptions {
  cwd?: string;
  /** Written to the command's standard input (then closed). */
  input?: string | Buffer;
}

/** The most output kept; past it the command is stopped and fails. */
const MAX_OUTPUT = 64 * 1024 * 1024;

export interface RunResult {
  stdout: Buffer;
  stderr: Buffer;
}

/** A failed command (exit code, signal, or could not start), with what it wrote. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number | string | null,
    readonly stdout: Buffer,
    readonly stderr: Buffer,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

type Runner = (cmd: string, args: string[], opts: RunOptions) => Promise<RunResult>;

/** Runs in this process. */
export function runHere(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, encoding: 'buffer', maxBuffer: MAX_OUTPUT }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
      const why = stderr.length ? stderr.toString('utf8').trim() : err.message;
      reject(new CommandError(`${cmd} ${args.join(' ')} failed (${code}): ${why}`, code, stdout ?? Buffer.alloc(0), stderr ?? Buffer.alloc(0)));
    });
    // A command that exits without reading its input must not fail the write.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

let current: Runner = runHere;

/** Answers `git cat-file --batch` questions (see ./cat-file.ts); here: a git process each time. */
type ObjectReader = (repo: string, lines: string[]) => Promise<Buffer>;

function readObjectsHere(repo: string, lines: string[]): Promise<Buffer> {
  return runHere('git', ['cat-file', '--batch'], { cwd: repo, input: lines.map((l) => `${l}\n`).join('') }).then((r) => r.stdout);
}

let currentReader: ObjectReader = readObjectsHere;

/**
 * What `git cat-file --batch` answers to `lines` in `repo`: from the spawner's long-lived
 * cat-file process for the repository when this process started a spawner, else from a git
 * process of its own.
 */
export function readObjects(repo: string, lines: string[]): Promise<Buffer> {
  return currentReader(repo, lines);
}

/**
 * Runs `cmd` to its end: through the spawner when this process started one, else here. Only for
 * commands that are safe to run twice: should the spawner die, those in flight run again here.
 */
export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return current(cmd, args, opts);
}

interface Reply {
  id: number;
  stdout?: Buffer | Uint8Array;
  stderr?: Buffer | Uint8Array;
  error?: { message: string; code: number | string | null };
}

/**
 * Starts the spawner and sends every runCommand of this process to it; resolves to what stops
 * it. Should the helper die, commands run here again (and those in flight are run here).
 */
export async function startSpawner(): Promise<() => Promise<void>> {
  const child: ChildProcess = fork(spawnerChildFile(), [], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    // Not this process's flags (a test runner's, a profiler's): the helper is plain.
    execArgv: [],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve()); // "ready"
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the spawner exited (${code}) before it was ready`)));
  });
  // Each with what runs it here instead, should the helper die first.
  const pending = new Map<number, { here: () => Promise<RunResult>; resolve: (r: RunResult) => void; reject: (e: Error) => void }>();
  let next = 1;
  let stopping = false;
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) {
      child.unref();
      channel?.unref();
    }
    const stdout = Buffer.from(m.stdout ?? []);
    const stderr = Buffer.from(m.stderr ?? []);
    if (m.error) p.reject(new CommandError(m.error.message, m.error.code, stdout, stderr));
    else p.resolve({ stdout, stderr });
  });
  child.on('exit', () => {
    current = runHere;
    currentReader = readObjectsHere;
    for (const p of pending.values()) p.here().then(p.resolve, p.reject);
    pending.clear();
    if (!stopping) process.stderr.write('ferry: the spawner stopped; commands run in this process now\n');
  });
  // The helper keeps this process alive only while a command is under way.
  const channel = child.channel as { ref(): void; unref(): void } | undefined;
  child.unref();
  channel?.unref();
  const ask = (message: object, here: () => Promise<RunResult>) =>
    new Promise<RunResult>((resolve, reject) => {
      const id = next++;
      if (pending.size === 0) {
        child.ref();
        channel?.ref();
      }
      pending.set(id, { here, resolve, reject });
      child.send({ id, ...message });
    });
  current = (cmd, args, opts) => ask({ cmd, args, opts }, () => runHere(cmd, args, opts));
  currentReader = (repo, lines) => ask({ objects: { repo, lines } }, () => readObjectsHere(repo, lines).then((stdout) => ({ stdout, stderr: Buffer.alloc(0) }))).then((r) => r.stdout);
  return async () => {
    stopping = true;
    current = runHere;
    currentReader = readObjectsHere;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.ref(); // wait for it
    child.disconnect();
    await exited;
  };
}
