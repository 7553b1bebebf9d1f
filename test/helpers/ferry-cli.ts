// The `ferry` command as installed (the bundle, dist/ferry.js) in a child process,
// asynchronously (tests run side by side), with its exit code, as people and jobs run it.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FERRY_MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

/**
 * No colors, no background ingest (reading commands ingest), the embedded store. Not the test
 * runner's NODE_TEST_CONTEXT: Ferry is not one of its test files, and a job's `node --test`
 * that inherited it would skip its tests and pass.
 */
const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
const ENV = { ...inherited, NO_COLOR: '1', FERRY_BACKGROUND_INGEST: '0', DATABASE_URL: '' };

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
}

export function ferry(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [FERRY_MAIN, ...args], { cwd, env: { ...ENV, ...env }, encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      if (typeof code !== 'number') return reject(err);
      resolve({ code, stdout, stderr, out: stdout + stderr });
    });
  });
}
