// A small HTTP service: the application Ferry's example pipeline builds, tests and ships.
import { createServer } from 'node:http';
import { greeting } from './greeting.js';

export const VERSION = process.env.APP_VERSION ?? '1.0.0';

export function handler(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
  if (url.pathname === '/version') return send(res, 200, { version: VERSION });
  if (url.pathname === '/') return send(res, 200, { message: greeting(url.searchParams.get('name'), process.env.LOCALE) });
  return send(res, 404, { error: 'not found' });
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function start(port = Number(process.env.PORT ?? 8080), host = '127.0.0.1') {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await start();
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
}
