#!/usr/bin/env node
// bench/delivery: how fast a bad release is caught and how many requests releases cost, on this
// machine, with the real pieces: a Ferry server and its delivery controller (in this process, on
// PGlite), the edge it starts (its own process), the sample app (test/fixtures/apps), and a load
// generator (test/helpers/load.ts) in a worker thread, so that its timers do not share an event
// loop with the server. Prints its figures; asserts nothing. Loopback only.
//
//   (a) a bad canary (every answer a 500) at 10% weight under BENCH_RATE req/s (default 1000):
//       from the first bad response the load generator saw, the time to detection (the failing
//       measurement, then the rolled_back transition) and to all traffic on stable (the last
//       response the load generator got from the canary), and the share of all requests that
//       failed during the release. Goals (issue 4): < 5 s, < 6 s, < 0.5%.
//   (b) failed requests during healthy rolling, blue-green and canary releases under
//       BENCH_HEALTHY_RATE req/s (default 500). Goal: 0.
//
//   node bench/delivery.mjs            after `npx tsc -p tsconfig.json` (it imports from dist/)
//   node bench/delivery.mjs --router   also runs bench/delivery-router.mjs (the router's figures)
//
// BENCH_ROUNDS (default 3) bad canaries in (a); BENCH_RATE, BENCH_HEALTHY_RATE; the analysis of
// (a) with BENCH_INTERVAL (1s), BENCH_FAILURE_LIMIT (1), BENCH_MIN_REQUESTS (20), BENCH_WEIGHT (10).
// With --router, bench/delivery-router.mjs gets the same environment (its BENCH_ROUNDS too).
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const root = new URL('..', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the load generator's thread ------------------------------------------------------------
// Runs startLoad and looks at its figures every TICK_MS: when each version was first and last
// answered (so "the last response from the canary" is known to within TICK_MS), and the answered
// and failed counts over time (to count what happened inside any window, e.g. the release).
const TICK_MS = 100;
if (!isMainThread) {
  const { startLoad } = await import(join(root, 'dist/test/helpers/load.js'));
  const load = startLoad(workerData);
  const first = {};
  const last = {};
  const seen = {};
  const ticks = [];
  const look = (s) => {
    const now = Date.now();
    ticks.push([now, s.ok + s.failed, s.failed]);
    for (const [v, n] of Object.entries(s.byVersion)) {
      if (n !== (seen[v] ?? 0)) {
        first[v] ??= now;
        last[v] = now;
        seen[v] = n;
      }
    }
  };
  const timer = setInterval(() => look(load.snapshot()), TICK_MS);
  parentPort.once('message', async () => {
    clearInterval(timer);
    const summary = await load.stop();
    look(summary);
    parentPort.postMessage({ summary, first, last, ticks });
  });
}

/** Starts load in a worker; `stop()` resolves to its summary, first/last seen per version, ticks. */
function loadWorker(opts) {
  const w = new Worker(new URL(import.meta.url), { workerData: opts });
  const done = new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  return {
    async stop() {
      w.postMessage('stop');
      const r = await done;
      await w.terminate();
      return r;
    },
  };
}

/** Answered and failed requests between two epoch-ms times, from the ticks (to within TICK_MS). */
function windowCounts(ticks, from, to) {
  const at = (t) => {
    let best = [t, 0, 0];
    for (const x of ticks) if (x[0] <= t) best = x;
    return best;
  };
  const a = at(from);
  const b = at(to + TICK_MS); // The tick after `to` holds what was answered up to `to`.
  return { answered: b[1] - a[1], failed: b[2] - a[2] };
}

/** Answered requests per whole second of the run: [min, median] of those seconds. */
function steadiness(ticks) {
  const perSecond = [];
  for (let i = 0, j = 0; i < ticks.length; i++) {
    while (j < ticks.length && ticks[j][0] < ticks[i][0] + 1000) j++;
    if (j >= ticks.length) break;
    perSecond.push(ticks[j][1] - ticks[i][1]);
    i = j - 1;
  }
  const sorted = [...perSecond].sort((x, y) => x - y);
  return { min: sorted[0] ?? 0, median: sorted[Math.floor(sorted.length / 2)] ?? 0 };
}

const fmtS = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a');
const pctS = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : 'n/a');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const maxOf = (xs) => Math.max(...xs);
const at = (iso) => new Date(iso).getTime();

