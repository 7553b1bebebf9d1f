#!/usr/bin/env node
// bench/local-run: how fast `ferry run` runs DAGs of trivial jobs on this machine, against
// gitlab-ci-local 4.70.1 (shell executor) running the same pipelines written as .gitlab-ci.yml.
// Prints its figures; asserts nothing. Run after `npm ci`: `node bench/local-run.mjs`.
//
// Goals (issue 2): per-job overhead under 15 ms over a bare process spawn; ferry at most half
// of gitlab-ci-local's wall time for 40 and 500 jobs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const ferry = join(root, 'dist/ferry.js');
const glc = join(root, 'node_modules/.bin/gitlab-ci-local');
const CONCURRENCY = 2;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/**
 * Both tools run with an empty HOME, so that the figures measure the tools rather than this
 * machine's shell set-up: gitlab-ci-local's job shells read ~/.bashrc (seen here starting pyenv
 * in every job, and the same 40 jobs took from 2 s to 21 s from one run to the next). Ferry's
 * jobs read no start-up file either way (bash -c, stdin /dev/null).
 */
const HOME = mkdtempSync(join(tmpdir(), 'ferry-bench-home-'));

/** Jobs in `layers` layers of `width`; each job needs two jobs of the layer before. */
function layeredDag(layers, width) {
  const jobs = [];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      const needs = l === 0 ? [] : [`j${l - 1}_${i}`, `j${l - 1}_${(i + 1) % width}`];
      jobs.push({ name: `j${l}_${i}`, needs });
    }
  }
  return jobs;
}

function chain(n) {
  return Array.from({ length: n }, (_, i) => ({ name: `c${i}`, needs: i === 0 ? [] : [`c${i - 1}`] }));
}

function yamlOf(jobs) {
  return jobs.map((j) => `${j.name}:\n  needs: [${j.needs.join(', ')}]\n  script: ["true"]\n`).join('');
}

function makeRepo(jobs) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const git = (...a) => execFileSync('git', a, { cwd: dir, stdio: 'ignore' });
  git('init', '-q', '--initial-branch=main');
  writeFileSync(join(dir, 'ferry.yml'), `jobs:\n${yamlOf(jobs).replace(/^/gm, '  ')}`);
  writeFileSync(join(dir, '.gitlab-ci.yml'), yamlOf(jobs));
  writeFileSync(join(dir, '.gitignore'), '.ferry/\n.gitlab-ci-local/\n');
  git('add', '-A');
  git('-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', 'commit', '-qm', 'bench');
  // gitlab-ci-local derives project variables from the origin remote; it is never contacted.
  git('remote', 'add', 'origin', 'https://gitlab.example.invalid/bench/pipeline.git');
  return dir;
}

function timeCommand(cmd, args, cwd, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, HOME, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
      else resolve(ms);
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

/**
 * A run records a journal and leaves it to a background `ferry ingest` to store: wait for that
 * (so runs do not compete with the previous run's ingest) and report how long it took.
 */
async function waitIngested(home) {
  const t0 = Date.now();
  for (;;) {
    const ingesting = spawnSync('pgrep', ['-f', `ingest --home ${home}`]).status === 0;
    const pending = readdirSync(join(home, 'journal')).length + (existsSync(join(home, 'db.lock')) || ingesting ? 1 : 0);
    if (pending === 0) return Date.now() - t0;
    if (Date.now() - t0 > 120_000) throw new Error(`journal of ${home} not ingested after 120 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function ferryRuns(dir, concurrency, runs) {
  const home = join(dir, '.ferry');
  rmSync(home, { recursive: true, force: true });
  const args = [ferry, 'run', '-j', String(concurrency)];
  const cold = await timeCommand(process.execPath, args, dir);
  const coldIngest = await waitIngested(home);
  const warm = [];
  const ingest = [];
  for (let i = 0; i < runs; i++) {
    warm.push(await timeCommand(process.execPath, args, dir));
    ingest.push(await waitIngested(home));
  }
  return { cold, coldIngest, warm: median(warm), ingest: median(ingest) };
}

async function glcRuns(dir, runs) {
  await timeCommand(glc, ['--concurrency', String(CONCURRENCY)], dir); // first run writes its state folder
  const t = [];
  for (let i = 0; i < runs; i++) t.push(await timeCommand(glc, ['--concurrency', String(CONCURRENCY)], dir));
  return median(t);
}

/**
 * What one bare `bash -c true` costs when spawned from Node the way a job is (async spawn, wait
 * for close): the median of several rounds, so one slow round (a background ingest, a page-cache
 * miss) cannot skew the baseline the overhead is measured against.
 */
async function bareSpawnMs(rounds = 7, n = 40) {
  const perRound = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      await new Promise((resolve, reject) => spawn('/bin/bash', ['-c', 'true'], { stdio: 'ignore' }).on('error', reject).on('close', resolve));
    }
    perRound.push(Number(process.hrtime.bigint() - t0) / 1e6 / n);
  }
  return median(perRound);
}

console.log(`bench/local-run on ${availableParallelism()} CPUs, Node ${process.version}; ${RUNS} timed runs each, median shown`);

const one = makeRepo(chain(1));
const long = makeRepo(chain(200));
const c1 = await ferryRuns(one, 1, RUNS);
const c200 = await ferryRuns(long, 1, RUNS);
const perJob = (c200.warm - c1.warm) / 199;
const spawnMs = await bareSpawnMs(); // measured after the runs' ingests have finished
console.log(`\nper-job cost, 200 jobs in a chain (-j 1): ${fmt(perJob)} per job; bare \`bash -c true\` spawn ${fmt(spawnMs)}`);
console.log(`per-job overhead over a bare spawn: ${fmt(perJob - spawnMs)}   (goal < 15 ms)`);
console.log(`fixed cost of a run (1 job): ${fmt(c1.warm)}; ${fmt(c1.cold)} for the first run (new store)`);
console.log(`after the run, the background ingest into the store took ${fmt(c1.ingest)} (${fmt(c1.coldIngest)} creating the store)`);

console.log(`\n${'pipeline'.padEnd(22)}${'ferry (first run)'.padEnd(20)}${'ferry'.padEnd(12)}${'ingest after'.padEnd(15)}${'gitlab-ci-local'.padEnd(18)}ratio (goal <= 0.5)`);
// BENCH_DAGS=40 runs only the 40-job DAG.
const dags = [
  ['40', '40 jobs (4 x 10)', layeredDag(4, 10)],
  ['500', '500 jobs (10 x 50)', layeredDag(10, 50)],
].filter(([n]) => !process.env.BENCH_DAGS || process.env.BENCH_DAGS.split(',').includes(n));
for (const [, label, jobs] of dags) {
  const dir = makeRepo(jobs);
  const f = await ferryRuns(dir, CONCURRENCY, RUNS);
  const g = await glcRuns(dir, RUNS);
  console.log(`${label.padEnd(22)}${fmt(f.cold).padEnd(20)}${fmt(f.warm).padEnd(12)}${fmt(f.ingest).padEnd(15)}${fmt(g).padEnd(18)}${(f.warm / g).toFixed(2)}`);
}
