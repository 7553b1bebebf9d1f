// GET /metrics end to end: a real server runs a real pipeline on its in-process runner, then the
// Prometheus text is scraped, checked line by line against the exposition format, and read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeRepo } from '../helpers/repo.js';
import { waitFor } from '../helpers/procs.js';
import { version } from '../../src/cli/version.js';
import { countWebhook, metricsOf } from '../../src/server/metrics.js';
import { testServer, type TestServer } from './harness.js';

const PIPELINE = `
stages: [build, test]
build:
  stage: build
  script: [echo "héllo from build", sleep 0.2]
unit:
  stage: test
  script: [echo "unit tests pass"]
lint:
  stage: test
  script: [echo "lint clean"]
`;
const JOBS = 3;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// What Prometheus's text parser accepts (Go's ParseFloat): Inf and NaN in any case; prom-client writes "Nan".
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity)|nan)$/i;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

function parseValue(s: string): number {
  if (!VALUE.test(s)) throw new Error(`bad sample value ${JSON.stringify(s)}`);
  if (/^nan$/i.test(s)) return NaN;
  if (/inf/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  return Number(s);
}

function parseLabels(s: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = s;
  while (rest.length) {
    const m = LABEL.exec(rest);
    if (!m) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    if (m[1] in labels) throw new Error(`label ${m[1]} twice in ${JSON.stringify(line)}`);
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

/**
 * The Prometheus text format (version 0.0.4), strictly: HELP and TYPE at most once per family and
 * before its samples, every sample of a declared family (histograms: _bucket, _sum, _count), no
 * series twice, histogram buckets cumulative and ending at +Inf = _count.
 */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const familyOf = (sample: string): string | undefined => {
    if (families.has(sample)) return sample;
    const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
    if (m && families.get(m[1])?.type === 'histogram') return m[1];
    if (m && m[2] !== 'bucket' && families.get(m[1])?.type === 'summary') return m[1];
    return undefined;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      assert.match(name, NAME, line);
      const f = families.get(name) ?? { type: '', help: '', samples: [] };
      assert.equal(f.samples.length, 0, `${kind} of ${name} after its samples`);
      if (kind === 'TYPE') {
        assert.equal(f.type, '', `TYPE of ${name} twice`);
        assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, line);
        f.type = rest;
      } else {
        assert.equal(f.help, '', `HELP of ${name} twice`);
        assert.doesNotMatch(rest, /\\[^\\n]/, `bad escape in ${line}`);
        f.help = rest;
      }
      families.set(name, f);
      continue;
    }
    assert.ok(!line.startsWith('#') || line.startsWith('# '), `bad comment ${JSON.stringify(line)}`);
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const [, name, rawLabels, rawValue] = m;
    const labels = parseLabels(rawLabels ?? '', line);
    for (const l of Object.keys(labels)) assert.match(l, LABEL_NAME);
    const fam = familyOf(name);
    assert.ok(fam, `sample ${name} of no declared family`);
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(series), `series twice: ${line}`);
    seen.add(series);
    families.get(fam)!.samples.push({ name, labels, value: parseValue(rawValue) });
  }
  for (const [name, f] of families) {
    assert.notEqual(f.type, '', `${name} has no TYPE`);
    if (f.type === 'counter') for (const s of f.samples) assert.ok(s.value >= 0, `counter ${name} is negative`);
    if (f.type !== 'histogram') continue;
    const groups = new Map<string, Sample[]>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      groups.set(key, [...(groups.get(key) ?? []), s]);
      if (s.name.endsWith('_bucket')) assert.ok(le !== undefined, `${name} bucket without le`);
    }
    for (const samples of groups.values()) {
      const buckets = samples.filter((s) => s.name.endsWith('_bucket'));
      const les = buckets.map((b) => parseValue(b.labels.le));
      assert.deepEqual(les, [...les].sort((a, b) => a - b), `${name} buckets in order`);
      assert.equal(les.at(-1), Infinity, `${name} ends with le="+Inf"`);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${name} buckets are cumulative`);
      const count = samples.find((s) => s.name === `${name}_count`);
      assert.ok(count && samples.some((s) => s.name === `${name}_sum`), `${name} has _sum and _count`);
      assert.equal(buckets.at(-1)!.value, count.value, `${name} +Inf bucket equals _count`);
    }
  }
  return families;
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const fam = families.get(name.replace(/_(count|sum|bucket)$/, '')) ?? families.get(name);
  const s = fam?.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

async function scrape(server: TestServer, token?: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${server.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

test('/metrics after a pipeline ran: jobs, pipelines, durations, queue, runners, logs, in valid exposition format', { timeout: 120_000 }, async () => {
  const server = await testServer();
  try {
    const repo = makeRepo({ 'ferry.yml': PIPELINE });
    const project = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${project.body.id}/pipelines`, {});
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const p = await server.waitPipeline(started.body.pipelineId);
    assert.equal(p.status, 'success', JSON.stringify(p));
    assert.equal(p.jobs.length, JOBS);

    // The pipeline's end is published just after it is recorded: wait for the bus side too.
    let families = new Map<string, Family>();
    await waitFor(async () => {
      families = parseExposition((await scrape(server)).text);
      return value(families, 'ferry_pipeline_duration_seconds_count', { status: 'success' }) === 1;
    }, 10_000, 'the pipeline duration to be observed');

    const res = await scrape(server);
    assert.equal(res.status, 200);
    assert.match(res.type ?? '', /^text\/plain; version=0\.0\.4; charset=utf-8$/);
    families = parseExposition(res.text);

    assert.equal(families.get('ferry_jobs')?.type, 'gauge');
    assert.equal(value(families, 'ferry_jobs', { status: 'success' }), JOBS);
    assert.equal(value(families, 'ferry_jobs', { status: 'failed' }), 0, 'known statuses are reported as 0');
    assert.equal(value(families, 'ferry_pipelines', { status: 'success' }), 1);
    assert.equal(value(families, 'ferry_pipelines', { status: 'running' }), 0);
    assert.equal(value(families, 'ferry_queue_depth'), 0);
    assert.equal(value(families, 'ferry_queue_oldest_seconds'), 0);

    assert.equal(families.get('ferry_job_duration_seconds')?.type, 'histogram');
    assert.equal(value(families, 'ferry_job_duration_seconds_count', { status: 'success' }), JOBS);
    assert.ok(value(families, 'ferry_job_duration_seconds_sum', { status: 'success' })! >= 0.2, 'the build slept 0.2 s');
    assert.equal(value(families, 'ferry_job_queue_wait_seconds_count'), JOBS);
    assert.equal(value(families, 'ferry_pipeline_duration_seconds_count', { status: 'success' }), 1);
    assert.ok(value(families, 'ferry_pipeline_duration_seconds_sum', { status: 'success' })! > 0);

    assert.equal(value(families, 'ferry_pipelines_started_total'), 1);
    assert.equal(value(families, 'ferry_jobs_finished_total', { status: 'success' }), JOBS);
    assert.equal(value(families, 'ferry_jobs_finished_total', { status: 'failed' }), 0);
    const logBytes = value(families, 'ferry_log_bytes_total')!;
    const logs = await Promise.all(p.jobs.map((j) => server.call<string>('GET', `/api/jobs/${j.id}/log`)));
    const stored = logs.reduce((n, l) => n + Buffer.byteLength(l.body, 'utf8'), 0);
    assert.ok(logBytes > 0, 'log bytes counted');
    assert.equal(logBytes, stored, 'log bytes are the UTF-8 bytes of the logs');

    assert.equal(value(families, 'ferry_runners', { state: 'online' }), 1, 'the in-process runner is online');
    assert.equal(value(families, 'ferry_runners', { state: 'offline' }), 0);
    assert.equal(value(families, 'ferry_build_info', { version: version() }), 1);
    assert.ok(families.has('process_cpu_user_seconds_total'), 'default process metrics');
    assert.ok(families.has('nodejs_eventloop_lag_seconds'), 'default Node.js metrics');
  } finally {
    await server.close();
  }
});

