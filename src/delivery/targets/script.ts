// The `script` target: the user's own commands do each move (ECS, Terraform, Ansible, kubectl...)
// with Ferry's variables saying what to do. Ferry runs no instance and no router for it:
//
//   launch  → `deploy` (FERRY_ACTION=deploy) in the release's files; one pseudo instance
//             `script:<release id>` stands for the deployed release, so strategies have
//             something to hold on to
//   route   → `set_weight` (FERRY_CANARY_WEIGHT) while the new version has a share below 100;
//             `promote` when a release becomes the only track; `rollback` (FERRY_ROLLBACK_TO)
//             when traffic goes back to a release other than the one last deployed
//   retire  → nothing to stop: the user's system replaced the release
//   preview, metrics, url → none
//
// What is deployed survives a controller restart: a marker file `script-deployed` in the
// release's folder (<FERRY_HOME>/releases/<id>/) is written after a successful deploy (and
// marks the promotion), and removed when the release is rolled back or retired. The newest
// marker of the environment is the release the user's system runs now; memory only caches it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
const PREFIX = 'script:';
const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
/** Used when the environment gives no start timeout (it always has one today: health's default). */
const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const KILL_GRACE_MS = 2_000;
/** How long output may keep arriving after the shell exited (a child that left the group). */
const PIPE_DRAIN_MS = 2_000;
const TAIL_LINES = 5;
const MAX_LINE = 4_000;
/** Never handed to the user's commands: the server's own credentials. */
const SERVER_ONLY = new Set(['DATABASE_URL', 'FERRY_MASTER_KEY', 'FERRY_TOKEN', 'FERRY_TEST_DATABASE_URL', 'PGPASSWORD']);

export type ScriptAction = 'deploy' | 'set-weight' | 'promote' | 'rollback';

/** What the marker file says about a deployed release (and what memory keeps of an attempt). */
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
  /** The `promote` step ran (or there was none to run) for this deploy. */
  promoted?: boolean;
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
    // Release ids are UUIDs: anything else is not ours (and never becomes a path).
    if (/^[A-Za-z0-9-]+$/.test(id)) return id;
  }
  return null;
}