const TARGET = (instances) => `target: { type: process, command: node app.mjs, instances: ${instances} }
health: { readiness: { path: /healthz, interval: 100ms } }`;

async function main() {
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
  const RATE = Number(process.env.BENCH_RATE ?? 1000);
  const HEALTHY_RATE = Number(process.env.BENCH_HEALTHY_RATE ?? 500);
  const WEIGHT = Number(process.env.BENCH_WEIGHT ?? 10);
  const analysis = {
    interval: process.env.BENCH_INTERVAL ?? '1s',
    failureLimit: Number(process.env.BENCH_FAILURE_LIMIT ?? 1),
    minRequests: Number(process.env.BENCH_MIN_REQUESTS ?? 20),
  };
  const ANALYSIS = `    analysis:
      interval: ${analysis.interval}
      failure_limit: ${analysis.failureLimit}
      metrics:
        - { name: errors, source: router, condition: "error_rate < 0.01", min_requests: ${analysis.minRequests} }`;
  const CANARY = (steps) => `${TARGET(2)}
strategy:
  canary:
    steps: ${steps}
${ANALYSIS}`;
  // The bad canary would stay at WEIGHT% for a minute: only the analysis can end it early.
  const BAD = CANARY(`[{ weight: ${WEIGHT} }, { analysis: 60s }]`);
  // Timings are taken from the failures users see, so the first pass turns off the router's
  // retry of the canary's failures on stable; the second pass is the default (retries on).
  const BAD_NO_RETRY = `${BAD}\nrouter: { retry_canary_errors: false }`;

  const { deliveryRig } = await import(join(root, 'dist/test/delivery/harness.js'));
  const rig = await deliveryRig();
  try {
    let n = 0;
    const release = async (yaml, app) => {
      n++;
      const t0 = Date.now();
      const { pipeline } = await rig.release(yaml, { VERSION: `v${n}`, ...app });
      const s = await rig.status();
      const rel = s.releases.find((x) => x.number === n);
      return { number: n, pipeline, release: rel, detail: rel ? await rig.releaseDetail(rel.id) : null, tookMs: Date.now() - t0 };
    };
    const first = await release(BAD, {});
    if (first.pipeline.status !== 'success') throw new Error(`the first release failed: ${JSON.stringify(first.pipeline)}`);
    const url = await rig.routerUrl();

    // ---- (a) bad canaries under RATE req/s ----------------------------------------------------
    console.log(`Ferry delivery bench, ${availableParallelism()} cores (server + controller + PGlite, edge, 4 app instances and the load generator all on them)`);
    console.log(`\n(a) bad canary: FAIL_RATE 1 at ${WEIGHT}% under ${RATE} req/s, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}; settings (copy into ferry.yml):\n`);
    console.log(`    strategy:\n      canary:\n        steps: [{ weight: ${WEIGHT} }, { analysis: 60s }]\n${ANALYSIS.replace(/^/gm, '    ')}\n`);
    const rounds = [];
    const retried = [];
    for (let r = 0; r < ROUNDS; r++) {
      // With retries on (the default): what users lose, and how fast the analysis still decides.
      const rload = loadWorker({ url, rps: RATE, concurrency: 100 });
      await sleep(2000);
      const rbad = await release(BAD, { FAIL_RATE: '1' });
      await sleep(1500);
      const rres = await rload.stop();
      const rd = rbad.detail;
      const rcreated = at(rd.transitions[0].at);
      const rend = rd.transitions.find((x) => x.to === 'rolled_back');
      // The canary takes its first requests right after its instances are ready (step 1).
      const ready = rd.transitions.find((x) => x.step === 1 && x.to === 'progressing');
      const rin = rend ? windowCounts(rres.ticks, rcreated, at(rend.at)) : null;
      const y = { status: rd.status, share: rin ? rin.failed / rin.answered : NaN, failed: rin?.failed ?? NaN, answered: rin?.answered ?? NaN, toRolledBack: rend && ready ? at(rend.at) - at(ready.at) : NaN };
      retried.push(y);
      console.log(`  round ${r + 1} (retries on): ${y.status}; canary ready → rolled_back ${fmtS(y.toRolledBack)}; ${y.failed} of ${y.answered} requests failed during the release (${pctS(y.share)})`);
      await sleep(500);
    }
    for (let r = 0; r < ROUNDS; r++) {
      const load = loadWorker({ url, rps: RATE, concurrency: 100 });
      await sleep(2000); // the load settles before the release starts
      const bad = await release(BAD_NO_RETRY, { FAIL_RATE: '1' });
      await sleep(1500); // nothing from the canary should come after the rollback
      const { summary, last, first: firstSeen, ticks } = await load.stop();
      const label = `production#${bad.number}`;
      const d = bad.detail;
      const created = at(d.transitions[0].at);
      const end = d.transitions.find((x) => x.to === 'rolled_back');
      const failing = d.measurements.filter((m) => m.metric === 'errors' && m.outcome === 'failure');
      const verdict = failing[analysis.failureLimit]; // the one over failure_limit
      const firstBad = summary.failures.find((f) => f.version === label)?.at ?? firstSeen[label];
      const inRelease = end ? windowCounts(ticks, created, at(end.at)) : null;
      const st = steadiness(ticks);
      const x = {
        status: d.status,
        reason: d.reason,
        achieved: (summary.ok + summary.failed) / (summary.durationMs / 1000),
        steadyMin: st.min,
        steadyMedian: st.median,
        sent: summary.sent,
        p99: summary.latencyMs.p99,
        canaryAnswers: summary.byVersion[label] ?? 0,
        toFirstFailure: failing[0] ? at(failing[0].at) - firstBad : NaN,
        toDetection: verdict ? at(verdict.at) - firstBad : NaN,
        toRolledBack: end ? at(end.at) - firstBad : NaN,
        toStable: last[label] - firstBad,
        releaseMs: end ? at(end.at) - created : NaN,
        exposureMs: last[label] - firstBad,
        inRelease,
        share: inRelease ? inRelease.failed / inRelease.answered : NaN,
        failedTotal: summary.failed,
        answeredTotal: summary.ok + summary.failed,
        others: summary.failed - (summary.byVersion[label] ?? 0),
        errors: summary.errors,
      };
      rounds.push(x);
      console.log(
        `  round ${r + 1} (retries off): ${x.status} (${x.reason}); load ${x.achieved.toFixed(0)} req/s achieved (per second: min ${x.steadyMin}, median ${x.steadyMedian}), p99 ${x.p99.toFixed(1)} ms; ` +
          `first bad response → 1st failing measurement ${fmtS(x.toFirstFailure)}, → verdict ${fmtS(x.toDetection)}, → rolled_back ${fmtS(x.toRolledBack)}, → last canary response ${fmtS(x.toStable)}; ` +
          `release ${fmtS(x.releaseMs)}: ${x.inRelease?.failed} of ${x.inRelease?.answered} requests failed (${pctS(x.share)}); failures not from the canary: ${x.others}${Object.keys(x.errors).length ? ` ${JSON.stringify(x.errors)}` : ''}`,
      );
      await sleep(500);
    }

    // ---- (b) healthy releases under HEALTHY_RATE req/s ----------------------------------------
    console.log(`\n(b) healthy releases under ${HEALTHY_RATE} req/s`);
    const healthy = [];
    const kinds = [
      ['rolling (2 instances, max_surge 1, max_unavailable 0)', `${TARGET(2)}\nstrategy: { rolling: { max_surge: 1, max_unavailable: 0 } }`],
      ['blue-green (2 instances, smoke /, keep_warm 2s)', `${TARGET(2)}\nstrategy: { blue-green: { smoke: [{ url: / }], keep_warm: 2s } }`],
      ['canary (10% → 50% → 100%, analysis as in (a))', CANARY('[{ weight: 10 }, { analysis: 3s }, { weight: 50 }, { analysis: 3s }]')],
    ];
    for (const [name, yaml] of kinds) {
      const load = loadWorker({ url, rps: HEALTHY_RATE, concurrency: 100 });
      await sleep(1000);
      const h = await release(yaml, {});
      await sleep(1000);
      const { summary } = await load.stop();
      const label = `production#${h.number}`;
      const row = {
        name,
        status: h.detail?.status ?? h.pipeline.status,
        failed: summary.failed,
        answered: summary.ok + summary.failed,
        achieved: (summary.ok + summary.failed) / (summary.durationMs / 1000),
        p99: summary.latencyMs.p99,
        newVersion: summary.byVersion[label] ?? 0,
        releaseMs: h.tookMs,
        errors: summary.errors,
        statuses: summary.statuses,
      };
      healthy.push(row);
      console.log(`  ${name}: ${row.status} in ${fmtS(row.releaseMs)}; ${row.failed} failed of ${row.answered} (${row.achieved.toFixed(0)} req/s achieved, p99 ${row.p99.toFixed(1)} ms), ${row.newVersion} answered by ${label}${row.failed ? ` ${JSON.stringify(row.errors)} ${JSON.stringify(row.statuses)}` : ''}`);
      // Blue-green's blue is retired after keep_warm: let that happen between releases.
      await sleep(2500);
    }

    // ---- the table ----------------------------------------------------------------------------
    const ok = (v, goal) => (Number.isFinite(v) ? (v < goal ? 'yes' : 'NO') : 'n/a');
    const rows = [];
    const med = (k) => median(rounds.map((x) => x[k]));
    const worst = (k) => maxOf(rounds.map((x) => x[k]));
    rows.push(['(a) load achieved (goal: ' + RATE + ' req/s)', `${med('achieved').toFixed(0)} req/s (worst second ${Math.min(...rounds.map((x) => x.steadyMin))})`, '', '']);
    rows.push(['(a) first bad response → detection (failing verdict)', `${fmtS(med('toDetection'))} (max ${fmtS(worst('toDetection'))})`, '< 5 s', ok(worst('toDetection'), 5000)]);
    rows.push(['(a) first bad response → rolled_back recorded', `${fmtS(med('toRolledBack'))} (max ${fmtS(worst('toRolledBack'))})`, '', '']);
    rows.push(['(a) first bad response → all traffic on stable', `${fmtS(med('toStable'))} (max ${fmtS(worst('toStable'))})`, '< 6 s', ok(worst('toStable'), 6000)]);
    rows.push(['(a) failed share of the release\'s requests (default: retries on)', `${pctS(median(retried.map((x) => x.share)))} (max ${pctS(maxOf(retried.map((x) => x.share)))}; median ${median(retried.map((x) => x.failed))} failed)`, '< 0.5%', ok(maxOf(retried.map((x) => x.share)), 0.005)]);
    rows.push(['(a) canary ready → rolled_back (retries on)', `${fmtS(median(retried.map((x) => x.toRolledBack)))} (max ${fmtS(maxOf(retried.map((x) => x.toRolledBack)))})`, '', '']);
    rows.push(['(a) failed share with retry_canary_errors: false', `${pctS(med('share'))} (max ${pctS(worst('share'))}; median ${median(rounds.map((x) => x.inRelease?.failed ?? NaN))} failed)`, '', '']);
    for (const h of healthy) rows.push([`(b) failed requests, ${h.name.split(' (')[0]}`, `${h.failed} of ${h.answered} (${h.achieved.toFixed(0)} req/s)`, '0', h.failed === 0 && h.status === 'succeeded' ? 'yes' : 'NO']);
    const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length)), 8, 4];
    console.log(`\n${'figure'.padEnd(w[0])}  ${'measured'.padEnd(w[1])}  ${'goal'.padEnd(w[2])}  met`);
    console.log(`${'-'.repeat(w[0])}  ${'-'.repeat(w[1])}  ${'-'.repeat(w[2])}  ---`);
    for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
    const exposure = med('exposureMs');
    const release_ = med('releaseMs');
    console.log(
      `\nWithout retries the share is what it is because the canary answers ${WEIGHT}% of requests for ${fmtS(exposure)} (first to last bad response) of a release that lasts ${fmtS(release_)} ` +
        `(start, canary instances ready, exposure, rollback), so about ${WEIGHT}% × ${fmtS(exposure)} / ${fmtS(release_)} = ${pctS((WEIGHT / 100) * (exposure / release_))} of its requests fail. ` +
        `Below 0.5% at ${WEIGHT}% weight needs an exposure under ${fmtS((0.005 / (WEIGHT / 100)) * release_)}, or a smaller first weight.`,
    );
  } finally {
    await rig.close();
  }

  if (process.argv.includes('--router')) {
    console.log('\nrouter figures (bench/delivery-router.mjs):');
    await new Promise((resolve) => spawn(process.execPath, [join(root, 'bench/delivery-router.mjs')], { stdio: 'inherit' }).once('exit', resolve));
  }
}

if (isMainThread) await main();