test('webhook deliveries are counted per server; a second server in the process has its own registry', { timeout: 60_000 }, async () => {
  const a = await testServer({ runner: false });
  const b = await testServer({ runner: false });
  try {
    countWebhook(a.ctx, 'github', 'accepted');
    countWebhook(a.ctx, 'github', 'accepted');
    countWebhook(metricsOf(a.ctx)!, 'gitlab', 'bad_signature');
    a.ctx.bus.emit({ type: 'job.log', at: Date.now(), pipelineId: 'p', jobId: 'j', attempt: 1, stream: 'stdout', text: 'é\n' });
    const fa = parseExposition((await scrape(a)).text);
    const fb = parseExposition((await scrape(b)).text);
    assert.equal(value(fa, 'ferry_webhook_deliveries_total', { forge: 'github', result: 'accepted' }), 2);
    assert.equal(value(fa, 'ferry_webhook_deliveries_total', { forge: 'gitlab', result: 'bad_signature' }), 1);
    assert.equal(value(fa, 'ferry_log_bytes_total'), 3, 'UTF-8 bytes, not characters');
    assert.equal(value(fb, 'ferry_webhook_deliveries_total', { forge: 'github', result: 'accepted' }), undefined);
    assert.equal(value(fb, 'ferry_log_bytes_total'), 0);
    assert.equal(value(fb, 'ferry_runners', { state: 'online' }), 0, 'no runner on a server without one');
  } finally {
    await a.close();
    await b.close();
  }
  assert.equal(metricsOf(a.ctx), undefined, "the server's close stops its metrics");
  countWebhook(a.ctx, 'github', 'accepted'); // a no-op once closed, never a throw
});

test('/metrics is public by default and needs a token with FERRY_METRICS_AUTH=1', { timeout: 60_000 }, async () => {
  const open = await testServer({ runner: false });
  try {
    const r = await scrape(open);
    assert.equal(r.status, 200);
    assert.match(r.text, /^# HELP /m);
  } finally {
    await open.close();
  }
  const before = process.env.FERRY_METRICS_AUTH;
  process.env.FERRY_METRICS_AUTH = '1';
  let closed: TestServer | undefined;
  try {
    closed = await testServer({ runner: false });
  } finally {
    if (before === undefined) delete process.env.FERRY_METRICS_AUTH;
    else process.env.FERRY_METRICS_AUTH = before;
  }
  try {
    const anonymous = await scrape(closed);
    assert.equal(anonymous.status, 401);
    assert.equal((await scrape(closed, 'not-a-token')).status, 401);
    const withToken = await scrape(closed, closed.token);
    assert.equal(withToken.status, 200);
    parseExposition(withToken.text);
  } finally {
    await closed.close();
  }
});
