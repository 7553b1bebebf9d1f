// A small HTTP service: the application Ferry's example pipeline builds, tests and ships.
//   /?name=Ada&lang=de   a greeting        /version   what is running     /healthz   for the router
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { greeting } from './greeting.js';

// The build job writes build.json beside this file; a checkout that was not built says "dev".
function buildInfo() {
  try {
    return JSON.parse(readFileSync(new URL('./build.json', import.meta.url), 'utf8'));
  } catch {
    return { version: 'dev', commit: null };
  }
}
const BUILD = buildInfo();

export function handler(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
    if (url.pathname === '/version') return send(res, 200, BUILD);
    if (url.pathname === '/') return send(res, 200, { message: greeting(url.searchParams.get('name'), url.searchParams.get('lang') ?? 'en') });
    return send(res, 404, { error: 'not found' });
  } catch (err) {
    // A bug answers 500 rather than taking the process down: the router and the canary's
    // analysis see it as an error rate.
    console.error(`${req.method} ${req.url}: ${err.stack ?? err}`);
    return send(res, 500, { error: 'internal error' });
  }
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
  console.log(`sample-service ${BUILD.version} listening on http://127.0.0.1:${server.address().port}`);
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
