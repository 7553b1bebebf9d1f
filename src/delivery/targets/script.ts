// The `script` target: the user's own commands do each move (ECS, Terraform, Ansible, kubectl...)
// with Ferry's variables saying what to do. Ferry runs no instance and no router for it:
//
//   launch  → `deploy` (FERRY_ACTION=deploy) in the release's files; one pseudo instance
//             `script:<release id>` stands for the deployed release, so strategies have
//             something to hold on to
//   route   → `set_weight` (FERRY_CANARY_WEIGHT) while the new version has a share below 100;
//             `promote` when a release becomes the only track; `rollback` (FERRY_ROLLBACK_TO)
//             when traffic goes back to a release other than the one deployed (or tried) last
//   retire  → nothing to stop: the user's system replaced the release
//   preview, metrics, url → none
//
// What is deployed survives a controller restart, in two files of the release's folder
// (<FERRY_HOME>/releases/<id>/): `script-deploying` while its deploy runs (it stays when the
// deploy fails, since the commands may have changed things half-way, and names the process group
// so a restarted controller can stop a deploy its predecessor left running), and `script-deployed`
// once the deploy succeeded (it also records the promotion). Both go when the release is rolled
// back; `script-deployed` also goes when the release is retired. The newest of an environment's
// files is what its system runs now (or was last asked to run); memory only avoids repeating a
// weight.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RouteMetrics } from '../../edge/api.js';
import type { ScriptTargetSpec } from '../../config/types.js';
import { SecretMasker } from '../../secrets/masker.js';
import type { Release } from '../../store/releases.js';
import { versionLabel } from './names.js';
import { DeployError } from './process.js';
import type { Target, TargetContext, TrafficSplit } from './types.js';

export const SCRIPT_MARKER = 'script-deployed';
export const SCRIPT_ATTEMPT = 'script-deploying';
const PREFIX = 'script:';
const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
/** How long each action may run when the target sets no `timeout:`. */
const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const KILL_GRACE_MS = 2_000;
/** How long output may keep arriving after the shell exited (a child that left the group). */
const PIPE_DRAIN_MS = 2_000;
const TAIL_LINES = 5;
const MAX_LINE = 4_000;
/** Never handed to the user's commands: the server's own credentials. */
const SERVER_ONLY = new Set(['DATABASE_URL', 'FERRY_MASTER_KEY', 'FERRY_TOKEN', 'FERRY_TEST_DATABASE_URL', 'PGPASSWORD']);
const RELEASE_ID = /^[A-Za-z0-9_-]+$/;

export type ScriptAction = 'deploy' | 'set-weight' | 'promote' | 'rollback';

/** What the files say about a release's deploy. */
interface Deployed {
  projectId: number;
  environment: string;
  releaseId: string;
  number: number;
  version: string;
  sha: string;
  filesDir: string | null;
  /** Orders the environment's deploys (ms, strictly increasing per environment). */
  deployedAt: number;
  /** `script-deployed`: the `promote` step ran (or there was none to run) for this deploy. */
  promoted?: boolean;
  /** `script-deploying`: the deploy's process group, and the token in its environment. */
  pid?: number;
  token?: string;
}

export interface ScriptTargetOptions {
  /** The secret values among ctx.variables(): masked in the output written to the log. */
  secrets?: () => Promise<string[]>;
}

export function scriptInstanceId(releaseId: string): string {
  return `${PREFIX}${releaseId}`;
}

function releaseIdOf(instances: string[] | undefined): string | null {
  for (const i of instances ?? []) {
    if (!i.startsWith(PREFIX)) continue;
    const id = i.slice(PREFIX.length);
    // Release ids are `rel_` and hex: anything else is not ours (and never becomes a path).
    if (RELEASE_ID.test(id)) return id;
  }
  return null;
}

const byTime = (a: Deployed, b: Deployed) => a.deployedAt - b.deployedAt || a.number - b.number;

export class ScriptTarget implements Target {
  /** The last share this object gave a canary, so the same split is not applied twice. */
  private routed: { version: string; weight: number } | null = null;

