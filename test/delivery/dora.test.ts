// The DORA figures of a release history (src/delivery/dora.ts), on hand-made histories whose
// answers are worked out in the comments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doraFigures, type DoraRelease } from '../../src/delivery/dora.js';

const t0 = Date.parse('2026-11-02T09:00:00Z');
const at = (min: number) => new Date(t0 + min * 60_000).toISOString();
const rel = (sha: string, status: DoraRelease['status'], start: number, end: number | null): DoraRelease => ({ sha, status, startedAt: at(start), finishedAt: end === null ? null : at(end) });

test('four figures from a history of succeeded, rolled back, failed and aborted releases', () => {
  const releases = [
    rel('a', 'succeeded', 10, 20), // commit at 0: lead 20 min
    rel('b', 'rolled_back', 100, 104), // restore 4 min
    rel('c', 'succeeded', 200, 230), // commit at 150: lead 80 min
    rel('d', 'failed', 300, 310), // restore 10 min
    rel('e', 'aborted', 400, 401), // a person's decision: neither a deployment nor a failure
    rel('f', 'succeeded', 500, 505), // commit at 495: lead 10 min
  ];
  const commits = new Map([
    ['a', at(0)],
    ['b', at(95)],
    ['c', at(150)],
    ['d', at(290)],
    ['e', at(399)],
    ['f', at(495)],
  ]);
  const d = doraFigures(releases, commits, new Date(t0 + 2 * 24 * 3_600_000 + 10 * 60_000));
  assert.equal(d.deployments, 3);
  assert.equal(d.failures, 2);
  assert.equal(d.changeFailureRate, 2 / 5);
  assert.equal(d.leadTimeMs, 20 * 60_000, 'median of 20, 80 and 10 minutes');
  assert.equal(d.timeToRestoreMs, 7 * 60_000, 'median of 4 and 10 minutes');
  assert.equal(d.deploymentsPerDay, 1.5, 'three deployments over the two days since the first release started');
});

test('an empty history has no rates, and a short one is not blown up into thousands a day', () => {
  const none = doraFigures([], new Map());
  assert.equal(none.deployments, 0);
  assert.equal(none.changeFailureRate, null);
  assert.equal(none.leadTimeMs, null);
  assert.equal(none.timeToRestoreMs, null);
  const quick = doraFigures([rel('a', 'succeeded', 0, 1), rel('b', 'succeeded', 2, 3)], new Map(), new Date(t0 + 5 * 60_000));
  assert.equal(quick.deploymentsPerDay, 48, 'two in under an hour counts as two per hour');
  assert.equal(quick.leadTimeMs, null, 'no commit times, no lead time');
});
