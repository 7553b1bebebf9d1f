// `ferry demo` end to end, as `npm start` runs it (not a terminal: plain lines): the real CLI in
// a child process, with its server, runner, edge, the sample service's instances and its users'
// load, all real. Checks what the demo claims against what it prints and what it leaves behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processesUnder, waitFor } from '../helpers/procs.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

interface Run {
  code: number | null;
  out: string;
}

function demo(dir: string, opts: { onOutput?: (out: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  return new Promise((resolve) => {
    // NODE_TEST_CONTEXT would make the sample's own `node --test` report to this test runner.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const child = spawn(process.execPath, [MAIN, 'demo', '--dir', dir], { env: { ...env, NO_COLOR: '1', DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (d: Buffer) => {
      out += d.toString();
      opts.onOutput?.(out, child);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The output for a failure message, its end first: CI shows the start of a long message only. */
function lastFirst(out: string): string {
  const lines = out.trimEnd().split('\n');
  return `last lines:\n${lines.slice(-25).join('\n')}\n\nthe whole output:\n${out}`;
}

/** Processes started by the demo: everything it runs lives under its folder (store, edge, releases). */
async function leftovers(dir: string): Promise<number[]> {
  // A process that is exiting may still be listed for a moment.
  try {
    await waitFor(() => processesUnder(dir).length === 0, 5000);
  } catch {
    // reported below
  }
  return processesUnder(dir);
}

test('ferry demo: v1 reaches production, v2 is rolled back by the canary analysis with figures, v3 reaches production, nothing left running', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-test-'));
  const r = await demo(dir);
  assert.equal(r.code, 0, lastFirst(r.out));
  const out = r.out;
  const at = (needle: string | RegExp) => {
    const i = typeof needle === 'string' ? out.indexOf(needle) : out.search(needle);
    assert.ok(i >= 0, `the demo's output should include ${needle}:\n${out}`);
    return i;
  };
  // v1: every job passed, staging, load gate, the approval by someone else, production.
  const v1 = at('v1: the first release');
  for (const job of ['build', 'lint', 'scan', 'unit', 'staging', 'load-gate', 'production']) assert.match(out.slice(v1), new RegExp(`✓ ${job}\\s`), `job ${job} passed in v1`);
  assert.ok(at('load gate: 300 requests') > v1);
  assert.ok(at(/production#1 +approved by rene/) > v1);
  const v1Live = at('✓ production#1 serves 100% of the traffic');

  // v2: the tests pass, the canary takes traffic, the analysis fails it, the release rolls back.
  const v2 = at('v2: "speak Spanish too"');
  assert.ok(v2 > v1Live);
  assert.match(out.slice(v2), /✓ unit .* 5 tests passed/);
  assert.ok(at(/production#2 +canary production#2 ready beside production#1/) > v2);
  assert.ok(at(/! production#2 +errors: [\d.]+% of \d+ requests failed/) > v2);
  assert.ok(at('✗ production#2 rolled back by itself: analysis failed: errors') > v2);
  const detected = /detected +([\d.]+)s after the canary took its first requests/.exec(out);
  assert.ok(detected, `a detection time is printed:\n${out}`);
  assert.ok(Number(detected[1]) > 0 && Number(detected[1]) < 60, `detection in ${detected[1]}s`);
  const failed = /requests +the canary failed (\d+) of the (\d+) requests it got/.exec(out);
  assert.ok(failed, `the canary's failed requests are printed:\n${out}`);
  assert.ok(Number(failed[1]) > 0 && Number(failed[1]) < Number(failed[2]), `the canary failed part of its requests: ${failed[0]}`);
  assert.match(out, /users +saw \d+ failed requests of \d+ meanwhile/);

  // v3: the fix goes through every canary step to 100%.
  const v3 = at('v3: the fix');
  assert.match(out.slice(v3), /✓ unit .* 6 tests passed/);
  assert.ok(at(/production#3 +step 5\/6: 100% of the traffic to the canary/) > v3);
  assert.ok(at('✓ production#3 serves 100% of the traffic') > v3);

  // The summary: releases, DORA, the audit chain, how to look around.
  const sum = at('▸ Summary');
  assert.match(out.slice(sum), /production#1 +succeeded/);
  assert.match(out.slice(sum), /production#2 +rolled back/);
  assert.match(out.slice(sum), /production#3 +succeeded/);
  assert.match(out.slice(sum), /3 releases to production, 1 rolled back by the analysis/);
  assert.match(out.slice(sum), /change failure rate: 33% \(1 of 3\)/);
  assert.match(out.slice(sum), /lead time for changes .*: [\d.]+s/);
  assert.match(out.slice(sum), /✓ audit log +\d+ entries, hash chain verified/);
  assert.match(out.slice(sum), /admin token is\n +fry_/);
  assert.match(out, /stopped the server, the edge and the service's instances/);

  assert.deepEqual(await leftovers(dir), [], 'no process of the demo is left running');
});

/**
 * Runs the demo and, once staging's instances run and the edge is up (the worst moment to leave
 * things behind), does `act` to it; checks it exits 130 and leaves no process behind.
 */
async function stopAtStaging(prefix: string, act: (child: ReturnType<typeof spawn>) => void): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let done = false;
  const r = await demo(dir, {
    onOutput: (out, child) => {
      if (!done && /✓ staging /.test(out)) {
        done = true;
        act(child);
      }
    },
  });
  assert.ok(done, `the demo reached staging:\n${r.out}`);
  assert.equal(r.code, 130, lastFirst(r.out));
  assert.deepEqual(await leftovers(dir), [], 'no process of the demo is left running');
  return r;
}

test('ferry demo stopped with Ctrl-C mid-release stops everything it started and exits 130', { timeout: 180_000 }, async () => {
  const r = await stopAtStaging('ferry-demo-int-', (child) => child.kill('SIGINT'));
  assert.match(r.out, /Interrupted: stopping everything/);
});

test('ferry demo whose reader goes away (`ferry demo | head`) stops everything it started', { timeout: 180_000 }, async () => {
  // The next line the demo writes meets EPIPE.
  await stopAtStaging('ferry-demo-pipe-', (child) => child.stdout!.destroy());
});