  constructor(
    private readonly ctx: TargetContext,
    private readonly opts: ScriptTargetOptions = {},
  ) {}

  private get spec(): ScriptTargetSpec {
    return this.ctx.env.target as ScriptTargetSpec;
  }

  // ---- the Target interface ---------------------------------------------------------------------

  async launch(release: Release, _count = 1, _from = 1): Promise<string[]> {
    if (!release.filesDir) throw new DeployError(`release ${release.id} has no files to run`);
    await this.stopLeftovers();
    const deployed = await this.scan(SCRIPT_MARKER);
    const current = deployed.filter((m) => m.releaseId !== release.id).at(-1);
    const newest = [...deployed, ...(await this.scan(SCRIPT_ATTEMPT))].sort(byTime).at(-1);
    const attempt: Deployed = {
      projectId: release.projectId,
      environment: release.environment,
      releaseId: release.id,
      number: release.number,
      version: versionLabel(release),
      sha: release.sha,
      filesDir: release.filesDir,
      deployedAt: Math.max(Date.now(), (newest?.deployedAt ?? 0) + 1),
      token: randomUUID(),
    };
    await this.write(SCRIPT_ATTEMPT, attempt);
    // The deploy failing leaves `script-deploying`: a revert then runs `rollback`.
    await this.run('deploy', this.spec.deploy, attempt, current ? { FERRY_STABLE_VERSION: current.version } : {}, {
      token: attempt.token,
      onStart: (pid) => this.writeSync(SCRIPT_ATTEMPT, { ...attempt, pid }),
    });
    const { pid: _pid, token: _token, ...info } = attempt;
    await this.write(SCRIPT_MARKER, { ...info, deployedAt: Math.max(Date.now(), attempt.deployedAt), promoted: false });
    // This deploy supersedes every earlier one that failed.
    for (const a of await this.scan(SCRIPT_ATTEMPT)) await this.remove(SCRIPT_ATTEMPT, a.releaseId);
    return [scriptInstanceId(release.id)];
  }

  async retire(instances: string[]): Promise<void> {
    for (const i of instances) {
      const releaseId = releaseIdOf([i]);
      if (!releaseId) continue;
      const m = await this.read(SCRIPT_MARKER, releaseId);
      this.ctx.log(`[retire] nothing to stop for ${m?.version ?? i}: the script target's own system replaced it`);
      await this.remove(SCRIPT_MARKER, releaseId);
    }
  }

  async route(split: TrafficSplit): Promise<void> {
    const c = split.canary;
    if (c && c.weight < 100) return this.setWeight(split, c);
    const track = c ?? split.stable;
    if (!track) return;
    const releaseId = releaseIdOf(track.instances);
    if (!releaseId) {
      this.ctx.log(`[route] ${track.version} is not deployed: nothing to promote or roll back to`);
      return;
    }
    const latest = (await this.all()).at(-1);
    if (latest && latest.releaseId !== releaseId) return this.rollback(latest, track.version, releaseId);
    await this.promote(releaseId, track.version);
  }

  /** A script target has no preview router: the new version answers where its own system puts it. */
  async preview(_version: string, _instances: string[]): Promise<string | null> {
    return null;
  }

  async closePreview(): Promise<void> {}

  async metrics(): Promise<RouteMetrics | null> {
    return null;
  }

  async url(): Promise<string | null> {
    return null;
  }

  async running(release: Release): Promise<string[]> {
    const m = await this.read(SCRIPT_MARKER, release.id);
    return m && m.projectId === release.projectId && m.environment === release.environment ? [scriptInstanceId(release.id)] : [];
  }

  // ---- the moves ------------------------------------------------------------------------------

