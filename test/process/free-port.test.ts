// Ports picked for listeners bound later stay out of the kernel's ephemeral range, where an
// outgoing connection could take them first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../../src/process/free-port.js';

test('freePort answers a bindable port below the ephemeral range', async () => {
  const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    assert.ok(port >= 10_000 && port < lo!, `port ${port} is below the ephemeral range starting at ${lo}`);
    seen.add(port);
    const s = createServer();
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.listen(port, '127.0.0.1', res);
    });
    await new Promise((r) => s.close(r));
  }
  assert.ok(seen.size > 15, `picks are spread out: ${[...seen].join(', ')}`);
});
