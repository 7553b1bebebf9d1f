// The shell executor against real bash processes: output, exit codes, timeouts and cancels
// that kill the job's whole process group (verified through /proc), and no orphans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ShellExecutor } from '../../src/executor/shell.js';
import { processesWith, waitFor } from '../helpers/procs.js';

function collect() {
  const chunks: { stream: string; text: string }[] = [];
  return {
    chunks,
    text: () => chunks.map((c) => c.text).join(''),
    onOutput: (stream: 'stdout' | 'stderr', text: string) => chunks.push({ stream, text }),
  };
}

const cwd = mkdtempSync(join(tmpdir(), 'ferry-shell-'));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd };

test('runs lines in order, echoes each, captures both streams', async () => {
  const out = collect();
  const r = await new ShellExecutor().runScript({
    cwd,
    lines: ['echo one', 'echo two >&2', 'echo "$GREETING"'],
    env: { ...env, GREETING: 'hello there' },
    signal: new AbortController().signal,
    onOutput: out.onOutput,
  });
  assert.equal(r.exitCode, 0);
  assert.equal(r.timedOut, false);
  const text = out.text();
  assert.ok(text.indexOf('$ echo one') < text.indexOf('one\n$ echo two'), text);
  assert.ok(out.chunks.some((c) => c.stream === 'stderr' && c.text.includes('two')));
  assert.match(text, /hello there/);
});

test('the first failing line fails the run with its exit code, later lines do not run', async () => {
  const out = collect();
  const r = await new ShellExecutor().runScript({
    cwd,
    lines: ['echo before', 'exit 7', 'echo after'],
    env,
    signal: new AbortController().signal,
    onOutput: out.onOutput,
  });
  assert.equal(r.exitCode, 7);
  assert.doesNotMatch(out.text(), /^after$/m);
});

test('a failing command inside a pipe fails the line (pipefail)', async () => {
  const r = await new ShellExecutor().runScript({ cwd, lines: ['false | cat'], env, signal: new AbortController().signal, onOutput: () => {} });
  assert.equal(r.exitCode, 1);
});

test('timeout kills the whole process group, background children included', async () => {
  const marker = `ferry-timeout-${randomUUID()}`;
  const out = collect();
  const r = await new ShellExecutor().runScript({
    cwd,
    // Two sleepers: one in the background, one in the foreground; both carry the marker.
    lines: [`bash -c 'exec -a ${marker} sleep 300' &`, `exec -a ${marker} sleep 300`],
    env,
    timeoutMs: 500,
    signal: new AbortController().signal,
    onOutput: out.onOutput,
  });
  assert.equal(r.timedOut, true);
  assert.match(out.text(), /timed out after 500ms/);
  await waitFor(() => processesWith(marker).length === 0, 5000, 'no survivor of the timed-out job');
});

test('cancel stops the job within a second and leaves no process', async () => {
  const marker = `ferry-cancel-${randomUUID()}`;
  const ac = new AbortController();
  const started = Date.now();
  const p = new ShellExecutor().runScript({
    cwd,
    lines: [`bash -c 'exec -a ${marker} sleep 300' &`, `exec -a ${marker} sleep 300`],
    env,
    signal: ac.signal,
    onOutput: () => {},
  });
  await waitFor(() => processesWith(marker).length === 2, 5000, 'both sleepers to start');
  ac.abort();
  const r = await p;
  assert.equal(r.canceled, true);
  assert.ok(Date.now() - started < 10_000);
  await waitFor(() => processesWith(marker).length === 0, 5000, 'no survivor of the canceled job');
});

test('a process that ignores SIGTERM is killed after the grace period', async () => {
  const marker = `ferry-stubborn-${randomUUID()}`;
  const r = await new ShellExecutor().runScript({
    cwd,
    lines: [`bash -c 'trap "" TERM; exec -a ${marker} sleep 300' & wait`],
    env,
    timeoutMs: 300,
    signal: new AbortController().signal,
    onOutput: () => {},
  });
  assert.equal(r.timedOut, true);
  await waitFor(() => processesWith(marker).length === 0, 5000, 'the stubborn process to be killed');
});

test('background processes left by a successful script are cleaned up', async () => {
  const marker = `ferry-leftover-${randomUUID()}`;
  const r = await new ShellExecutor().runScript({
    cwd,
    lines: [`(exec -a ${marker} sleep 300 > /dev/null 2>&1 &)`, 'echo done'],
    env,
    signal: new AbortController().signal,
    onOutput: () => {},
  });
  assert.equal(r.exitCode, 0);
  await waitFor(() => processesWith(marker).length === 0, 5000, 'the leftover background process to be killed');
});
