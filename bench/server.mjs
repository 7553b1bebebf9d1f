#!/usr/bin/env node
// bench/server: figures of `ferry server` on this machine (loopback only). Prints; asserts nothing.
//   push-to-first-job latency over 50 pushes to a local bare repository (goal p50 < 100 ms, p99 < 300 ms),
//     measured twice: from the start of `git push` (what the developer waits, including git's
//     own packing and transfer), and from the moment the pushed ref changed in the server's
//     repository (the ref file's mtime: what Ferry's hook, trigger, queue and runner add)
//   BENCH_DATABASE_URL=postgres://... runs the server on PostgreSQL instead of embedded PGlite
//   jobs per second with 4 remote runners on trivial jobs
//   log ingest: a job writes BENCH_LOG_MB (default 200) MB on a remote runner, once as 100-byte
//     lines of x's and once as lines like a service's log (BENCH_LOG_KIND=x or log for one);
//     the bytes the server stored over the job's running time (goal at least 50 MB/s), and the
//     CPU time the server and the runner used
//   output to SSE: a job prints a timestamp every 10 ms; a follower of its SSE stream notes
//     when each arrives (goal p99 under 100 ms)
//   1,000 SSE viewers (BENCH_VIEWERS) follow one job: every one must get every line, in order
// BENCH_ONLY=push,jobs,ingest,sse,viewers runs a part; BENCH_SERVER_STDERR=1 shows what the
// server writes to stderr.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { SseParser } from '../dist/src/cli/sse.js';
import { freePort } from '../dist/src/process/free-port.js';

const root = new URL('..', import.meta.url).pathname;
const ferry = join(root, 'dist/ferry.js');
// BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the server and the runners.
const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const PUSHES = Number(process.env.BENCH_PUSHES ?? 50);
const JOBS = Number(process.env.BENCH_JOBS ?? 200);

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
  const child = spawn(process.execPath, [...nodeArgs, ferry, 'server', '--home', home, '--listen', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr.on('data', (d) => { err += d; if (process.env.BENCH_SERVER_STDERR) process.stderr.write(d); });
  while (!/fry_[A-Za-z0-9_-]+/.test(err)) {
    if (child.exitCode !== null) throw new Error(err);
    await sleep(20);
  }
  const token = /fry_[A-Za-z0-9_-]+/.exec(err)[0];
  const url = `http://127.0.0.1:${port}`;
  const api = async (method, path, body) => (await fetch(url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) })).json();
  return { child, url, token, api, stop: () => new Promise((r) => { child.once('close', r); child.kill('SIGTERM'); }) };
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
    // One push more than counted: the first after the server started is reported on its own.
    let first = null;
    for (let i = 0; i <= PUSHES; i++) {
      writeFileSync(join(work, 'n.txt'), String(i));
      git(work, 'add', '-A');
      git(work, 'commit', '-qm', `push ${i}`);
      const before = readFileSync(stamp, { flag: 'a+' }).toString();
      const wall0 = BigInt(Date.now()) * 1000000n;
      if (process.env.BENCH_TRACE) writeFileSync('/tmp/trace.log', `push ${Date.now()}\n`, { flag: 'a' });
      git(work, 'push', '-q', 'server', 'main');
      for (let w = 0; w < 500; w++) {
        const now = existsSync(stamp) ? readFileSync(stamp, 'utf8') : '';
        if (now && now !== before) {
          if (i === 0) first = Number(BigInt(now.trim()) - wall0) / 1e6;
          else lat.push(Number(BigInt(now.trim()) - wall0) / 1e6);
          if (process.env.BENCH_TRACE) writeFileSync('/tmp/trace.log', `ran ${Number(BigInt(now.trim()) / 1000n) / 1000} ref ${Number(statSync(refFile, { bigint: true }).mtimeNs / 1000n) / 1000}\n`, { flag: 'a' });
          if (i > 0) fromRef.push(Number(BigInt(now.trim()) - statSync(refFile, { bigint: true }).mtimeNs) / 1e6);
          break;
        }
        await sleep(2);
      }
      await sleep(50);
    }
    const store = process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'PGlite';
    console.log(`push to first job running (${store}), ${lat.length} pushes, from \`git push\`: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms (goal p50 < 100 ms, p99 < 300 ms)`);
    console.log(`  from the ref update in the server's repository: p50 ${pct(fromRef, 50).toFixed(1)} ms, p99 ${pct(fromRef, 99).toFixed(1)} ms`);
    console.log(`  the first push after the server started (not counted above): ${first?.toFixed(1)} ms from \`git push\``);
  } finally {
    await s.stop();
  }
}

