import { test } from 'node:test';
import assert from 'node:assert/strict';
import { start } from '../src/server.js';

test('answers /healthz and /version over real HTTP', async () => {
  const server = await start(0);
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
    assert.ok((await (await fetch(`${base}/version`)).json()).version);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    server.close();
  }
});
