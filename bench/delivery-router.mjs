#!/usr/bin/env node
// bench/delivery-router: the edge router against the app directly and against nginx (1 worker)
// with the same weighted upstream (stable 80 / canary 20, keep-alive to the upstreams), on loopback.
// Prints; asserts nothing. Goals: router ≥ 0.6× nginx's requests/s, added p99 < 2 ms.
//
//   1. throughput: autocannon, 50 connections, 10 s, as fast as it goes
//   2. latency at a steady rate every target sustains (BENCH_RATE, default 2000 req/s, requests
//      spread evenly by test/helpers/load.ts rather than autocannon's per-connection timers, which
//      fire all 50 connections in the same millisecond and measure their own bursts): p50/p99 and
//      what the proxy adds over the app alone.
//
// Each figure is the median of BENCH_ROUNDS rounds (default 3) taken in turn (direct, router,
// nginx, direct, ...), so that a neighbour's load on a shared machine falls on every target alike;
// the proxies' CPU time per request (from /proc) is printed too: it is what the load of other
// processes disturbs least.
//
// Needs `npm run build` first, and nginx on PATH (apt-get install -y nginx-light) for its column.
// BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_RATE, BENCH_ROUNDS change the figures above.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const root = new URL('..', import.meta.url).pathname;
const { EdgeClient } = await import(join(root, 'dist/src/edge/client.js'));
const { startLoad } = await import(join(root, 'dist/test/helpers/load.js'));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const app = join(root, 'test/fixtures/apps/sample-app.mjs');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** CPU time (user + system, ms) a process has used so far. */
const cpuMs = (pid) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
};
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

const home = mkdtempSync(join(tmpdir(), 'ferry-bench-router-'));
const children = [];