  private async setWeight(split: TrafficSplit, c: NonNullable<TrafficSplit['canary']>): Promise<void> {
    const weight = Math.max(0, Math.min(100, Math.round(c.weight)));
    if (this.routed?.version === c.version && this.routed.weight === weight) return;
    const commands = this.spec.setWeight ?? [];
    if (commands.length === 0) {
      this.ctx.log(`[set-weight] no set_weight commands: ${c.version} gets whatever share your system gives it (${weight}% asked)`);
    } else {
      const id = releaseIdOf(c.instances);
      const info = (id ? await this.read(SCRIPT_MARKER, id) : null) ?? this.partial(c.version, id);
      await this.run('set-weight', commands, info, { FERRY_CANARY_WEIGHT: String(weight), ...(split.stable ? { FERRY_STABLE_VERSION: split.stable.version } : {}) });
    }
    this.routed = { version: c.version, weight };
  }

  private async promote(releaseId: string, version: string): Promise<void> {
    const m = await this.read(SCRIPT_MARKER, releaseId);
    if (m?.promoted) return;
    const commands = this.spec.promote ?? [];
    if (commands.length > 0) {
      const before = (await this.scan(SCRIPT_MARKER)).filter((x) => x.releaseId !== releaseId).at(-1);
      await this.run('promote', commands, m ?? this.partial(version, releaseId), before ? { FERRY_STABLE_VERSION: before.version } : {});
    }
    if (m) await this.write(SCRIPT_MARKER, { ...m, promoted: true });
    this.routed = { version, weight: 100 };
  }

  /** Traffic goes back to `toVersion` (release `toId`): undo `from`, the release deployed (or tried) last. */
  private async rollback(from: Deployed, toVersion: string, toId: string): Promise<void> {
    // A deploy a previous controller left running would finish after the rollback: stop it first.
    await this.stopLeftovers();
    const commands = this.spec.rollback ?? [];
    if (commands.length === 0) {
      this.ctx.log(`[rollback] no rollback commands: putting ${toVersion} back in place of ${from.version} is up to your system`);
    } else {
      await this.run('rollback', commands, from, { FERRY_ROLLBACK_TO: toVersion, FERRY_STABLE_VERSION: toVersion }, { note: ` (back to ${toVersion})` });
    }
    await this.remove(SCRIPT_ATTEMPT, from.releaseId);
    await this.remove(SCRIPT_MARKER, from.releaseId);
    this.routed = { version: toVersion, weight: 100 };
    // The release traffic went back to is the one deployed now.
    const to = await this.read(SCRIPT_MARKER, toId);
    if (to && !to.promoted) await this.write(SCRIPT_MARKER, { ...to, promoted: true });
  }