export class ScriptTarget implements Target {
  /** The last deploy this object ran that failed: its commands may have changed things half-way. */
  private failed: Deployed | null = null;
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
    const id = scriptInstanceId(release.id);
    const all = await this.markers();
    const current = all.filter((m) => m.releaseId !== release.id).at(-1);
    const info: Deployed = {
      projectId: release.projectId,
      environment: release.environment,
      releaseId: release.id,
      number: release.number,
      version: versionLabel(release),
      sha: release.sha,
      filesDir: release.filesDir,
      deployedAt: 0,
    };
    this.failed = null;
    try {
      await this.run('deploy', this.spec.deploy, info, current ? { FERRY_STABLE_VERSION: current.version } : {});
    } catch (err) {
      this.failed = { ...info, deployedAt: Date.now() };
      throw err;
    }
    const latest = all.at(-1);
    await this.writeMarker({ ...info, deployedAt: Math.max(Date.now(), (latest?.deployedAt ?? 0) + 1), promoted: false });
    return [id];
  }

  async retire(instances: string[]): Promise<void> {
    for (const i of instances) {
      const releaseId = releaseIdOf([i]);
      if (!releaseId) continue;
      const m = await this.readMarker(releaseId);
      this.ctx.log(`[retire] nothing to stop for ${m?.version ?? i}: the script target's own system replaced it`);
      await this.removeMarker(releaseId);
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
    const latest = this.failed ?? (await this.markers()).at(-1) ?? null;
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
    const m = await this.readMarker(release.id);
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
      const info = (id ? await this.readMarker(id) : null) ?? this.partial(c.version, id);
      await this.run('set-weight', commands, info, { FERRY_CANARY_WEIGHT: String(weight), ...(split.stable ? { FERRY_STABLE_VERSION: split.stable.version } : {}) });
    }
    this.routed = { version: c.version, weight };
  }

  private async promote(releaseId: string, version: string): Promise<void> {
    const m = await this.readMarker(releaseId);
    if (m?.promoted) return;
    const commands = this.spec.promote ?? [];
    if (commands.length > 0) {
      const before = (await this.markers()).filter((x) => x.releaseId !== releaseId).at(-1);
      await this.run('promote', commands, m ?? this.partial(version, releaseId), before ? { FERRY_STABLE_VERSION: before.version } : {});
    }
    if (m) await this.writeMarker({ ...m, promoted: true });
    this.routed = { version, weight: 100 };
  }

  /** Traffic goes back to `toVersion` (release `toId`): undo `from`, the release deployed last. */
  private async rollback(from: Deployed, toVersion: string, toId: string): Promise<void> {
    const commands = this.spec.rollback ?? [];
    if (commands.length === 0) {
      this.ctx.log(`[rollback] no rollback commands: putting ${toVersion} back in place of ${from.version} is up to your system`);
    } else {
      await this.run('rollback', commands, from, { FERRY_ROLLBACK_TO: toVersion, FERRY_STABLE_VERSION: toVersion });
    }
    this.failed = null;
    await this.removeMarker(from.releaseId);
    this.routed = { version: toVersion, weight: 100 };
    // The release traffic went back to is the one deployed now.
    const to = await this.readMarker(toId);
    if (to && !to.promoted) await this.writeMarker({ ...to, promoted: true });
  }

  private partial(version: string, releaseId: string | null): Deployed {
    return { projectId: this.ctx.projectId, environment: this.ctx.env.name, releaseId: releaseId ?? '', number: Number(/#(\d+)$/.exec(version)?.[1] ?? 0), version, sha: '', filesDir: null, deployedAt: 0 };
  }

  // ---- running the user's commands ---------------------------------------------------------------

  private async run(action: ScriptAction, commands: string[], rel: Deployed, extra: Record<string, string>): Promise<void> {
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
    };
    const cwd = rel.filesDir && existsSync(rel.filesDir) ? rel.filesDir : this.fallbackCwd(rel);
    const timeoutMs = this.ctx.env.health?.startTimeoutMs || DEFAULT_TIMEOUT_MS;
    this.ctx.log(`[${action}] running ${commands.length} command${commands.length === 1 ? '' : 's'} for ${rel.version}`);
    const r = await runCommands({ commands, cwd, env, timeoutMs, secrets, log: (line) => this.ctx.log(`[${action}] ${line}`) });
    const tail = r.tail.length ? `; last output: ${r.tail.map((l) => JSON.stringify(l)).join(' | ')}` : '';
    if (r.error) throw new DeployError(`${action} commands could not run: ${r.error}${tail}`);
    if (r.timedOut) throw new DeployError(`${action} commands timed out after ${Math.round(timeoutMs / 1000)}s and were stopped${tail}`);
    if (r.exitCode !== 0) throw new DeployError(`${action} commands failed with exit code ${r.exitCode ?? 'none'}${tail}`);
    this.ctx.log(`[${action}] done`);
  }

  private fallbackCwd(rel: Deployed): string {
    // Commands that need the release's files fail on their own; the others still run.
    return rel.releaseId ? join(this.ctx.home, 'releases', rel.releaseId) : this.ctx.home;
  }

  // ---- markers -----------------------------------------------------------------------------------

  private markerPath(releaseId: string): string {
    return join(this.ctx.home, 'releases', releaseId, SCRIPT_MARKER);
  }

  private async readMarker(releaseId: string): Promise<Deployed | null> {
    if (!/^[A-Za-z0-9-]+$/.test(releaseId)) return null;
    try {
      const m = JSON.parse(await readFile(this.markerPath(releaseId), 'utf8')) as Deployed;
      return m.projectId === this.ctx.projectId && m.environment === this.ctx.env.name ? m : null;
    } catch {
      return null;
    }
  }

  private async writeMarker(m: Deployed): Promise<void> {
    const path = this.markerPath(m.releaseId);
    await mkdir(join(this.ctx.home, 'releases', m.releaseId), { recursive: true });
    await writeFile(`${path}.tmp`, JSON.stringify(m));
    await rename(`${path}.tmp`, path);
  }

  private async removeMarker(releaseId: string): Promise<void> {
    if (/^[A-Za-z0-9-]+$/.test(releaseId)) await rm(this.markerPath(releaseId), { force: true });
  }

  /** Deploys of this environment the user's system still runs, oldest first. */
  private async markers(): Promise<Deployed[]> {
    let names: string[];
    try {
      names = await readdir(join(this.ctx.home, 'releases'));
    } catch {
      return [];
    }
    const found = await Promise.all(names.map((n) => (existsSync(this.markerPath(n)) ? this.readMarker(n) : null)));
    return found.filter((m): m is Deployed => m !== null).sort((a, b) => a.deployedAt - b.deployedAt || a.number - b.number);
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

/** Every command echoed as `$ command` before it runs; the first failing one stops the script. */
export function scriptOf(commands: string[]): string {
  const out = [SHELL.endsWith('bash') ? 'set -eo pipefail' : 'set -e'];
  for (const c of commands) {
    out.push(`printf '%s\\n' ${shellQuote(`$ ${c.includes('\n') ? `${c.split('\n')[0]} ...` : c}`)}`);
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
  /** The last lines of output (masked). */
  tail: string[];
}

/** Runs `commands` in one shell, in its own process group, streaming masked output line by line. */
export function runCommands(o: { commands: string[]; cwd: string; env: Record<string, string>; timeoutMs: number; secrets: string[]; log: (line: string) => void }): Promise<CommandsResult> {
  return new Promise((resolve) => {
    const tail: string[] = [];
    const masker = o.secrets.length ? new SecretMasker(o.secrets) : null;
    const emit = (line: string) => {
      const l = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}… (cut)` : line;
      tail.push(l);
      if (tail.length > TAIL_LINES) tail.shift();
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
      return resolve({ exitCode: null, timedOut: false, error: (err as Error).message, tail });
    }
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
      resolve({ exitCode, timedOut, error, tail });
    });
  });
}
