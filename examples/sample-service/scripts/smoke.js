// Starts the built service on a free loopback port and checks it answers like it should.
import { start } from '../dist/src/server.js';

const server = await start(0);
const base = `http://127.0.0.1:${server.address().port}`;
try {
  const health = await fetch(`${base}/healthz`);
  if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);
  const { message } = await (await fetch(`${base}/?name=Ferry`)).json();
  console.log(`smoke (${process.env.LOCALE}): ${message}`);
} finally {
  server.close();
}
