import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryReplayGuard } from '../../../src/server/webhooks/replay.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('the second delivery of an id is a replay', async () => {
  const guard = new MemoryReplayGuard();
  assert.equal(await guard.check('a'), 'new');
  assert.equal(await guard.check('a'), 'replayed');
  assert.equal(await guard.check('b'), 'new');
  assert.equal(await guard.check('a'), 'replayed');
});

test('ids are forgotten after the TTL, and a replay within it restarts the TTL', async () => {
  const c = clock();
  const guard = new MemoryReplayGuard({ ttlMs: 1000, now: c.now });
  assert.equal(await guard.check('a'), 'new');
  c.advance(999);
  assert.equal(await guard.check('a'), 'replayed');
  c.advance(999);
  assert.equal(await guard.check('a'), 'replayed', 'the replay at 999 ms kept it for another TTL');
  c.advance(1000);
  assert.equal(await guard.check('a'), 'new');
});

test('expired ids are dropped, not only replaced', () => {
  const c = clock();
  const guard = new MemoryReplayGuard({ ttlMs: 1000, now: c.now });
  for (let i = 0; i < 50; i++) guard.seen(`id-${i}`);
  c.advance(1000);
  guard.seen('fresh');
  assert.equal(guard.size, 1);
});

test('size is bounded, forgetting the least recently seen first', () => {
  const guard = new MemoryReplayGuard({ maxEntries: 3 });
  for (const id of ['a', 'b', 'c']) assert.equal(guard.seen(id), false);
  assert.equal(guard.seen('a'), true); // a is now the most recent
  assert.equal(guard.seen('d'), false); // evicts b
  assert.equal(guard.size, 3);
  assert.equal(guard.seen('a'), true);
  assert.equal(guard.seen('c'), true);
  assert.equal(guard.seen('d'), true);
  assert.equal(guard.seen('b'), false, 'b was evicted');
  for (let i = 0; i < 1000; i++) guard.seen(`x${i}`);
  assert.equal(guard.size, 3);
});