async function jobsPerSecond() {
  const s = await startServer(['--no-runner']);
  const runners = await remoteRunners(s, 4);
  try {
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
    await runners.stop();
    await s.stop();
  }
}

/** Remote runners (`ferry runner` processes) registered on the server. */
async function remoteRunners(s, n, concurrency = 1) {
  const runners = [];
  for (let i = 0; i < n; i++) {
    const r = await s.api('POST', '/api/runners', { name: `bench-${i}` });
    runners.push(spawn(process.execPath, [...nodeArgs, ferry, 'runner', '--server', s.url, '--token', r.token, '-j', String(concurrency), '--work-dir', mkdtempSync(join(tmpdir(), 'ferry-bench-runner-'))], { stdio: 'ignore' }));
  }
  return { pids: runners.map((r) => r.pid), stop: () => Promise.all(runners.map((r) => new Promise((res) => { if (r.exitCode !== null) return res(); r.once('close', res); r.kill('SIGTERM'); }))) };
}

/** A project whose ferry.yml is `yml`; starts its pipeline and returns the first job's id once it runs. */
async function runJob(s, yml) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-logs-'));
  git(dir, 'init', '-q', '--initial-branch=main');
  writeFileSync(join(dir, 'ferry.yml'), yml);
  git(dir, 'add', '-A');
  git(dir, 'commit', '-qm', 'logs');
  const project = await s.api('POST', '/api/projects', { path: dir });
  const { pipelineId } = await s.api('POST', `/api/projects/${project.id}/pipelines`, {});
  for (;;) {
    const p = await s.api('GET', `/api/pipelines/${pipelineId}`);
    if (p.jobs?.[0]?.status === 'running' || p.status !== 'running') return { pipelineId, jobId: p.jobs[0].id };
    await sleep(5);
  }
}

async function waitDone(s, pipelineId) {
  for (;;) {
    const p = await s.api('GET', `/api/pipelines/${pipelineId}`);
    if (p.status !== 'running' && p.status !== 'pending') return p;
    await sleep(200);
  }
}

/**
 * Follows a job's SSE stream; calls onLog(data, receivedAtMs) per `log` event and resolves on
 * `end`. Plain node:http, so a thousand of them cost little on the client side.
 */
