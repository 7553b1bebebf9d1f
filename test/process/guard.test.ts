// The tests' daemon guard (test/helpers/procs.ts killWithThisProcess): a test process stopped
// by SIGTERM (a runner's timeout) or SIGINT takes the daemon it started down with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { waitFor } from '../helpers/procs.js';

const procs = new URL('../helpers/procs.js', import.meta.url).href;

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`a daemon started by a test process dies with it on ${signal}`, { timeout: 30_000 }, async () => {
    const script = `import { spawn } from 'node:child_process';
import { killWithThisProcess } from ${JSON.stringify(procs)};
const daemon = spawn('sleep', ['300'], { stdio: 'ignore' });
killWithThisProcess(daemon);
console.log(daemon.pid);
setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout.on('data', (d) => (out += d));
    await waitFor(() => /^\d+\n/.test(out), 10_000, 'the daemon to start');
    const pid = Number(out.trim());
    const exited = new Promise<number | null>((r) => parent.once('exit', (code) => r(code)));
    parent.kill(signal);
    assert.equal(await exited, signal === 'SIGINT' ? 130 : 143);
    await waitFor(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      5000,
      'the daemon to be gone',
    );
  });
}
