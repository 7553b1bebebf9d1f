// The router's own HTTP client (src/edge/upstream.ts) against upstreams that answer with raw
// bytes: every way a response can be framed, split at awkward places, and connections that the
// upstream closes under the router.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { upstreamSettings } from '../../src/edge/upstream.js';
import { request, route, testEdge, upstream, type TestEdge } from './harness.js';

let t: TestEdge;

before(async () => {
  t = await testEdge();
});

after(async () => {
  await t.close();
});

interface RawUpstream {
  url: string;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

/**
 * An upstream speaking raw bytes: for each request (its head, read up to the blank line) it writes
 * the pieces `answer` returns, 5 ms apart, so that they reach the router as separate reads.
 */
async function rawUpstream(answer: (head: string, onConnection: number) => { pieces: (string | Buffer)[]; close?: boolean; reset?: boolean }): Promise<RawUpstream> {
  const sockets = new Set<net.Socket>();
  const u: RawUpstream = { url: '', connections: 0, requests: [], close: async () => {} };
  const server = net.createServer((s) => {
    u.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    let n = 0;
    s.on('data', async (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) !== -1) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        u.requests.push(head);
        const { pieces, close, reset } = answer(head, ++n);
        if (reset) return void s.destroy();
        for (const p of pieces) {
          s.write(p);
          await new Promise((r) => setTimeout(r, 5));
        }
        if (close) s.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  u.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return u;
}

async function via(name: string, up: RawUpstream | { url: string }): Promise<string> {
  const r = await t.client.putRoute(name, route({ version: 'raw', urls: [up.url] }));
  return `http://127.0.0.1:${r.port}`;
}

test('Content-Length bodies, split anywhere, over one reused connection', async () => {
  const up = await rawUpstream(() => ({ pieces: ['HTTP/1.1 200 OK\r\nContent-Len', 'gth: 11\r\nX-A: 1\r\n', '\r\nhello', ' world'] }));
  try {
    const url = await via('length', up);
    for (let i = 0; i < 5; i++) {
      const a = await request(`${url}/n${i}`);
      assert.equal(a.status, 200);
      assert.equal(a.body, 'hello world');
      assert.equal(a.headers['x-a'], '1');
      assert.equal(a.headers['content-length'], '11');
    }
    assert.equal(up.connections, 1, 'keep-alive: one upstream connection for 5 requests');
    assert.match(up.requests[0], /^GET \/n0 HTTP\/1\.1\r\n/);
  } finally {
    await up.close();
  }
});

test('chunked bodies with extensions, split size lines, trailers', async () => {
  const up = await rawUpstream(() => ({
    pieces: ['HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n', '5;ext=1\r\nhel', 'lo\r\n', '1', '\r\n \r', '\n6\r\nworld!\r\n0\r\nX-T: x\r\n', '\r\n'],
  }));
  try {
    const url = await via('chunked', up);
    for (let i = 0; i < 3; i++) {
      const a = await request(url + '/');
      assert.equal(a.status, 201);
      assert.equal(a.body, 'hello world!');
      assert.equal(a.headers['trailer'], undefined, 'no trailers are passed on, so none are announced');
    }
    assert.equal(up.connections, 1);
    // An HTTP/1.0 client gets the body as is, ended by the end of the connection.
    const old = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(url).port), '127.0.0.1', () => s.write('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(old, /^HTTP\/1\.1 201 Created\r\n/);
    assert.doesNotMatch(old, /transfer-encoding/i);
    assert.ok(old.endsWith('\r\n\r\nhello world!'), JSON.stringify(old));
  } finally {
    await up.close();
  }
});

test('interim 1xx answers are skipped; HEAD, 204 and 304 have no body', async () => {
  const up = await rawUpstream((head) => {
    if (head.startsWith('HEAD')) return { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n'] };
    if (head.includes('/204')) return { pieces: ['HTTP/1.1 204 No Content\r\nX-B: 2\r\n\r\n'] };
    if (head.includes('/304')) return { pieces: ['HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n'] };
    return { pieces: ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'] };
  });
  try {
    const url = await via('interim', up);
    const a = await request(url + '/');
    assert.equal(a.status, 200);
    assert.equal(a.body, 'ok');
    const h = await request(url + '/', { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], '1000');
    assert.equal(h.body, '');
    const n = await request(url + '/204');
    assert.equal(n.status, 204);
    assert.equal(n.headers['x-b'], '2');
    const m = await request(url + '/304');
    assert.equal(m.status, 304);
    // And the connection is still good for the next one.
    assert.equal((await request(url + '/')).body, 'ok');
    assert.equal(up.connections, 1);
  } finally {
    await up.close();
  }
});

test('a body framed by the end of the connection, and HTTP/1.0 upstreams', async () => {
  const up = await rawUpstream((head) =>
    head.includes('/old') ? { pieces: ['HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold'], close: true } : { pieces: ['HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ', 'the end'], close: true },
  );
  try {
    const url = await via('close', up);
    assert.equal((await request(url + '/')).body, 'until the end');
    assert.equal((await request(url + '/old')).body, 'old');
    assert.equal((await request(url + '/')).body, 'until the end');
    assert.equal(up.connections, 3, 'connections that end are not reused');
  } finally {
    await up.close();
  }
});

test('an upstream that drops a kept-alive connection as a request arrives: a GET is retried, a POST is not', async () => {
  // The race of every keep-alive pool: the upstream closes an idle connection just as the router
  // sends on it. Here: the second request on each connection is met with a close.
  const up = await rawUpstream((_head, n) => (n === 2 ? { pieces: [], reset: true } : { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'] }));
  try {
    const url = await via('sneaky', up);
    for (let i = 0; i < 10; i++) assert.equal((await request(url + '/')).status, 200);
    assert.ok(up.connections >= 5, `${up.connections} connections`);
    const posts = [];
    for (let i = 0; i < 4; i++) posts.push((await request(url + '/', { method: 'POST', body: 'x' })).status);
    assert.deepEqual(posts.sort(), [200, 200, 502, 502]);
  } finally {
    await up.close();
  }
});

test('broken answers are a 502 and a proxy error', async () => {
  const up = await rawUpstream((head) => (head.includes('/garbage') ? { pieces: ['SMTP ready\r\n\r\n'] } : { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'], close: true }));
  try {
    const url = await via('broken', up);
    const g = await request(url + '/garbage', { method: 'POST', body: 'x' });
    assert.equal(g.status, 502);
    assert.match(g.body, /EPROTO/);
    // Cut short after the head went to the client: the client's connection is cut too.
    await assert.rejects(request(url + '/short'));
    const m = await t.client.routeMetrics('broken');
    assert.equal(m.versions.raw.proxyErrors, 2);
  } finally {
    await up.close();
  }
});

test('large bodies stream through with backpressure, both ways', async () => {
  const size = 8 << 20;
  const big = await upstream('big', (req, res) => {
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    res.writeHead(200, { 'content-length': size });
    const chunk = Buffer.alloc(64 * 1024, 'y');
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  try {
    const url = await via('big', big);
    // A slow reader: pauses between chunks; the router must not buffer the whole answer.
    const got = await new Promise<number>((resolve, reject) => {
      http.get(url + '/', (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n % (1 << 20) < c.length) {
            res.pause();
            setTimeout(() => res.resume(), 5);
          }
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
    });
    assert.equal(got, size);
    const up = await request(url + '/', { method: 'POST', body: Buffer.alloc(size, 'z') });
    assert.equal(up.body, String(size));
  } finally {
    await big.close();
  }
});

test('an upstream that never answers is given up on with a 504', async () => {
  const silent = await rawUpstream(() => ({ pieces: [] }));
  const saved = upstreamSettings.responseTimeoutMs;
  upstreamSettings.responseTimeoutMs = 100;
  try {
    const url = await via('silent', silent);
    const a = await request(url + '/');
    assert.equal(a.status, 504);
    assert.match(a.body, /no answer in 0.1 s/);
    const m = await t.client.routeMetrics('silent');
    assert.equal(m.versions.raw.proxyErrors, 1);
    assert.equal(m.versions.raw.statusClasses['5xx'], 1);
  } finally {
    upstreamSettings.responseTimeoutMs = saved;
    await silent.close();
  }
});
