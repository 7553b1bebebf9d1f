import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createView, pickViewMode, useColor, JsonView, PlainView, TtyView } from '../../../src/cli/view/index.js';
import { stripAnsi, visibleWidth, sanitizeLine, truncate } from '../../../src/cli/view/ansi.js';
import { formatDuration } from '../../../src/cli/view/model.js';
import type { RunEvent } from '../../../src/pipeline/events.js';
import type { RunView } from '../../../src/cli/view/types.js';
import { Clock, FakeStream, T0, failingRun, passingRun } from './run-events.js';

// Timestamps in the plain view are local time; make "local" UTC so T0 prints as 12:00:00.000.
process.env.TZ = 'UTC';

const SGR = /\u001b\[[0-9;]*m/;

/** Feeds events, moving the fake clock to each event's time. */
function play(view: RunView, clock: Clock, events: RunEvent[]): void {
  for (const e of events) {
    clock.t = e.at;
    view.onEvent(e);
  }
}

function runPlain(events = failingRun(), color = false) {
  const out = new FakeStream();
  const clock = new Clock();
  const view = createView('plain', { out, color, now: clock.now });
  play(view, clock, events);
  view.close();
  return out.text;
}

describe('plain view', () => {
  test('one timestamped line per state change and log line, prefixed with the job', () => {
    const lines = runPlain().split('\n');
    assert.deepEqual(lines.slice(0, 7), [
      '12:00:00.000 ▶ pipeline a1b2c3d4 started on main @ 4be1c0de: 5 jobs in build → test → deploy',
      '12:00:00.005 [build] ▶ started',
      '12:00:00.006 [build] $ npm run build',
      '12:00:00.650 [build] compiled 42 files',
      '12:00:01.205 [build] wrote dist/',
      '12:00:01.205 [build] ✓ passed in 1.2s',
      '12:00:01.206 [docs] ○ skipped',
    ]);
    const text = lines.join('\n');
    assert.match(text, /^12:00:01\.611 \[lint\] ⚠ failed \(allowed, exit 1\) in 0\.4s$/m);
    assert.match(text, /^12:00:04\.821 \[deploy\] ⏸ manual: waiting to be started by hand$/m);
    assert.match(text, /^12:00:04\.800 \[unit\] ✗ junit junit\.xml: 1 passed, 1 failed, 1 skipped$/m);
  });

  test('retries: the failed attempt, the retry and the new attempt, in order', () => {
    const text = runPlain();
    const order = [
      '[unit] ▶ started\n',
      '[unit] not ok 1 - computes the total\n',
      '[unit] ✗ failed (exit 1, attempt 1 of 2) in 1.8s\n',
      '[unit] ↻ retrying (attempt 2 of 2)\n',
      '[unit] ▶ started (attempt 2 of 2)\n',
      '[unit] line 1 of attempt 2\n',
      '[unit] # fail 1\n',
      '[unit] ✗ failed (exit 1, attempt 2 of 2) in 1.8s\n',
      '✗ pipeline failed in 4.8s\n',
    ];
    let pos = -1;
    for (const s of order) {
      const i = text.indexOf(s, pos + 1);
      assert.ok(i > pos, `expected ${JSON.stringify(s)} after position ${pos}`);
      pos = i;
    }
  });

  test('log chunks are joined into whole lines; the remainder is flushed when the job ends', () => {
    const text = runPlain();
    // "compiled 42 fi" + "les\n..." printed once, whole, at the time the line completed.
    assert.equal(text.match(/compiled 42/g)!.length, 1);
    // CRLF from the tool: no stray \r.
    assert.ok(!text.includes('\r'));
    assert.match(text, /^12:00:02\.000 \[unit\] TAP version 13$/m);
    assert.match(text, /^12:00:02\.100 \[unit\] not ok 1 - computes the total$/m);
    assert.match(text, /^12:00:02\.150 \[unit\] Error: connect ECONNREFUSED 127\.0\.0\.1:5432$/m);
    // "1 problem" had no newline: flushed just before lint's state line.
    assert.match(text, /\[lint\] 1 problem\n12:00:01\.611 \[lint\] ⚠ failed/);
    assert.match(text, /\[unit\] # fail 1\n12:00:04\.820 \[unit\] ✗ failed/);
  });

  test('streams of one job are buffered separately; progress bars keep their final state', () => {
    const out = new FakeStream();
    const view = new PlainView({ out, color: false, now: () => T0 });
    const base = { pipelineId: 'p', jobId: 'j', attempt: 1, at: T0 } as const;
    view.onEvent({ ...base, type: 'job.state', status: 'running' });
    view.onEvent({ ...base, type: 'job.log', stream: 'stdout', text: 'half of ' });
    view.onEvent({ ...base, type: 'job.log', stream: 'stderr', text: 'warning: whole\n' });
    view.onEvent({ ...base, type: 'job.log', stream: 'stdout', text: 'a line\n10%\r50%\r100%\n' });
    view.onEvent({ ...base, type: 'job.log', stream: 'stdout', text: '\u001b[2K\u001b[1Gcolored \u001b[32mok\u001b[0m\n' });
    const lines = out.text.trimEnd().split('\n').map((l) => l.replace(/^\S+ /, ''));
    assert.deepEqual(lines, ['[j] ▶ started', '[j] warning: whole', '[j] half of a line', '[j] 100%', '[j] colored ok']);
  });

  test('summary: every job with status and duration, counts, total, and the failed job tail', () => {
    const text = runPlain();
    const summary = text.slice(text.indexOf('✗ pipeline failed in 4.8s'));
    const rows = summary.split('\n').slice(2, 7).map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(rows, [
      '✓ build passed 1.2s',
      '✗ unit failed (exit 1) 3.6s attempt 2 of 2',
      '⚠ lint failed (allowed, exit 1) 0.4s',
      '○ docs skipped',
      '⏸ deploy manual',
    ]);
    assert.match(summary, /^5 jobs: 1 passed, 1 failed, 1 allowed to fail, 1 skipped, 1 manual$/m);
    assert.match(summary, /^tests: 1 passed, 1 failed, 1 skipped$/m);
    assert.match(summary, /^total 4\.8s$/m);
    const tail = summary.slice(summary.indexOf('── unit: last 20 lines of the log ──\n'));
    const tailLines = tail.split('\n').slice(1, 21);
    assert.deepEqual(tailLines.slice(0, 2), ['line 8 of attempt 2', 'line 9 of attempt 2']);
    assert.deepEqual(tailLines.slice(-2), ['not ok 2 - computes the total', '# fail 1']);
    // Only the last attempt, only jobs that failed the pipeline.
    assert.ok(!summary.includes('ECONNREFUSED'));
    assert.ok(!summary.includes('── lint'));
    assert.match(summary, /── failed tests ──\n✗ cart › computes the total \(test\/cart\.test\.mjs\)\n    expected 41 to equal 42\n/);
  });

  test('a green run: short summary, no log tail', () => {
    const text = runPlain(passingRun());
    assert.match(text, /started on tag v1\.2\.0 @ deadbeef: 1 job in test/);
    assert.match(text, /^12:00:00\.002 \[only\] ok$/m);
    assert.match(text, /^12:00:01\.802 ✓ pipeline passed in 1\.8s$/m);
    assert.match(text, /^1 job: 1 passed$/m);
    assert.ok(!text.includes('last 20 lines'));
  });

  test('no color codes without color (even from the job output); colors with color', () => {
    const plain = runPlain(failingRun(), false);
    assert.ok(!plain.includes('\u001b'), 'no escape at all');
    const colored = runPlain(failingRun(), true);
    assert.match(colored, SGR);
    assert.match(colored, /\u001b\[31mnot ok 2 - computes the total\u001b\[39m/);
    assert.equal(stripAnsi(colored), plain);
  });
});

function runTty(opts: { columns?: number; rows?: number; color?: boolean; events?: RunEvent[]; freeze?: boolean } = {}) {
  const out = new FakeStream({ columns: opts.columns ?? 80, rows: opts.rows ?? 40, isTTY: true });
  const clock = new Clock();
  const view = new TtyView({ out, color: opts.color ?? false, now: clock.now });
  for (const e of opts.events ?? failingRun()) {
    if (!opts.freeze) clock.t = e.at;
    view.onEvent(e);
  }
  view.close();
  return { out, text: out.text, view };
}

/** The frames drawn in place: text between a (cursor-up or start) and a clear-down. */
function frames(text: string): string[][] {
  const live = text.slice(0, text.lastIndexOf('\u001b[0J') + 4);
  return live
    .split('\u001b[0J')
    .filter((f) => f.includes('\u001b[2K'))
    .map((f) => f.split('\u001b[2K').slice(1).map((l) => stripAnsi(l).replace(/\n$/, '')));
}

describe('tty view', () => {
  test('redraws in place with cursor-up and clear-line, never clearing the screen', () => {
    const { text } = runTty();
    assert.ok(text.startsWith('\u001b[?25l'), 'hides the cursor');
    assert.match(text, /\r\u001b\[9A\u001b\[2K/);
    assert.ok(!text.includes('\u001b[2J') && !text.includes('\u001b[H'), 'no full-screen clear or home');
    const fs = frames(text);
    assert.ok(fs.length >= 3, `several frames, got ${fs.length}`);
    // The cursor goes back up exactly as many lines as the previous frame had.
    const ups = [...text.matchAll(/\u001b\[(\d+)A/g)].map((m) => Number(m[1]));
    assert.deepEqual(ups, fs.slice(0, -1).map((f) => f.length));
    // Cursor shown again before the report below the tree.
    assert.ok(text.indexOf('\u001b[?25h') > text.lastIndexOf('\u001b[0J'));
  });

  test('final tree: stages in order, each job with its icon, duration, attempts', () => {
    const fs = frames(runTty().text);
    const last = fs.at(-1)!.map((l) => l.replace(/\s+/g, ' ').trimEnd());
    assert.deepEqual(last, [
      '✗ pipeline a1b2c3d4 on main @ 4be1c0de · 4.8s · 4/5 jobs done',
      'build',
      ' ✓ build 1.2s',
      'test',
      ' ✗ unit 1.8s exit 1 attempt 2 of 2',
      ' ⚠ lint 0.4s failed (allowed) exit 1',
      ' ○ docs skipped',
      'deploy',
      ' ⏸ deploy manual',
    ]);
  });

  test('running jobs show a spinner frame and time so far; retries their attempt', () => {
    const fs = frames(runTty().text);
    const retrying = fs.find((f) => f.some((l) => /unit .*attempt 2 of 2/.test(l) && /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/.test(l)));
    assert.ok(retrying, 'a frame with unit running its second attempt');
    const running = fs.find((f) => f.some((l) => /^ {2}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] unit +0\.4s$/.test(l)));
    assert.ok(running, `a frame with unit running for 0.4s: ${JSON.stringify(fs)}`);
  });

  test('no live logs; after the tree: failed job tails, then JUnit failures', () => {
    const { text } = runTty();
    const after = text.slice(text.lastIndexOf('\u001b[?25h'));
    const before = text.slice(0, text.lastIndexOf('\u001b[?25h'));
    assert.ok(!before.includes('compiled 42 files') && !before.includes('line 8 of attempt 2'));
    assert.ok(!text.includes('compiled 42 files'), 'logs of passed jobs never shown');
    assert.match(after, /✗ pipeline failed in 4\.8s · 5 jobs: 1 passed, 1 failed, 1 allowed to fail, 1 skipped, 1 manual/);
    assert.match(after, /tests: 1 passed, 1 failed, 1 skipped/);
    const tailAt = after.indexOf('── unit: last 20 lines of the log ──');
    const junitAt = after.indexOf('── unit: failed tests (junit.xml) ──');
    assert.ok(tailAt > 0 && junitAt > tailAt);
    const tail = after.slice(tailAt).split('\n').slice(1, 21);
    assert.equal(tail[0], 'line 8 of attempt 2');
    assert.equal(tail[19], '# fail 1');
    assert.match(after.slice(junitAt), /✗ cart › computes the total \(test\/cart\.test\.mjs\)\n    expected 41 to equal 42/);
  });

  test('at most one redraw per 100 ms of the clock', () => {
    // Frozen clock: the first event draws, everything else waits for the timer; then the final tree.
    assert.equal(frames(runTty({ freeze: true }).text).length, 2);
    // The whole run spans 4.83 s: at most ~49 live frames, and far fewer than the 60 events.
    const n = frames(runTty().text).length;
    assert.ok(n <= 4830 / 100 + 2, `${n} frames`);
  });

  test('fits the terminal width: long names are cut with …', () => {
    const events = failingRun();
    const started = events[0] as Extract<RunEvent, { type: 'pipeline.started' }>;
    started.jobs[2]!.name = 'unit: [node=20, os=linux, database=postgresql-16, shard 3/4]';
    const { text } = runTty({ columns: 40, events });
    for (const f of frames(text)) for (const l of f) assert.ok(visibleWidth(l) <= 39, `too wide: ${JSON.stringify(l)}`);
    const last = frames(text).at(-1)!;
    assert.ok(last.some((l) => /✗ unit: \[node=20.*…/.test(l)), JSON.stringify(last));
  });

  test('fits the terminal height while live; the final tree is complete', () => {
    const { text } = runTty({ rows: 6 });
    const fs = frames(text);
    for (const f of fs.slice(0, -1)) assert.ok(f.length <= 5, `frame of ${f.length} lines`);
    assert.equal(fs.at(-1)!.length, 9);
  });

  test('colors only when asked: cursor control, but no SGR, without color', () => {
    const plain = runTty({ color: false }).text;
    assert.doesNotMatch(plain, SGR);
    assert.match(runTty({ color: true }).text, /\u001b\[32m✓\u001b\[39m/);
  });

  test('keeps drawing spinner frames on a timer while a job runs; close() stops it', async () => {
    const out = new FakeStream({ columns: 80, rows: 20, isTTY: true });
    let t = T0;
    const view = new TtyView({ out, color: false, now: () => t });
    const [started, running] = passingRun();
    view.onEvent(started!);
    view.onEvent(running!);
    const before = out.chunks.length;
    // Wait (up to 3 s, the machine may be busy) for the interval to redraw on its own.
    for (let waited = 0; out.chunks.length === before && waited < 3000; waited += 50) {
      t += 50;
      await sleep(50);
    }
    assert.ok(out.chunks.length > before, 'redrawn by the timer');
    view.close();
    view.close();
    const after = out.chunks.length;
    assert.ok(out.text.endsWith('\u001b[?25h'), 'cursor restored on close');
    await sleep(250);
    assert.equal(out.chunks.length, after, 'nothing drawn after close');
    view.onEvent(passingRun()[3]!);
    assert.equal(out.chunks.length, after, 'events after close are ignored');
  });
});

describe('json view', () => {
  test('one JSON object per line per event, as they are, then a summary', () => {
    const out = new FakeStream();
    const clock = new Clock();
    const events = failingRun();
    const view = createView('json', { out, color: true, now: clock.now });
    assert.ok(view instanceof JsonView);
    play(view, clock, events);
    view.close();
    const lines = out.text.trimEnd().split('\n');
    assert.equal(lines.length, events.length + 1);
    const parsed = lines.map((l) => JSON.parse(l));
    assert.deepEqual(parsed.slice(0, -1), JSON.parse(JSON.stringify(events)));
    assert.doesNotMatch(out.text, SGR);
    const summary = parsed.at(-1);
    assert.equal(summary.type, 'summary');
    assert.equal(summary.status, 'failed');
    assert.equal(summary.durationMs, 4830);
    assert.deepEqual(
      summary.jobs.map((j: { name: string; status: string; attempt: number }) => `${j.name}:${j.status}:${j.attempt}`),
      ['build:success:1', 'unit:failed:2', 'lint:failed:1', 'docs:skipped:0', 'deploy:manual:0'],
    );
    assert.equal(summary.jobs[2].allowedFailure, true);
    assert.equal(summary.jobs[1].durationMs, 3610);
    assert.deepEqual(summary.tests, { tests: 3, failures: 1, errors: 0, skipped: 1 });
    assert.equal(summary.counts.failed, 1);
  });
});

describe('choosing a view', () => {
  test('pickViewMode: --json, then a real terminal, else plain', () => {
    assert.equal(pickViewMode({ json: true, stream: { isTTY: true }, env: {} }), 'json');
    assert.equal(pickViewMode({ json: false, stream: { isTTY: true }, env: { TERM: 'xterm-256color' } }), 'tty');
    assert.equal(pickViewMode({ json: false, stream: { isTTY: true }, env: { TERM: 'dumb' } }), 'plain');
    assert.equal(pickViewMode({ json: false, stream: { isTTY: false }, env: {} }), 'plain');
    assert.equal(pickViewMode({ json: false, stream: {}, env: {} }), 'plain');
  });

  test('useColor: NO_COLOR, FORCE_COLOR, else the TTY', () => {
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1', FORCE_COLOR: '1' }), false);
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '' }), true);
    assert.equal(useColor({ isTTY: false }, { FORCE_COLOR: '1' }), true);
    assert.equal(useColor({ isTTY: false }, { FORCE_COLOR: '' }), true);
    assert.equal(useColor({ isTTY: true }, { FORCE_COLOR: '0' }), false);
    assert.equal(useColor({ isTTY: true }, {}), true);
    assert.equal(useColor({ isTTY: false }, {}), false);
  });

  test('createView builds each kind', () => {
    const out = new FakeStream();
    assert.ok(createView('tty', { out, color: false }) instanceof TtyView);
    assert.ok(createView('plain', { out, color: false }) instanceof PlainView);
  });
});

describe('helpers', () => {
  test('durations, truncation, sanitizing', () => {
    assert.deepEqual([0, 449, 1800, 59_999, 65_000, 3_725_000].map(formatDuration), ['0.0s', '0.4s', '1.8s', '59.9s', '1m 05s', '1h 02m']);
    assert.equal(truncate('abcdefgh', 5), 'abcd…');
    assert.equal(truncate('abc', 5), 'abc');
    assert.equal(visibleWidth('\u001b[31m日本\u001b[39m'), 4);
    assert.equal(sanitizeLine('a\u0007b\u001b]0;title\u0007c', false), 'abc');
    assert.equal(sanitizeLine('\u001b[31mred', true), '\u001b[31mred\u001b[0m');
  });
});
