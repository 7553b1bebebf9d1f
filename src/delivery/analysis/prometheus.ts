// The `prometheus` analysis source: one PromQL instant query per interval; its single value is
// `result` in the metric's condition. The query may use $FERRY_ENVIRONMENT, $FERRY_VERSION,
// $FERRY_STABLE_VERSION and $FERRY_INTERVAL (the analysis interval, like "5s"), also written
// ${FERRY_VERSION}.
//
// A vector must hold exactly one series (aggregate with sum/max/... to get one); no series, or
// NaN (0/0: no traffic yet), is inconclusive, as is Prometheus being unreachable, slow or
// failing. A query Prometheus refuses (bad PromQL) or that gives a range vector or a string is
// an error: waiting will not fix it.
import type { PrometheusMetricSpec } from '../../config/types.js';
import { fetchErrorMessage, measureSignal, measureTimeoutMs, promDuration, type MeasureContext, type Measurement } from './types.js';

const VARS = /\$(?:\{(FERRY_ENVIRONMENT|FERRY_VERSION|FERRY_STABLE_VERSION|FERRY_INTERVAL)\}|(FERRY_ENVIRONMENT|FERRY_VERSION|FERRY_STABLE_VERSION|FERRY_INTERVAL)(?![A-Za-z0-9_]))/g;

/** Escaped for a PromQL string literal ("..." or '...'); environment and version labels never
 * need it, but a value must not be able to end the string it is placed in. */
function promString(s: string): string {
  return s.replace(/[\\"']/g, (c) => `\\${c}`).replace(/\n/g, '\\n');
}

/** The query with the FERRY_* variables replaced. */
export function substituteQuery(query: string, ctx: Pick<MeasureContext, 'environment' | 'version' | 'stableVersion' | 'intervalMs'>): string {
  return query.replace(VARS, (_m, braced: string | undefined, bare: string | undefined) => {
    switch (braced ?? bare) {
      case 'FERRY_ENVIRONMENT':
        return promString(ctx.environment);
      case 'FERRY_VERSION':
        return promString(ctx.version);
      case 'FERRY_STABLE_VERSION':
        return promString(ctx.stableVersion ?? '');
      default:
        return promDuration(ctx.intervalMs);
    }
  });
}

type Sample = [number, string];
interface PromResponse {
  status?: 'success' | 'error';
  data?: { resultType?: string; result?: unknown };
  errorType?: string;
  error?: string;
  warnings?: string[];
}

export async function measurePrometheus(spec: Pick<PrometheusMetricSpec, 'query' | 'address'>, ctx: MeasureContext): Promise<Measurement> {
  const query = substituteQuery(spec.query, ctx);
  let url: URL;
  try {
    url = new URL('api/v1/query', (spec.address || 'http://127.0.0.1:9090').replace(/\/*$/, '/'));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported protocol ${url.protocol}`);
  } catch (err) {
    return { values: {}, error: `bad Prometheus address \`${spec.address}\`: ${(err as Error).message}` };
  }
  const timeoutMs = measureTimeoutMs(ctx);
  url.searchParams.set('query', query);
  // Prometheus stops the evaluation itself too, a little before we give up waiting.
  url.searchParams.set('timeout', promDuration(Math.max(500, timeoutMs - 200)));
  const where = `Prometheus at ${url.origin}`;

  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: measureSignal(ctx, timeoutMs) });
    text = await res.text();
  } catch (err) {
    return { values: {}, inconclusive: `cannot query ${where}: ${fetchErrorMessage(err, timeoutMs)}` };
  }
  let body: PromResponse | undefined;
  try {
    body = JSON.parse(text) as PromResponse;
  } catch {
    body = undefined;
  }
  if (!res.ok || body?.status !== 'success') {
    const detail = body?.error ? `${body.errorType ? `${body.errorType}: ` : ''}${body.error}` : `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    // 400 bad_data: the query itself is wrong. 422 (execution), 503 (timeout, canceled), 5xx: maybe next time.
    if (res.status === 400 || body?.errorType === 'bad_data') return { values: {}, error: `${where} refused the query \`${query}\`: ${detail}` };
    return { values: {}, inconclusive: `${where} failed the query: ${detail}` };
  }
  const type = body.data?.resultType;
  const result = body.data?.result;
  if (type === 'scalar') return fromSample(result as Sample, query);
  if (type === 'vector' && Array.isArray(result)) {
    const series = result as { metric?: Record<string, string>; value?: Sample }[];
    if (series.length === 0) return { values: {}, inconclusive: `no data: \`${query}\` returned no series` };
    if (series.length > 1) {
      const shown = series.slice(0, 3).map((s) => labels(s.metric)).join(', ');
      return {
        values: {},
        inconclusive: `\`${query}\` returned ${series.length} series (${shown}${series.length > 3 ? ', ...' : ''}); aggregate it to one (sum, max, ...)`,
      };
    }
    return fromSample(series[0]!.value, query);
  }
  return { values: {}, error: `\`${query}\` gives a ${type ?? 'result of unknown type'}; analysis needs an instant vector of one series or a scalar` };
}

function fromSample(sample: Sample | undefined, query: string): Measurement {
  const raw = Array.isArray(sample) ? sample[1] : undefined;
  if (typeof raw !== 'string') return { values: {}, inconclusive: `unexpected answer from Prometheus for \`${query}\`` };
  const v = Number(raw.replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity'));
  if (Number.isNaN(v)) return { values: {}, inconclusive: `\`${query}\` is NaN (nothing to divide by yet?)` };
  return { values: { result: v } };
}

function labels(m: Record<string, string> | undefined): string {
  const entries = Object.entries(m ?? {});
  const name = m?.__name__ ?? '';
  const rest = entries.filter(([k]) => k !== '__name__').map(([k, v]) => `${k}="${v}"`);
  return `${name}{${rest.join(',')}}`;
}
