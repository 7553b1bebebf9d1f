// Application instances: each one a `bash -c` command in its own process group, with its output
// in a log file, a readiness probe that makes it routable, a liveness probe that restarts it, and
// restarts with exponential backoff when it exits. Nothing it starts outlives it: when the main
// process of an instance exits, what is left of its group is killed; stopping it kills the group.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import http from 'node:http';
import { dirname } from 'node:path';
import { freePort } from '../process/free-port.js';
import type { InstanceSpec, InstanceState, InstanceStatus, ProbeConfig } from './api.js';
import { ConflictError } from './errors.js';

/** What the supervisor needs from the rest of the edge. */
export interface SupervisorHooks {
  /** Requests the router has in flight to an upstream address (http://127.0.0.1:PORT). */
  inFlightTo(address: string): number;
  /** An instance changed state, port or process: reroute, persist. */
  changed(): void;
  /** Where the edge keeps its files: marks (in their environment) the processes it starts. */
  edgeDir: string;
}

/** What state.json keeps of an instance. */
export interface InstanceRecord {
  id: string;
  spec: InstanceSpec;
  port: number;
  pid: number | null;
  restarts: number;
  lastExit: InstanceStatus['lastExit'];
  /** Was being deleted: a restarted edge kills its leftovers and does not start it again. */
  stopping?: boolean;
}

const KILL_AFTER_MS = 5_000;
/** A process that stayed up this long after being ready was healthy: its next crash backs off from the start again. */
const HEALTHY_RUN_MS = 10_000;

/** One HTTP GET; true on a 2xx answer within timeoutMs. A fresh connection every time. */
export function probe(port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(ok);
    };
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { 'user-agent': 'ferry-edge-probe' } }, (res) => {
      res.resume();
      finish((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.on('error', () => finish(false));
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}

/** Live processes of group `pgid` (or with that pid) whose environment holds `marker`. */
export function processesOf(pgid: number, marker: string): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found; // No /proc: nothing can be verified, so nothing is killed.
  }
  for (const e of entries) {
    if (e.charCodeAt(0) > 57) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // After the command name (which may hold spaces): state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      if (Number(fields[2]) !== pgid && Number(e) !== pgid) continue;
      if (readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(marker)) found.push(Number(e));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

/** Live processes anywhere whose environment holds `marker` (what a killed edge left behind). */
export function processesMarked(marker: string): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) > 57 || Number(e) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(marker)) continue;
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') found.push(Number(e));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Kills leftovers (SIGTERM, then SIGKILL after `graceMs`) and waits until they are gone. */
export async function killLeftovers(find: () => number[], graceMs = 2_000): Promise<number> {
  const pids = find();
  if (pids.length === 0) return 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Gone.
    }
  }
  const end = Date.now() + graceMs;
  while (find().length > 0 && Date.now() < end) await sleep(25);
  for (const pid of find()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
  const hardEnd = Date.now() + 2_000;
  while (find().length > 0 && Date.now() < hardEnd) await sleep(25);
  return pids.length;
}

/** A stable JSON form (keys sorted) to compare specs. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Splits a stream into lines, each written to the log with a timestamp and the stream's name. */
function lineWriter(log: WriteStream, stream: string): { data(chunk: Buffer): void; flush(): void } {
  let partial = '';
  return {
    data(chunk) {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      if (lines.length === 0) return;
      const at = new Date().toISOString();
      log.write(lines.map((l) => `${at} ${stream} ${l}\n`).join(''));
    },
    flush() {
      if (partial) log.write(`${new Date().toISOString()} ${stream} ${partial}\n`);
      partial = '';
    },
  };
}

export class Instance {
  state: InstanceState = 'starting';
  pid: number | null = null;
  restarts = 0;
  lastExit: InstanceStatus['lastExit'] = null;
  startedAt: string | null = null;
  readyAt: string | null = null;
  /** Set by DELETE (not by the edge's own stop): recorded so that a restarted edge does not bring it back. */
  deleting = false;
  private child: ChildProcess | null = null;
  private log: WriteStream | null = null;
  /** Which process the exit handler is waiting for: events of an older one are ignored. */
  private procGen = 0;
  /** Bumped at every spawn, exit and stop: probes of an older process stop. */
  private probeGen = 0;
  private crashes = 0;
  private startedMs = 0;
  private readyMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private exitWaiters: (() => void)[] = [];
  /** Resolves when the current process's stdout and stderr are closed (its last lines are logged). */
  private outputDone: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | null = null;

  constructor(
    readonly id: string,
    public spec: InstanceSpec,
    readonly port: number,
    private readonly hooks: SupervisorHooks,
  ) {}

  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  status(): InstanceStatus {
    return { id: this.id, spec: this.spec, state: this.state, port: this.port, pid: this.pid, restarts: this.restarts, lastExit: this.lastExit, startedAt: this.startedAt, readyAt: this.readyAt };
  }

