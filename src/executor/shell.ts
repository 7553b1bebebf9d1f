// Runs a job's lines in bash (sh where bash is missing) on this machine. Each job gets its own
// process group, so a timeout or a cancel kills everything the script started, including
// background children, and no process outlives its job.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { formatDuration } from '../config/duration.js';
import { packageRoot } from '../package-root.js';
import type { Executor, ScriptResult, ScriptRun } from './types.js';

/** Grace period between SIGTERM and SIGKILL of a job's process group. */
const KILL_GRACE_MS = 1000;

/** How long output may keep arriving after the shell exited. */
const PIPE_DRAIN_MS = 2000;

const SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';

/**
 * The script the shell runs: every line echoed as `$ line` before it runs (the way GitLab shows
 * it), `set -e` semantics per line, and the exit code of the first failing line kept.
 */
export function buildScript(lines: string[]): string {
  const out: string[] = [SHELL.endsWith('bash') ? 'set -eo pipefail' : 'set -e'];
  for (const line of lines) {
    const shown = line.includes('\n') ? `${line.split('\n')[0]} # collapsed multi-line command` : line;
    out.push(`printf '%s\\n' ${shellQuote(`$ ${shown}`)}`);
    out.push(line);
  }
  return out.join('\n') + '\n';
}

/**
 * The job's environment with Ferry's `bin/` (a `ferry` launcher) first on PATH: pipelines can call
 * Ferry's own tools, such as `ferry scan`, whatever machine the runner is on, and get the Ferry
 * that runs them rather than whatever else is installed.
 */
function withFerryOnPath(env: Record<string, string>): Record<string, string> {
  const bin = join(packageRoot(), 'bin');
  return { ...env, PATH: env.PATH ? `${bin}${delimiter}${env.PATH}` : bin };
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

export class ShellExecutor implements Executor {
  readonly name = 'shell';

  runScript(run: ScriptRun): Promise<ScriptResult> {
    return new Promise((resolve) => {
      if (run.signal.aborted) return resolve({ exitCode: null, timedOut: false, canceled: true });
      const child = spawn(SHELL, ['-c', buildScript(run.lines)], {
        cwd: run.cwd,
        env: withFerryOnPath(run.env),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      if (child.pid !== undefined) run.onStart?.(child.pid);
      let timedOut = false;
      let canceled = false;
      let exitCode: number | null = null;
      let systemError: string | undefined;
      let killTimer: NodeJS.Timeout | undefined;

      const stop = () => {
        if (child.pid === undefined || killTimer) return;
        killGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
      };
      const onAbort = () => {
        canceled = true;
        stop();
      };
      run.signal.addEventListener('abort', onAbort, { once: true });
      const timeout = run.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            run.onOutput('stderr', `\nferry: job timed out after ${formatDuration(run.timeoutMs!)}; stopping its processes\n`);
            stop();
          }, run.timeoutMs)
        : undefined;

      child.stdout.setEncoding('utf8').on('data', (d: string) => run.onOutput('stdout', d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => run.onOutput('stderr', d));
      child.on('error', (err) => {
        systemError = `could not start ${SHELL}: ${err.message}`;
      });
      child.on('exit', (code, signal) => {
        exitCode = code ?? (signal ? 128 + (osSignals[signal] ?? 0) : null);
        // The shell is gone; whatever it left running in the background goes with it.
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
        // A process that left the group (setsid) may still hold our pipes open: stop waiting for
        // them after a moment rather than hang the job forever.
        setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, PIPE_DRAIN_MS).unref();
      });
      // 'close' waits until the pipes are closed, so no output is lost.
      child.on('close', () => {
        clearTimeout(timeout);
        clearTimeout(killTimer);
        run.signal.removeEventListener('abort', onAbort);
        resolve({ exitCode, timedOut, canceled: canceled && !timedOut, systemError });
      });
    });
  }
}

const osSignals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6, SIGPIPE: 13 };