  private partial(version: string, releaseId: string | null): Deployed {
    return { projectId: this.ctx.projectId, environment: this.ctx.env.name, releaseId: releaseId ?? '', number: Number(/#(\d+)$/.exec(version)?.[1] ?? 0), version, sha: '', filesDir: null, deployedAt: 0 };
  }

  /** Stops deploys of this environment that a previous controller left running (still ours: the token). */
  private async stopLeftovers(): Promise<void> {
    for (const a of await this.scan(SCRIPT_ATTEMPT)) {
      if (!a.pid || !a.token || !ownsGroup(a.pid, a.token)) continue;
      this.ctx.log(`[deploy] stopping the deploy of ${a.version} a previous controller left running (process group ${a.pid})`);
      killGroup(a.pid, 'SIGTERM');
      for (let waited = 0; waited < KILL_GRACE_MS && ownsGroup(a.pid, a.token); waited += 100) await new Promise((r) => setTimeout(r, 100));
      killGroup(a.pid, 'SIGKILL');
    }
  }

  // ---- running the user's commands ---------------------------------------------------------------

  private async run(
    action: ScriptAction,
    commands: string[],
    rel: Deployed,
    extra: Record<string, string>,
    o: { token?: string; onStart?: (pid: number) => void; note?: string } = {},
  ): Promise<void> {
    const base = await this.ctx.variables();
    const secrets = this.opts.secrets ? await this.opts.secrets() : [];
    const env: Record<string, string> = {
      ...inherited(),
      ...base,
      FERRY_ENVIRONMENT: this.ctx.env.name,
      FERRY_VERSION: rel.version,
      ...(rel.releaseId ? { FERRY_RELEASE: rel.releaseId } : {}),
      ...(rel.number ? { FERRY_RELEASE_NUMBER: String(rel.number) } : {}),
      ...(rel.sha ? { FERRY_COMMIT_SHA: rel.sha } : {}),
      ...extra,
      FERRY_ACTION: action,
      ...(o.token ? { FERRY_SCRIPT_RUN: o.token } : {}),
    };
    const cwd = rel.filesDir && existsSync(rel.filesDir) ? rel.filesDir : this.fallbackCwd(rel);
    const timeoutMs = this.spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.ctx.log(`[${action}] running ${commands.length} command${commands.length === 1 ? '' : 's'} for ${rel.version}${o.note ?? ''}`);
    const r = await runCommands({ commands, cwd, env, timeoutMs, secrets, onStart: o.onStart, log: (line) => this.ctx.log(`[${action}] ${line}`) });
    const at = r.lastCommand !== undefined ? ` at \`${r.lastCommand}\`` : '';
    const tail = r.tail.length ? `; last output: ${r.tail.map((l) => JSON.stringify(l)).join(' | ')}` : '';
    if (r.error) throw new DeployError(`${action} commands could not run: ${r.error}${tail}`);
    if (r.timedOut) throw new DeployError(`${action} commands timed out after ${Math.round(timeoutMs / 1000)}s${at} and were stopped${tail}`);
    if (r.exitCode !== 0) throw new DeployError(`${action} commands failed with exit code ${r.exitCode ?? 'none'}${at}${tail}`);
    this.ctx.log(`[${action}] done`);
  }

  private fallbackCwd(rel: Deployed): string {
    // Commands that need the release's files fail on their own; the others still run.
    return rel.releaseId ? join(this.ctx.home, 'releases', rel.releaseId) : this.ctx.home;
  }

  // ---- the files ---------------------------------------------------------------------------------

  private path(file: string, releaseId: string): string {
    return join(this.ctx.home, 'releases', releaseId, file);
  }

  private async read(file: string, releaseId: string): Promise<Deployed | null> {
    if (!RELEASE_ID.test(releaseId)) return null;
    try {
      const m = JSON.parse(await readFile(this.path(file, releaseId), 'utf8')) as Deployed;
      return m.projectId === this.ctx.projectId && m.environment === this.ctx.env.name ? m : null;
    } catch {
      return null;
    }
  }

  private async write(file: string, m: Deployed): Promise<void> {
    const path = this.path(file, m.releaseId);
    await mkdir(join(this.ctx.home, 'releases', m.releaseId), { recursive: true });
    await writeFile(`${path}.tmp`, JSON.stringify(m));
    await rename(`${path}.tmp`, path);
  }

  /** For the spawn callback: the folder exists (write() made it before). */
  private writeSync(file: string, m: Deployed): void {
    try {
      writeFileSync(this.path(file, m.releaseId), JSON.stringify(m));
    } catch {
      // Only the leftover stop after a restart needs the pid.
    }
  }

  private async remove(file: string, releaseId: string): Promise<void> {
    if (RELEASE_ID.test(releaseId)) await rm(this.path(file, releaseId), { force: true });
  }

  /** This environment's releases with `file`, oldest first. */
  private async scan(file: string): Promise<Deployed[]> {
    let names: string[];
    try {
      names = await readdir(join(this.ctx.home, 'releases'));
    } catch {
      return [];
    }
    const found = await Promise.all(names.map((n) => (RELEASE_ID.test(n) && existsSync(this.path(file, n)) ? this.read(file, n) : null)));
    return found.filter((m): m is Deployed => m !== null).sort(byTime);
  }

  /** Deployed and tried releases of this environment, oldest first. */
  private async all(): Promise<Deployed[]> {
    const [deployed, tried] = await Promise.all([this.scan(SCRIPT_MARKER), this.scan(SCRIPT_ATTEMPT)]);
    return [...deployed, ...tried].sort(byTime);
  }
}

/** Whether process group `pgid` still runs a deploy of ours (its leader's environment has the token). */
function ownsGroup(pgid: number, token: string): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pgid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return false;
    return readFileSync(`/proc/${pgid}/environ`, 'utf8').split('\0').includes(`FERRY_SCRIPT_RUN=${token}`);
  } catch {
    // No /proc (not Linux), or the leader is gone while its children live on: not provably ours.
    return false;
  }
}

