// The web analysis source and smoke checks against a local HTTP server: status, duration,
// body matching (re2), paths resolved against the new version's address, and no answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { WebCheckSpec } from '../../src/config/types.js';
import { measureWeb, resolveCheckUrl, webCheckVerdict } from '../../src/delivery/analysis/web.js';

const check = (url: string, o: Partial<WebCheckSpec> = {}): WebCheckSpec => ({ url, method: 'GET', timeoutMs: 5000, ...o });

async function serve(t: { after: (fn: () => void) => void }): Promise<{ base: string; seen: string[] }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok: version v2\n');
    } else if (req.url === '/big') {
      res.writeHead(200);
      res.write('x'.repeat(2 << 20));
      res.end('needle');
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/healthz' });
      res.end();
    } else if (req.url === '/hang') {
      /* never answers */
    } else {
      res.writeHead(503);
      res.end('starting');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

test('web: status, duration, status_ok and body_matches of a path on the new version', async (t) => {
  const { base, seen } = await serve(t);
  const m = await measureWeb(check('/healthz', { expectBody: 'version v[0-9]+' }), { newVersionUrl: `${base}/` });
  assert.equal(m.inconclusive, undefined);
  assert.equal(m.values.status, 200);
  assert.equal(m.values.status_ok, 1);
  assert.equal(m.values.body_matches, 1);
  assert.equal(typeof m.values.duration_ms, 'number');
  assert.ok(m.values.duration_ms! >= 0);
  assert.deepEqual(webCheckVerdict(check('/healthz'), m), { ok: true });

  const miss = await measureWeb(check(`${base}/healthz`, { expectBody: '^v3$' }));
  assert.equal(miss.values.body_matches, 0);
  assert.match((webCheckVerdict(check('/healthz', { expectBody: '^v3$' }), miss) as { reason: string }).reason, /does not match \/\^v3\$\//);

  // No expect_body: no body_matches value.
  const plain = await measureWeb(check('/other'), { newVersionUrl: base });
  assert.equal(plain.values.status, 503);
  assert.equal(plain.values.status_ok, 0);
  assert.equal('body_matches' in plain.values, false);
  assert.match((webCheckVerdict(check('/other'), plain) as { reason: string }).reason, /status 503, expected 2xx/);
  const expected503 = await measureWeb(check('/other', { expectStatus: [503] }), { newVersionUrl: base });
  assert.equal(expected503.values.status_ok, 1);

  // Redirects are followed; the method is the spec's.
  assert.equal((await measureWeb(check('/moved'), { newVersionUrl: base })).values.status, 200);
  await measureWeb(check('/healthz', { method: 'HEAD' }), { newVersionUrl: base });
  assert.ok(seen.includes('HEAD /healthz'));

  // Only the first MiB of the body is searched.
  assert.equal((await measureWeb(check('/big', { expectBody: 'needle' }), { newVersionUrl: base })).values.body_matches, 0);
  assert.equal((await measureWeb(check('/big', { expectBody: '^x+' }), { newVersionUrl: base })).values.body_matches, 1);
});

test('web: no answer is inconclusive; what cannot work is an error', async (t) => {
  const { base } = await serve(t);
  const slow = await measureWeb(check('/hang', { timeoutMs: 200 }), { newVersionUrl: base });
  assert.match(slow.inconclusive ?? '', /GET http:\/\/127\.0\.0\.1:\d+\/hang: timed out after 200 ms/);
  assert.equal(typeof slow.values.duration_ms, 'number');
  assert.equal(slow.values.status, undefined);
  assert.equal(webCheckVerdict(check('/hang'), slow).ok, false);

  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as { port: number }).port;
  await new Promise((r) => closed.close(r));
  assert.match((await measureWeb(check(`http://127.0.0.1:${port}/`))).inconclusive ?? '', /ECONNREFUSED/);

  const aborted = new AbortController();
  aborted.abort();
  assert.match((await measureWeb(check('/hang'), { newVersionUrl: base, signal: aborted.signal })).inconclusive ?? '', /aborted/);

  assert.match((await measureWeb(check('/healthz'))).error ?? '', /is a path, and there is no address of the new version/);
  assert.match((await measureWeb(check('file:///etc/passwd'))).error ?? '', /only http and https/);
  assert.match((await measureWeb(check('/healthz', { expectBody: '(' }), { newVersionUrl: base })).error ?? '', /bad expect_body pattern/);
});

test('web: resolving check URLs', () => {
  assert.equal((resolveCheckUrl('/healthz', 'http://127.0.0.1:4100') as URL).href, 'http://127.0.0.1:4100/healthz');
  assert.equal((resolveCheckUrl('/healthz?x=1', 'http://127.0.0.1:4100/app/') as URL).href, 'http://127.0.0.1:4100/healthz?x=1');
  assert.equal((resolveCheckUrl('https://example.test/ping', undefined) as URL).href, 'https://example.test/ping');
  assert.ok(resolveCheckUrl('http://[bad', undefined) instanceof Error);
});
