// The access table, walked route by route against a real server: no token, a token one role
// too weak, a runner token where a person's is needed and the reverse, and the right token.
// docs/api.md must show exactly the table the server enforces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildApp } from '../../src/server/app.js';
import { renderRouteTable } from '../../src/server/route-table.js';
import { ROLES, type Role } from '../../src/store/access.js';
import { fromRoot } from '../helpers/paths.js';
import { testServer } from './harness.js';

test('every route is in docs/api.md with the access the server enforces', async () => {
  const { app, routes } = await buildApp({ db: null as never, home: '/nonexistent', bus: null as never, leaseMs: 1 });
  await app.close();
  const docs = readFileSync(fromRoot('docs', 'api.md'), 'utf8');
  const table = renderRouteTable(routes);
  assert.ok(docs.includes(table), `docs/api.md is out of date; regenerate with \`node scripts/api-table.mjs\`. Expected table:\n${table}`);
});

test('each route answers 401/403 exactly as its access says', { timeout: 120_000 }, async () => {
  const server = await testServer({ runner: false });
  try {
    const tokens: Partial<Record<Role, string>> = { admin: server.token };
    for (const role of ROLES.filter((r) => r !== 'admin')) {
      const r = await server.call<{ token: string }>('POST', '/api/users', { name: `u-${role}`, role });
      assert.equal(r.status, 201);
      tokens[role] = r.body.token;
    }
    const runner = await server.call<{ token: string }>('POST', '/api/runners', { name: 'walker' });
    const runnerToken = runner.body.token;
    const { routes } = await buildApp({ db: null as never, home: '/nonexistent', bus: null as never, leaseMs: 1 }).then(async (x) => (await x.app.close(), x));
    const request = async (method: string, url: string, token: string | null) => {
      const path = url.replace(/:(\w+)/g, 'x0');
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
        body: method === 'GET' ? undefined : '{}',
      });
      await res.arrayBuffer();
      return res.status;
    };
    let walked = 0;
    for (const r of routes) {
      const where = `${r.method} ${r.url} (${r.access})`;
      if (r.access === 'public') {
        assert.notEqual(await request(r.method, r.url, null), 401, where);
        continue;
      }
      if (r.access === 'webhook') continue; // verified by signature, tested with the webhooks
      assert.equal(await request(r.method, r.url, null), 401, `${where} without a token`);
      assert.equal(await request(r.method, r.url, 'fry_not-a-real-token'), 401, `${where} with a made-up token`);
      if (r.access === 'runner') {
        assert.equal(await request(r.method, r.url, server.token), 401, `${where} with a person's token`);
        assert.ok(![401, 403].includes(await request(r.method, r.url, runnerToken)), `${where} with a runner token`);
      } else {
        assert.equal(await request(r.method, r.url, runnerToken), 401, `${where} with a runner token`);
        const need = ROLES.indexOf(r.access);
        if (need > 0) assert.equal(await request(r.method, r.url, tokens[ROLES[need - 1]]!), 403, `${where} with ${ROLES[need - 1]}`);
        assert.ok(![401, 403].includes(await request(r.method, r.url, tokens[r.access]!)), `${where} with ${r.access}`);
      }
      walked++;
    }
    assert.ok(walked >= 20, `walked ${walked} protected routes`);
  } finally {
    await server.close();
  }
});

test('API tokens are stored hashed, never in clear', async () => {
  const server = await testServer({ runner: false });
  try {
    const rows = await server.ctx.db.query<{ hash: string }>('SELECT hash FROM api_tokens UNION ALL SELECT hash FROM runners');
    assert.ok(rows.length >= 1);
    for (const r of rows) {
      assert.match(r.hash, /^[0-9a-f]{64}$/);
      assert.ok(!r.hash.includes(server.token));
    }
  } finally {
    await server.close();
  }
});
