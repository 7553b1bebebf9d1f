// The load gate: before production, staging must answer a burst of requests without an error
// and quickly. Usage: node scripts/load-gate.js <url> [requests] [p99 limit in ms]
const [base, total = '200', limit = '250'] = process.argv.slice(2);
if (!base) {
  console.error('usage: node scripts/load-gate.js <url> [requests] [p99 limit ms]');
  process.exit(64);
}
const paths = ['/', '/?name=Ferry', '/version', '/healthz'];
const times = [];
let failed = 0;
let next = 0;
const started = performance.now();
async function worker() {
  while (next < Number(total)) {
    const path = paths[next++ % paths.length];
    const t0 = performance.now();
    try {
      const res = await fetch(new URL(path, base));
      await res.arrayBuffer();
      if (!res.ok) failed++;
    } catch {
      failed++;
    }
    times.push(performance.now() - t0);
  }
}
await Promise.all(Array.from({ length: 10 }, worker));
times.sort((a, b) => a - b);
const p99 = times[Math.min(times.length - 1, Math.floor(times.length * 0.99))];
const secs = ((performance.now() - started) / 1000).toFixed(1);
console.log(`load gate: ${times.length} requests to ${base} in ${secs} s, ${failed} failed, p99 ${p99.toFixed(0)} ms (limit ${limit} ms)`);
process.exit(failed === 0 && p99 <= Number(limit) ? 0 : 1);
