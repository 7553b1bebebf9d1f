// Runs an environment's analysis: every metric measured once per interval, each measurement
// judged by its condition (success, failure, or inconclusive when there is too little data),
// and the release judged by the limits: more failures than `failure_limit` for any metric, or
// more inconclusive measurements than `inconclusive_limit`, fail it.
import { evaluateCondition, parseCondition, type Condition } from '../../config/condition.js';
import type { AnalysisSpec, MetricSpec } from '../../config/types.js';
import type { RouteMetrics } from '../../edge/api.js';
import type { Measurement as StoredMeasurement, MeasurementOutcome } from '../../store/releases.js';
import { measurePrometheus } from './prometheus.js';
import { routerValues, type Values } from './router.js';
import { measureWeb } from './web.js';

export interface AnalysisContext {
  environment: string;
  /** The version label of the new release's traffic, and of stable's. */
  version: string;
  stableVersion?: string;
  /** Where the new version answers (for `web` metrics with a path). */
  newVersionUrl?: string;
  /** The router's cumulative figures (null: the target has no router). */
  routerMetrics: () => Promise<RouteMetrics | null>;
}

export interface Counts {
  failures: Record<string, number>;
  inconclusive: Record<string, number>;
}

export type Verdict = { ok: true } | { ok: false; reason: string; values: Values };

function round(v: number | undefined): number | null {
  return v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10_000) / 10_000;
}

export class Analyzer {
  private readonly conditions = new Map<string, Condition>();
  private prev: RouteMetrics | null = null;

  constructor(
    readonly spec: AnalysisSpec,
    private readonly ctx: AnalysisContext,
    /** Carried over in the release's progress, so a restart does not forgive failures. */
    readonly counts: Counts = { failures: {}, inconclusive: {} },
  ) {
    for (const m of spec.metrics) {
      const parsed = parseCondition(m.condition);
      // The loader has checked every condition; a stored config from an older Ferry might not be.
      if (!parsed.ok) throw new Error(`analysis metric ${m.name}: bad condition \`${m.condition}\`: ${parsed.error}`);
      this.conditions.set(m.name, parsed.cond);
    }
  }

  /** Takes the router's baseline: the first interval is measured from here. */
  async start(): Promise<void> {
    if (this.spec.metrics.some((m) => m.source === 'router')) this.prev = await this.ctx.routerMetrics();
  }

  private async valuesOf(m: MetricSpec, router: RouteMetrics | null): Promise<{ values: Values; inconclusive?: string; error?: string }> {
    if (m.source === 'router') {
      if (!router) return { values: {}, inconclusive: 'the target has no router' };
      const values = routerValues(this.prev, router, this.ctx.version, this.ctx.stableVersion);
      const n = values.requests ?? 0;
      if (n < m.minRequests) return { values, inconclusive: `${n} requests in the interval (fewer than min_requests ${m.minRequests})` };
      return { values };
    }
    const mctx = { environment: this.ctx.environment, version: this.ctx.version, stableVersion: this.ctx.stableVersion, intervalMs: this.spec.intervalMs, newVersionUrl: this.ctx.newVersionUrl };
    const r = m.source === 'prometheus' ? await measurePrometheus(m, mctx) : await measureWeb(m, mctx);
    // An error (a query Prometheus refuses, a bad URL) will not get better by waiting: it fails.
    return { values: r.values, inconclusive: r.inconclusive, error: r.error };
  }

  /** Measures every metric once; returns what to store and the verdict so far. */
  async measure(step: number): Promise<{ measurements: Omit<StoredMeasurement, 'at'>[]; verdict: Verdict }> {
    const router = this.spec.metrics.some((m) => m.source === 'router') ? await this.ctx.routerMetrics() : null;
    const measurements: Omit<StoredMeasurement, 'at'>[] = [];
    let verdict: Verdict = { ok: true };
    const results = await Promise.all(this.spec.metrics.map((m) => this.valuesOf(m, router).catch((err: Error): { values: Values; inconclusive?: string; error?: string } => ({ values: {}, inconclusive: err.message }))));
    this.spec.metrics.forEach((m, i) => {
      const { values, inconclusive, error } = results[i]!;
      let outcome: MeasurementOutcome;
      let message: string | null = error ?? inconclusive ?? null;
      if (error) outcome = 'failure';
      else if (inconclusive) outcome = 'inconclusive';
      else {
        const r = evaluateCondition(this.conditions.get(m.name)!, values);
        if (r === 'unknown') {
          outcome = 'inconclusive';
          message = `not enough data to evaluate \`${m.condition}\``;
        } else outcome = r ? 'success' : 'failure';
        if (outcome === 'failure') message = `\`${m.condition}\` is false`;
      }
      const shown: Record<string, number | null> = {};
      for (const [k, v] of Object.entries(values)) shown[k] = round(v);
      measurements.push({ step, metric: m.name, source: m.source, outcome, values: shown, message });
      if (outcome === 'failure') {
        const n = (this.counts.failures[m.name] = (this.counts.failures[m.name] ?? 0) + 1);
        if (n > this.spec.failureLimit && verdict.ok) verdict = { ok: false, reason: `analysis failed: ${m.name} (${m.condition}) failed ${n} time${n === 1 ? '' : 's'}, limit ${this.spec.failureLimit}`, values };
      } else if (outcome === 'inconclusive') {
        const n = (this.counts.inconclusive[m.name] = (this.counts.inconclusive[m.name] ?? 0) + 1);
        if (n > this.spec.inconclusiveLimit && verdict.ok) verdict = { ok: false, reason: `analysis inconclusive: ${m.name} could not be measured ${n} times (${message}), limit ${this.spec.inconclusiveLimit}`, values };
      }
    });
    if (router) this.prev = router;
    return { measurements, verdict };
  }
}