  record(): InstanceRecord {
    return { id: this.id, spec: this.spec, port: this.port, pid: this.pid, restarts: this.restarts, lastExit: this.lastExit, ...(this.deleting ? { stopping: true } : {}) };
  }

  private note(message: string): void {
    this.log?.write(`${new Date().toISOString()} ferry ${message}\n`);
  }

  start(): void {
    const spec = this.spec;
    if (!this.log) {
      try {
        mkdirSync(dirname(spec.logFile), { recursive: true });
      } catch {
        // The stream below reports it.
      }
      this.log = createWriteStream(spec.logFile, { flags: 'a' });
      this.log.on('error', (err) => process.stderr.write(`ferry edge: instance ${this.id}: log ${spec.logFile}: ${err.message}\n`));
    }
    const gen = ++this.procGen;
    const pgen = ++this.probeGen;
    this.state = 'starting';
    this.readyAt = null;
    this.readyMs = 0;
    this.startedMs = Date.now();
    this.startedAt = new Date(this.startedMs).toISOString();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? '/',
      LANG: process.env.LANG ?? 'C.UTF-8',
      ...spec.env,
      PORT: String(this.port),
      FERRY_INSTANCE_ID: this.id,
      FERRY_EDGE: this.hooks.edgeDir,
    };
    if (!existsSync(spec.cwd)) {
      this.note(`cannot start: working directory ${spec.cwd} does not exist`);
      this.exited(gen, null, null);
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn('bash', ['-c', spec.command], { cwd: spec.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      this.note(`cannot start: ${(err as Error).message}`);
      this.exited(gen, null, null);
      return;
    }
    this.child = child;
    this.pid = child.pid ?? null;
    const out = lineWriter(this.log, 'stdout');
    const err = lineWriter(this.log, 'stderr');
    child.stdout!.on('data', out.data);
    child.stderr!.on('data', err.data);
    child.stdout!.on('end', out.flush);
    child.stderr!.on('end', err.flush);
    child.once('error', (e) => {
      this.note(`cannot start: ${e.message}`);
      this.exited(gen, null, null);
    });
    child.once('exit', (code, signal) => this.exited(gen, code, signal));
    this.outputDone = new Promise((r) => child.once('close', () => r()));
    this.note(`started pid ${this.pid} on port ${this.port}`);
    this.hooks.changed();
    this.scheduleReadiness(pgen, 0);
  }

  private exited(gen: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (gen !== this.procGen) return;
    this.procGen++;
    this.probeGen++;
    const pid = this.pid;
    this.child = null;
    this.pid = null;
    // Whatever the main process left running in its group goes with it.
    if (pid !== null) signalGroup(pid, 'SIGKILL');
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
    this.lastExit = { code, signal, at: new Date().toISOString() };
    for (const w of this.exitWaiters.splice(0)) w();
    if (this.state === 'stopping') {
      this.state = 'stopped';
      this.hooks.changed();
      return;
    }
    if (this.readyMs && Date.now() - this.readyMs >= HEALTHY_RUN_MS) this.crashes = 0;
    const { initial, max } = this.spec.restartBackoffMs ?? { initial: 200, max: 10_000 };
    const delay = Math.min(initial * 2 ** this.crashes, max);
    this.crashes++;
    this.state = 'backoff';
    this.note(`exited (${signal ? `signal ${signal}` : `exit code ${code}`}); restarting in ${delay} ms`);
    this.hooks.changed();
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null;
      if (this.state !== 'backoff') return;
      this.restarts++;
      this.start();
    }, delay);
  }

  private scheduleReadiness(gen: number, delayMs: number): void {
    const p = this.spec.readiness;
    let failures = 0;
    const tick = async () => {
      if (gen !== this.probeGen) return;
      const ok = await probe(this.port, p.path, p.timeoutMs);
      if (gen !== this.probeGen) return;
      if (ok) {
        failures = 0;
        if (this.state === 'starting' || this.state === 'unready') {
          const first = this.state === 'starting';
          this.state = 'ready';
          if (first) {
            this.readyMs = Date.now();
            this.readyAt = new Date(this.readyMs).toISOString();
            this.note('ready');
            if (this.spec.liveness) this.scheduleLiveness(gen, this.spec.liveness);
          } else this.note('ready again');
          this.hooks.changed();
        }
      } else if (this.state === 'ready' && ++failures >= p.failureThreshold) {
        this.state = 'unready';
        this.note(`readiness probe ${p.path} failed ${failures} times: not routed until it passes`);
        this.hooks.changed();
      }
      setTimeout(tick, p.intervalMs);
    };
    setTimeout(tick, delayMs);
  }

  private scheduleLiveness(gen: number, p: ProbeConfig): void {
    let failures = 0;
    const tick = async () => {
      if (gen !== this.probeGen) return;
      const ok = await probe(this.port, p.path, p.timeoutMs);
      if (gen !== this.probeGen) return;
      failures = ok ? 0 : failures + 1;
      if (failures >= p.failureThreshold) {
        this.note(`liveness probe ${p.path} failed ${failures} times in a row: restarting`);
        this.terminate();
        return;
      }
      setTimeout(tick, p.intervalMs);
    };
    setTimeout(tick, p.intervalMs);
  }

  /** SIGTERM to the group, SIGKILL 5 s later; the exit handler decides what comes next. */
  private terminate(): void {
    const pid = this.pid;
    if (pid === null) return;
    signalGroup(pid, 'SIGTERM');
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_AFTER_MS);
  }

  /** Not routed any more; waits for the router to drain it (≤ graceMs), then ends its processes. */
  stop(graceMs: number): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.state = 'stopping';
      this.probeGen++;
      if (this.backoffTimer) clearTimeout(this.backoffTimer);
      this.backoffTimer = null;
      this.hooks.changed();
      const running = this.pid !== null;
      if (!running) {
        this.state = 'stopped';
      } else {
        const end = Date.now() + graceMs;
        while (this.pid !== null && this.hooks.inFlightTo(this.address) > 0 && Date.now() < end) await sleep(10);
        if (this.pid !== null) {
          const gone = new Promise<void>((r) => this.exitWaiters.push(r));
          this.note('stopping: SIGTERM');
          this.terminate();
          await gone;
        }
      }
      // The last lines (what it said while stopping) go to the log before it is closed.
      await Promise.race([this.outputDone, sleep(1000)]);
      const e = this.lastExit;
      this.note(running && e ? `stopped (${e.signal ?? `exit code ${e.code}`})` : 'stopped (it was not running)');
      this.log?.end();
      this.log = null;
      this.hooks.changed();
    })();
    return this.stopping;
  }
}

