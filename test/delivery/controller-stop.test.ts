// stop() while a tick is under way: the controller must not arm another tick after it, or the
// server's process never exits on SIGTERM (it did once: a replica hung after "stopping…").
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeliveryController } from '../../src/delivery/controller.js';
import { openDb } from '../../src/store/open.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real controller on a real (embedded) store whose ticks are counted and made slow. */
class CountingController extends DeliveryController {
  ticks = 0;
  inTick = false;
  override async tick(): Promise<void> {
    this.ticks++;
    this.inTick = true;
    try {
      await sleep(100);
      await super.tick();
    } finally {
      this.inTick = false;
    }
  }
}

test('a controller stopped in the middle of a tick ticks no more', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-controller-stop-'));
  const db = await openDb({ home, snapshot: false });
  try {
    const c = new CountingController({
      db,
      home,
      owner: 'test',
      edge: () => Promise.reject(new Error('no edge in this test')),
      repoOf: () => Promise.reject(new Error('no repository in this test')),
      masterKey: Buffer.alloc(32),
      publish: () => undefined,
      tickMs: 5,
    });
    c.start();
    while (!c.inTick) await sleep(5);
    await c.stop();
    const after = c.ticks;
    await sleep(400);
    assert.equal(c.ticks, after, 'no tick after stop()');
  } finally {
    await db.close();
  }
});