function follow(s, jobId, onLog) {
  return new Promise((resolve, reject) => {
    const req = request(`${s.url}/api/jobs/${jobId}/log?follow=1`, { headers: { authorization: `Bearer ${s.token}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE: HTTP ${res.statusCode}`));
      res.setEncoding('utf8');
      const parser = new SseParser((e) => {
        if (e.type === 'log') onLog(JSON.parse(e.data), Date.now());
        if (e.type === 'end') resolve(JSON.parse(e.data));
      });
      res.on('data', (d) => parser.push(d));
      res.on('end', () => resolve(null));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [utime, stime] = f.slice(f.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number);
  return (utime + stime) / 100;
}

async function logIngest() {
  const mb = Number(process.env.BENCH_LOG_MB ?? 200);
  const s = await startServer(['--no-runner', '--log-limit', `${mb * 2}MiB`]);
  const runners = await remoteRunners(s, 1);
  try {
    await sleep(500);
    // Lines like a service's log (a time, a level, a counter, a path, a hex id), made beforehand
    // (awk makes them at about the goal's rate): they compress about 5 times where the x's
    // compress a hundred times.
    const sample = join(mkdtempSync(join(tmpdir(), 'ferry-bench-log-')), 'service.log');
    execFileSync('sh', ['-c', `awk 'BEGIN { for (i = 0; n < ${mb * 1_000_000}; i++) { l = sprintf("2026-12-02T14:%02d:%02d.%03dZ INFO  request %d GET /api/items/%d -> 200 in %d ms id=%08x%08x", i % 60, i % 59, i % 1000, i, (i * 7919) % 100000, i % 97, i * 2654435761 % 4294967296, i * 40503 % 4294967296); print l; n += length(l) + 1 } }' > ${sample}`]);
    const scripts = {
      // 100-byte lines: `fold` cuts the stream of x's into lines of 99 and a newline.
      'x lines': `head -c ${mb * 1_000_000} /dev/zero | tr '\\0' x | fold -w 99`,
      'log-like lines': `cat ${sample}`,
    };
    for (const [kind, script] of Object.entries(scripts)) {
      if (process.env.BENCH_LOG_KIND && !kind.startsWith(process.env.BENCH_LOG_KIND)) continue;
      const t = Date.now();
      execFileSync('sh', ['-c', `${script} > /dev/null`]);
      const bare = (Date.now() - t) / 1000;
      const cpu0 = [cpuSeconds(s.child.pid), cpuSeconds(runners.pids[0])];
      const { pipelineId, jobId } = await runJob(s, `noisy:\n  script: |\n    ${script}\n`);
      const p = await waitDone(s, pipelineId);
      const cpu = [cpuSeconds(s.child.pid) - cpu0[0], cpuSeconds(runners.pids[0]) - cpu0[1]];
      const job = p.jobs.find((j) => j.id === jobId);
      const secs = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
      const stored = (await (await fetch(`${s.url}/api/jobs/${jobId}/log`, { headers: { authorization: `Bearer ${s.token}` } })).text()).length;
      console.log(`log ingest (${kind}): a job wrote ${mb} MB on a remote runner; ${(stored / 1e6).toFixed(1)} MB stored in ${secs.toFixed(2)} s of running: ${(stored / 1e6 / secs).toFixed(1)} MB/s (goal >= 50 MB/s; the same output to /dev/null takes ${bare.toFixed(2)} s; CPU: server ${cpu[0].toFixed(2)} s, runner ${cpu[1].toFixed(2)} s; job ${job.status})`);
    }
  } finally {
    await runners.stop();
    await s.stop();
  }
}

async function sseLatency() {
  const s = await startServer(['--no-runner']);
  const runners = await remoteRunners(s, 1);
  try {
    await sleep(500);
    // A timestamp (ms) every 10 ms for about 5 s, from one shell: no process per line.
    const script = `i=0; while [ $i -lt 500 ]; do date +%s%3N; sleep 0.01; i=$((i+1)); done`;
    const { pipelineId, jobId } = await runJob(s, `ticks:\n  script: |\n    ${script}\n`);
    const lat = [];
    await follow(s, jobId, (d, now) => {
      if (d.stream !== 'stdout') return;
      for (const line of d.text.split('\n')) if (/^\d{13}$/.test(line)) lat.push(now - Number(line));
    });
    await waitDone(s, pipelineId);
    console.log(`output to SSE reader: ${lat.length} lines, p50 ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms, max ${Math.max(...lat)} ms (goal p99 < 100 ms)`);
  } finally {
    await runners.stop();
    await s.stop();
  }
}

async function sseViewers() {
  const viewers = Number(process.env.BENCH_VIEWERS ?? 1000);
  const lines = 2000;
  const s = await startServer(['--no-runner']);
  const runners = await remoteRunners(s, 1);
  try {
    await sleep(500);
    // Numbered lines over about 4 s, so the viewers are there while it writes.
    const script = `i=1; while [ $i -le ${lines} ]; do echo "line $i"; [ $((i % 20)) -eq 0 ] && sleep 0.04; i=$((i+1)); done`;
    const { pipelineId, jobId } = await runJob(s, `counted:\n  script: |\n    ${script}\n`);
    const t0 = Date.now();
    const got = await Promise.all(Array.from({ length: viewers }, async () => {
      const seen = [];
      await follow(s, jobId, (d) => {
        for (const m of d.text.matchAll(/^line (\d+)$/gm)) seen.push(Number(m[1]));
      });
      return seen;
    }));
    const secs = (Date.now() - t0) / 1000;
    const p = await waitDone(s, pipelineId);
    const whole = got.filter((seen) => seen.length === lines && seen.every((n, i) => n === i + 1)).length;
    console.log(`${viewers} SSE viewers of one job writing ${lines} lines: ${whole} got every line in order, ${viewers - whole} did not; all ended ${secs.toFixed(1)} s after the job started (pipeline ${p.status})`);
  } finally {
    await runners.stop();
    await s.stop();
  }
}

const only = process.env.BENCH_ONLY?.split(',');
const parts = { push: pushLatency, jobs: jobsPerSecond, ingest: logIngest, sse: sseLatency, viewers: sseViewers };
console.log(`bench/server on Node ${process.version}`);
for (const [name, fn] of Object.entries(parts)) if (!only || only.includes(name)) await fn();
