// The lease carries a small commit's files (base64 tar), so a runner starts the job without
// another request; a commit over the limit is left to the download route. Real server, real
// git archive, real tar; the runner side is spoken by hand to see the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobLeaseWire } from '../../src/runner/protocol.js';
import { INLINE_SOURCE_MAX } from '../../src/server/sources.js';
import { makeRepo } from '../helpers/repo.js';
import { testServer } from './harness.js';

test('a small commit travels in the lease; a large one is downloaded', { timeout: 60_000 }, async () => {
  const server = await testServer({ runner: false });
  try {
    const runner = (await server.call<{ token: string }>('POST', '/api/runners', { name: 'by-hand' })).body.token;
    const lease = async () => (await server.call<JobLeaseWire>('POST', '/api/runner/lease', { waitMs: 5000 }, runner)).body;

    const small = makeRepo({ 'ferry.yml': 'one:\n  script: "true"\n', 'src/app.txt': 'hello\n' });
    const p1 = (await server.call<{ id: number }>('POST', '/api/projects', { path: small.dir })).body.id;
    await server.call('POST', `/api/projects/${p1}/pipelines`, {});
    const l1 = await lease();
    assert.ok(l1.source, 'the lease has the files');
    const dir = mkdtempSync(join(tmpdir(), 'ferry-lease-'));
    execFileSync('tar', ['-x', '-C', dir], { input: Buffer.from(l1.source!, 'base64') });
    assert.equal(readFileSync(join(dir, 'src/app.txt'), 'utf8'), 'hello\n');
    assert.equal(readFileSync(join(dir, 'ferry.yml'), 'utf8'), 'one:\n  script: "true"\n');

    // Incompressible content over the limit: no inline copy, the download still works.
    const big = makeRepo({ 'ferry.yml': 'one:\n  script: "true"\n' });
    writeFileSync(join(big.dir, 'blob.bin'), Buffer.from(Array.from({ length: INLINE_SOURCE_MAX + 1024 }, (_, i) => (i * 7919) % 251)));
    execFileSync('git', ['add', '-A'], { cwd: big.dir });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-qm', 'big'], { cwd: big.dir });
    const p2 = (await server.call<{ id: number }>('POST', '/api/projects', { path: big.dir })).body.id;
    await server.call('POST', `/api/projects/${p2}/pipelines`, {});
    const l2 = await lease();
    assert.equal(l2.source, undefined, 'too large to travel in the lease');
    const res = await fetch(`${server.url}/api/runner/jobs/${l2.jobId}/source?attempt=${l2.attempt}`, { headers: { authorization: `Bearer ${runner}` } });
    assert.equal(res.status, 200);
    const dir2 = mkdtempSync(join(tmpdir(), 'ferry-lease-'));
    execFileSync('tar', ['-x', '-C', dir2], { input: Buffer.from(await res.arrayBuffer()) });
    assert.equal(readFileSync(join(dir2, 'blob.bin')).length, INLINE_SOURCE_MAX + 1024);
  } finally {
    await server.close();
  }
});
