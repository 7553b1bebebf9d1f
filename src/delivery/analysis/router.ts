// The `router` analysis source: figures of the new version's traffic (and of stable's, as
// stable_*) over the last interval, from two cumulative snapshots of the edge's router metrics,
// the way Prometheus turns counters into rates.
import type { RouteMetrics, VersionMetrics } from '../../edge/api.js';

export type Values = Record<string, number | undefined>;

/** The q-quantile (0..1) of a bucketed histogram, interpolated within its bucket. */
export function quantile(boundsMs: (number | null)[], counts: number[], q: number): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      const lower = i === 0 ? 0 : (boundsMs[i - 1] as number);
      const upper = boundsMs[i];
      // The overflow bucket has no upper bound: report its lower bound (a floor, not a guess).
      if (upper === null || upper === undefined || !Number.isFinite(upper)) return lower;
      return lower + (upper - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return boundsMs[boundsMs.length - 2] as number;
}

function delta(cur: VersionMetrics | undefined, prev: VersionMetrics | undefined): VersionMetrics | undefined {
  if (!cur) return undefined;
  if (!prev) return cur;
  const classes: Record<string, number> = {};
  for (const [k, v] of Object.entries(cur.statusClasses)) classes[k] = v - (prev.statusClasses[k] ?? 0);
  return {
    requests: cur.requests - prev.requests,
    statusClasses: classes,
    proxyErrors: cur.proxyErrors - prev.proxyErrors,
    latencyBuckets: cur.latencyBuckets.map((c, i) => c - (prev.latencyBuckets[i] ?? 0)),
    latencySumMs: cur.latencySumMs - prev.latencySumMs,
  };
}

function figures(m: VersionMetrics | undefined, bounds: (number | null)[], seconds: number, prefix = ''): Values {
  if (!m || m.requests <= 0) return { [`${prefix}requests`]: 0, [`${prefix}request_rate`]: 0 };
  const errors = m.statusClasses['5xx'] ?? 0;
  return {
    [`${prefix}requests`]: m.requests,
    [`${prefix}request_rate`]: seconds > 0 ? m.requests / seconds : undefined,
    [`${prefix}error_rate`]: errors / m.requests,
    [`${prefix}p50_ms`]: quantile(bounds, m.latencyBuckets, 0.5),
    [`${prefix}p95_ms`]: quantile(bounds, m.latencyBuckets, 0.95),
    [`${prefix}p99_ms`]: quantile(bounds, m.latencyBuckets, 0.99),
  };
}

/** Values of `version` (and of `stableVersion` as stable_*) between two snapshots. */
export function routerValues(prev: RouteMetrics | null, cur: RouteMetrics, version: string, stableVersion?: string): Values {
  const seconds = prev ? (cur.at - prev.at) / 1000 : 0;
  const mine = delta(cur.versions[version], prev?.versions[version]);
  const values = figures(mine, cur.bucketsMs, seconds);
  if (stableVersion && stableVersion !== version) Object.assign(values, figures(delta(cur.versions[stableVersion], prev?.versions[stableVersion]), cur.bucketsMs, seconds, 'stable_'));
  return values;
}
