// The server's own runner, run as a child process. A job is a process spawned by its runner,
// and a process's spawn costs grow with its memory: from the server (the embedded PostgreSQL
// lives in its memory) every spawn cost several times what it costs from a small runner. A
// child also keeps a crashing job runner from taking the API down. It stops when the server
// does, and by itself if the server dies (its stdin closes).
import { spawn, type ChildProcess } from 'node:child_process';
import { selfCommand } from '../self-command.js';

export interface ChildRunner {
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

/** What jobs must never see of the server's environment: jobs inherit their runner's. */
const SERVER_ONLY = ['DATABASE_URL', 'FERRY_MASTER_KEY', 'FERRY_TOKEN', 'FERRY_TEST_DATABASE_URL', 'PGPASSWORD'];

function runnerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of SERVER_ONLY) delete out[k];
  return out;
}

export function startChildRunner(o: { url: string; token: string; concurrency: number; workDir: string }): ChildRunner {
  let child: ChildProcess | undefined;
  let stopping = false;
  const start = () => {
    const self = selfCommand(['runner', '--server', o.url, '-j', String(o.concurrency), '--work-dir', o.workDir, '--exit-with-parent']);
    child = spawn(self.command, self.args, {
      // The token travels in the environment, never on a command line others can read.
      env: { ...runnerEnv(process.env), FERRY_RUNNER_TOKEN: o.token },
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`ferry server: the in-process runner stopped (${signal ?? code}); starting it again\n`);
      setTimeout(start, 1000).unref();
    });
  };
  start();
  return {
    get pid() {
      return child?.pid;
    },
    stop() {
      stopping = true;
      return new Promise<void>((resolve) => {
        if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
        // Running jobs get the runner's grace period to stop; after that, no waiting any more.
        const force = setTimeout(() => child?.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
}
