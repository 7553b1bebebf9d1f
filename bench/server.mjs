#!/usr/bin/env node
// bench/server: figures of `ferry server` on this machine (loopback only). Prints; asserts nothing.
//   push-to-first-job latency over 50 pushes to a local bare repository (goal p50 < 100 ms, p99 < 300 ms),
//     measured twice: from the start of `git push` (what the developer waits, including git's
//     own packing and transfer), and from the moment the pushed ref changed in the server's
//     repository (the ref file's mtime: what Ferry's hook, trigger, queue and runner add)
//   BENCH_DATABASE_URL=postgres://... runs the server on PostgreSQL instead of embedded PGlite
//   jobs per second with 4 remote runners on trivial jobs
// Not measured yet (see the server issue): log ingest throughput, output-to-SSE latency, 1,000 SSE viewers.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

const root = new URL('..', import.meta.url).pathname;
const ferry = join(root, 'dist/src/cli/main.js');
const PUSHES = Number(process.env.BENCH_PUSHES ?? 50);
const JOBS = Number(process.env.BENCH_JOBS ?? 200);

const freePort = () => new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const git = (cwd, ...a) => execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', ...a], { cwd, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' });

/** A schema of its own in the bench database, so each run starts empty. */
async function freshSchema(url) {
  const { default: pg } = await import('pg');
  const schema = `bench_${Date.now().toString(36)}`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

async function startServer(args) {
  const home = mkdtempSync(join(tmpdir(), 'ferry-bench-server-'));
  const port = await freePort();
  const env = { ...process.env };
  if (process.env.BENCH_DATABASE_URL) env.DATABASE_URL = await freshSchema(process.env.BENCH_DATABASE_URL);
  const child = spawn(process.execPath, [ferry, 'server', '--home', home, '--listen', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  while (!/fry_[A-Za-z0-9_-]+/.test(err)) {
    if (child.exitCode !== null) throw new Error(err);
    await sleep(20);
  }
  const token = /fry_[A-Za-z0-9_-]+/.exec(err)[0];
  const url = `http://127.0.0.1:${port}`;
  const api = async (method, path, body) => (await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) })).json();
  return { child, url, api, stop: () => new Promise((r) => { child.once('close', r); child.kill('SIGTERM'); }) };
}

async function pushLatency() {
  const s = await startServer(['-j', '2']);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-push-'));
    const stamp = join(dir, 'stamp');
    git(tmpdir(), 'init', '-q', '--initial-branch=main', join(dir, 'work'));
    const work = join(dir, 'work');
    writeFileSync(join(work, 'ferry.yml'), `first:\n  script: date +%s%N > ${stamp}\n`);
    git(work, 'add', '-A');
    git(work, 'commit', '-qm', 'init');
    git(dir, 'clone', '-q', '--bare', work, join(dir, 'repo.git'));
    await s.api('POST', '/api/projects', { path: join(dir, 'repo.git') });
    git(work, 'remote', 'add', 'server', join(dir, 'repo.git'));
    const lat = [];
    const fromRef = [];
    const refFile = join(dir, 'repo.git', 'refs', 'heads', 'main');
    for (let i = 0; i < PUSHES; i++) {
      writeFileSync(join(work, 'n.txt'), String(i));
      git(work, 'add', '-A');
      git(work, 'commit', '-qm', `push ${i}`);
      const before = readFileSync(stamp, { flag: 'a+' }).toString();
      const wall0 = BigInt(Date.now()) * 1000000n;
      git(work, 'push', '-q', 'server', 'main');
      for (let w = 0; w < 500; w++) {
        const now = existsSync(stamp) ? readFileSync(stamp, 'utf8') : '';
        if (now && now !== before) {
          lat.push(Number(BigInt(now.trim()) - wall0) / 1e6);
          fromRef.push(Number(BigInt(now.trim()) - statSync(refFile, { bigint: true }).mtimeNs) / 1e6);
          break;
        }
        await sleep(2);
      }
      await sleep(50);
    }
    const store = process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'PGlite';
    console.log(`push to first job running (${store}), ${lat.length} pushes, from \`git push\`: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms (goal p50 < 100 ms, p99 < 300 ms)`);
    console.log(`  from the ref update in the server's repository: p50 ${pct(fromRef, 50).toFixed(1)} ms, p99 ${pct(fromRef, 99).toFixed(1)} ms`);
  } finally {
    await s.stop();
  }
}

async function jobsPerSecond() {
  const s = await startServer(['--no-runner']);
  const runners = [];
  try {
    for (let i = 0; i < 4; i++) {
      const r = await s.api('POST', '/api/runners', { name: `bench-${i}` });
      runners.push(spawn(process.execPath, [ferry, 'runner', '--server', s.url, '--token', r.token, '-j', '1', '--work-dir', mkdtempSync(join(tmpdir(), 'ferry-bench-runner-'))], { stdio: 'ignore' }));
    }
    const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-jobs-'));
    git(dir, 'init', '-q', '--initial-branch=main');
    writeFileSync(join(dir, 'ferry.yml'), Array.from({ length: JOBS }, (_, i) => `j${i}:\n  script: "true"\n`).join(''));
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', 'jobs');
    const project = await s.api('POST', '/api/projects', { path: dir });
    await sleep(1000); // runners connect
    const t0 = Date.now();
    const { pipelineId } = await s.api('POST', `/api/projects/${project.id}/pipelines`, {});
    let p;
    do {
      await sleep(50);
      p = await s.api('GET', `/api/pipelines/${pipelineId}`);
    } while (p.status === 'running');
    const secs = (Date.now() - t0) / 1000;
    console.log(`${JOBS} trivial jobs on 4 remote runners (1 job each at a time): ${secs.toFixed(2)} s, ${(JOBS / secs).toFixed(1)} jobs/s (pipeline ${p.status})`);
  } finally {
    for (const r of runners) r.kill('SIGTERM');
    await s.stop();
  }
}

console.log(`bench/server on Node ${process.version}`);
await pushLatency();
await jobsPerSecond();