export class Supervisor {
  private readonly instances = new Map<string, Instance>();

  constructor(private readonly hooks: SupervisorHooks) {}

  get(id: string): Instance | undefined {
    return this.instances.get(id);
  }

  list(): Instance[] {
    return [...this.instances.values()];
  }

  /** For the router: where an instance listens and whether it is routable. */
  instance(id: string): { port: number; ready: boolean } | null {
    const i = this.instances.get(id);
    return i ? { port: i.port, ready: i.state === 'ready' } : null;
  }

  inFlightTo(address: string): number {
    return this.hooks.inFlightTo(address);
  }

  /**
   * Starts an instance, or keeps the one there is when its spec is the same (labels may change in
   * place). Throws ConflictError when an instance with that id runs another spec or is stopping.
   */
  async put(id: string, spec: InstanceSpec): Promise<{ instance: Instance; created: boolean }> {
    const existing = this.instances.get(id);
    if (existing) {
      if (existing.state === 'stopping' || existing.state === 'stopped') throw new ConflictError(`instance ${id} is being stopped; PUT it again once DELETE has answered`);
      if (canonical({ ...existing.spec, labels: {} }) !== canonical({ ...spec, labels: {} })) {
        throw new ConflictError(`instance ${id} already runs with a different spec; DELETE it first (or use a new id)`);
      }
      if (canonical(existing.spec.labels) !== canonical(spec.labels)) {
        existing.spec = { ...existing.spec, labels: spec.labels };
        this.hooks.changed();
      }
      return { instance: existing, created: false };
    }
    const port = spec.port || (await freePort());
    // Another PUT of the same id may have happened while the port was picked.
    const raced = this.instances.get(id);
    if (raced) return this.put(id, spec);
    const inst = new Instance(id, spec, port, this.hooks);
    this.instances.set(id, inst);
    inst.start();
    return { instance: inst, created: true };
  }

  /** Restores an instance from state.json (its leftovers are killed by the caller first). */
  restore(rec: InstanceRecord): Instance {
    const inst = new Instance(rec.id, rec.spec, rec.port, this.hooks);
    inst.restarts = rec.restarts;
    inst.lastExit = rec.lastExit;
    this.instances.set(rec.id, inst);
    inst.start();
    return inst;
  }

  /** Stops and forgets an instance; answers its last status, or null when there was none. */
  async delete(id: string, graceMs: number): Promise<InstanceStatus | null> {
    const inst = this.instances.get(id);
    if (!inst) return null;
    inst.deleting = true;
    await inst.stop(graceMs);
    if (this.instances.get(id) === inst) {
      this.instances.delete(id);
      this.hooks.changed();
    }
    return inst.status();
  }

  /** The edge is stopping: every instance stops (their records stay in state.json). */
  async stopAll(graceMs: number): Promise<void> {
    await Promise.all(this.list().map((i) => i.stop(graceMs)));
  }
}