/** The server's environment for the user's commands (their cloud credentials, PATH...), minus its own secrets. */
function inherited(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || SERVER_ONLY.has(k) || k.startsWith('FERRY_') || k.startsWith('PG')) continue;
    out[k] = v;
  }
  out.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  return out;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** How a command is shown in the log before it runs. */
function shown(command: string): string {
  return `$ ${command.includes('\n') ? `${command.split('\n')[0]} ...` : command}`;
}

/** Every command echoed as `$ command` before it runs; the first failing one stops the script. */
export function scriptOf(commands: string[]): string {
  const out = [SHELL.endsWith('bash') ? 'set -eo pipefail' : 'set -e'];
  for (const c of commands) {
    out.push(`printf '%s\\n' ${shellQuote(shown(c))}`);
    out.push(c);
  }
  return `${out.join('\n')}\n`;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // gone already
  }
}

export interface CommandsResult {
  exitCode: number | null;
  timedOut: boolean;
  error?: string;
  /** The last lines of output (masked), without the echoed commands. */
  tail: string[];
  /** The last command that started (as shown in the log). */
  lastCommand?: string;
}

/** Runs `commands` in one shell, in its own process group, streaming masked output line by line. */
export function runCommands(o: {
  commands: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  secrets: string[];
  log: (line: string) => void;
  /** Called with the pid (= process group id) once the shell started. */
  onStart?: (pid: number) => void;
}): Promise<CommandsResult> {
  return new Promise((resolve) => {
    const tail: string[] = [];
    let lastCommand: string | undefined;
    const echoes = new Set(o.commands.map(shown));
    const masker = o.secrets.length ? new SecretMasker(o.secrets) : null;
    const emit = (line: string) => {
      const l = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}… (cut)` : line;
      if (echoes.has(l)) lastCommand = l.slice(2);
      else {
        tail.push(l);
        if (tail.length > TAIL_LINES) tail.shift();
      }
      o.log(l);
    };
    const stream = () => {
      const m = masker?.fork() ?? null;
      let buf = '';
      const take = (text: string) => {
        buf += text;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          emit(buf.slice(0, nl).replace(/\r$/, ''));
          buf = buf.slice(nl + 1);
        }
        if (buf.length > MAX_LINE * 4) {
          emit(buf);
          buf = '';
        }
      };
      return {
        data: (d: string) => take(m ? m.push(d) : d),
        end: () => {
          if (m) take(m.flush());
          if (buf) emit(buf);
          buf = '';
        },
      };
    };
    let child;
    try {
      child = spawn(SHELL, ['-c', scriptOf(o.commands)], { cwd: o.cwd, env: o.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      return resolve({ exitCode: null, timedOut: false, error: (err as Error).message, tail, lastCommand });
    }
    if (child.pid !== undefined) o.onStart?.(child.pid);
    const out = stream();
    const err = stream();
    let timedOut = false;
    let exitCode: number | null = null;
    let error: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid === undefined) return;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
    }, o.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', out.data);
    child.stderr.setEncoding('utf8').on('data', err.data);
    child.on('error', (e) => {
      error = `${SHELL}: ${e.message}`;
    });
    child.on('exit', (code, signal) => {
      exitCode = code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 0) : null);
      // Whatever the commands left running in the background goes with them.
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, PIPE_DRAIN_MS).unref();
    });
    child.on('close', () => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      out.end();
      err.end();
      resolve({ exitCode, timedOut, error, tail, lastCommand });
    });
  });
}