async function startEdge() {
  const child = spawn(process.execPath, [join(root, 'dist/ferry.js'), 'edge', '--admin-port', '0', '--home', home], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  const info = join(home, 'edge', 'admin.json');
  while (!existsSync(info) || JSON.parse(readFileSync(info, 'utf8')).pid !== child.pid) {
    if (child.exitCode !== null) throw new Error('the edge exited');
    await sleep(20);
  }
  return { child, client: EdgeClient.fromHome(home) };
}

const instance = (version) => ({
  command: `exec ${process.execPath} ${app}`,
  cwd: home,
  env: { VERSION: version },
  port: 0,
  readiness: { path: '/healthz', intervalMs: 50, timeoutMs: 1000, failureThreshold: 3 },
  liveness: null,
  logFile: join(home, `${version}.log`),
  labels: {},
});

function startNginx(port, v1, v2) {
  const which = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' });
  const bin = which.stdout.trim().split('\n')[0];
  if (!bin) return null;
  const dir = join(home, 'nginx');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream app {
    server 127.0.0.1:${v1} weight=80;
    server 127.0.0.1:${v2} weight=20;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 100000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      add_header X-Ferry-Version v1;
    }
  }
}
`,
  );
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs', 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  return child;
}

async function waitHttp(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await sleep(25);
  }
  throw new Error(`${url} never answered`);
}

/** One autocannon run; latencies from every response (autocannon's own histogram is whole ms). */
function run(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const times = [];
    const inst = autocannon({ url, connections: CONNECTIONS, duration: SECONDS, ...opts }, (err, res) => {
      if (err) return reject(err);
      times.sort((a, b) => a - b);
      resolve({ rps: res.requests.average, total: res.requests.total, errors: res.errors + res.timeouts + res.non2xx, p50: pct(times, 50), p99: pct(times, 99), max: times[times.length - 1] });
    });
    inst.on('response', (_c, _status, _bytes, ms) => times.push(ms));
  });
}

/** Evenly paced GETs for SECONDS: latency without the load generator's own bursts. */
async function paced(url) {
  const load = startLoad({ url, rps: RATE, concurrency: CONNECTIONS });
  await sleep(SECONDS * 1000);
  const s = await load.stop();
  return { rps: s.sent / (s.durationMs / 1000), total: s.sent, errors: s.failed, p50: s.latencyMs.p50, p99: s.latencyMs.p99, max: s.latencyMs.max };
}

const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

/** Runs `fn` on every target, ROUNDS times in turn; the median of each figure per target. */
async function rounds(targets, fn) {
  const all = new Map(targets.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++) for (const [name, url, pid] of targets) {
    const c0 = pid ? cpuMs(pid) : NaN;
    const x = await fn(url);
    x.cpuUsPerReq = pid ? ((cpuMs(pid) - c0) * 1000) / x.total : NaN;
    all.get(name).push(x);
  }
  const out = {};
  for (const [name, xs] of all) out[name] = Object.fromEntries(Object.keys(xs[0]).map((k) => [k, median(xs.map((x) => x[k]))]));
  return out;
}

try {
  const { child: edgeChild, client } = await startEdge();
  await client.putInstance('v1', instance('v1'));
  await client.putInstance('v2', instance('v2'));
  const [a, b] = [await client.waitReady('v1', 10_000), await client.waitReady('v2', 10_000)];
  const route = await client.putRoute('bench', { host: '127.0.0.1', port: 0, stable: { version: 'v1', upstreams: [{ instance: 'v1' }] }, canary: { version: 'v2', weight: 20, upstreams: [{ instance: 'v2' }] }, sticky: false });
  const nginxPort = await freePort();
  const nginx = startNginx(nginxPort, a.port, b.port);
  const targets = [
    ['app (direct, v1 only)', `http://127.0.0.1:${a.port}/`, null],
    ['ferry edge router', `http://127.0.0.1:${route.port}/`, edgeChild.pid],
  ];
  if (nginx) {
    await waitHttp(`http://127.0.0.1:${nginxPort}/`);
    // The worker (the master only watches it).
    const worker = Number(readFileSync(`/proc/${nginx.pid}/task/${nginx.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    targets.push(['nginx 1 worker', `http://127.0.0.1:${nginxPort}/`, worker]);
  } else console.log('nginx not found: its column is skipped (apt-get install -y nginx-light)');
  for (const [, url] of targets) await run(url, { duration: 1 }); // warm up JITs and pools

  console.log(`\nthroughput: autocannon, ${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} rounds (all on this machine's ${availableParallelism()} cores: load generator, proxy, apps)`);
  const thr = await rounds(targets, (url) => run(url));
  for (const [name] of targets) {
    const r = thr[name];
    console.log(`  ${name.padEnd(24)} ${fmt(r.rps, 0).padStart(7)} req/s   p50 ${fmt(r.p50)} ms   p99 ${fmt(r.p99)} ms   errors ${r.errors}${Number.isFinite(r.cpuUsPerReq) ? `   proxy CPU ${fmt(r.cpuUsPerReq, 0)} µs/request` : ''}`);
  }
  console.log(`\nlatency at ${RATE} req/s, evenly paced (at most ${CONNECTIONS} in flight, ${SECONDS} s per run, median of ${ROUNDS} rounds)`);
  const lat = await rounds(targets, (url) => paced(url));
  for (const [name] of targets) {
    const r = lat[name];
    console.log(`  ${name.padEnd(24)} ${fmt(r.rps, 0).padStart(7)} req/s   p50 ${fmt(r.p50)} ms   p99 ${fmt(r.p99)} ms   max ${fmt(r.max)} ms   errors ${r.errors}`);
  }
  const dt = thr['app (direct, v1 only)'];
  const et = thr['ferry edge router'];
  const d = lat['app (direct, v1 only)'];
  const e = lat['ferry edge router'];
  console.log('\nsummary');
  console.log(`  router added latency at ${RATE} req/s: p50 +${fmt(e.p50 - d.p50)} ms, p99 +${fmt(e.p99 - d.p99)} ms (goal p99 < 2 ms)`);
  console.log(`  router added p99 at saturation (${CONNECTIONS} connections): +${fmt(et.p99 - dt.p99)} ms (mostly queueing: the proxy shares the cores)`);
  if (nginx) {
    const n = lat['nginx 1 worker'];
    const nt = thr['nginx 1 worker'];
    console.log(`  nginx  added latency at ${RATE} req/s: p50 +${fmt(n.p50 - d.p50)} ms, p99 +${fmt(n.p99 - d.p99)} ms`);
    console.log(`  router / nginx throughput: ${fmt(et.rps / nt.rps)}× (goal ≥ 0.6×); CPU per request: router ${fmt(et.cpuUsPerReq, 0)} µs, nginx ${fmt(nt.cpuUsPerReq, 0)} µs`);
  }
  const m = await client.routeMetrics('bench');
  console.log(`  router split: ${Object.entries(m.versions).map(([v, x]) => `${v} ${x.requests}`).join(', ')} (canary weight 20)`);
} finally {
  for (const c of children.reverse()) {
    if (c.exitCode === null) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
  }
  rmSync(home, { recursive: true, force: true });
}
