// Raw (schema-checked) `environments:` -> EnvironmentConfig with every default applied. As in
// normalize.ts, the schema has already reported wrong types, unknown keys and out-of-range
// numbers, so this code skips what it does not recognize; it reports what only code can see:
// keys that must be there, keys that belong to another kind of target or metric, durations,
// conditions, cron patterns, time zones, regular expressions, ports used twice.

import { isIP } from 'node:net';
import { posix } from 'node:path';
import type { Cron } from 'croner';
import type { LineCounter } from 'yaml';
import type { RE2JS } from 're2js';
import { RE2, Cron as loadCron, regexFlags } from './lazy-libs.js';
import { conditionIdentifierNodes, parseCondition } from './condition.js';
import { parseDuration } from './duration.js';
import type { Issues } from './issues.js';
import { isMap, type Json } from './merge.js';
import { variables } from './normalize.js';
import { keyLoc, locInsideScalar, valueLoc, type Loc } from './positions.js';
import { didYouMean } from './suggest.js';
import type {
  AnalysisSpec,
  CanarySpec,
  CanaryStep,
  EnvironmentConfig,
  FreezeWindow,
  HealthSpec,
  MetricSpec,
  ProbeSpec,
  ProtectionSpec,
  RouterSpec,
  StrategySpec,
  TargetSpec,
  WebCheckSpec,
} from './types.js';

export interface EnvironmentContext {
  issues: Issues;
  lc: LineCounter;
}

/** Names travel into paths, variables and URLs: keep them plain. */
export const ENVIRONMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export const DEFAULTS = {
  instances: 1,
  maxSurge: 1,
  maxUnavailable: 0,
  keepWarmMs: 5 * 60_000,
  healthPath: '/healthz',
  readiness: { intervalMs: 250, timeoutMs: 2000, failureThreshold: 1 },
  liveness: { intervalMs: 5000, timeoutMs: 2000, failureThreshold: 3 },
  startTimeoutMs: 60_000,
  routerHost: '127.0.0.1',
  analysisIntervalMs: 1000,
  failureLimit: 1,
  inconclusiveLimit: 5,
  minRequests: 20,
  prometheusAddress: 'http://127.0.0.1:9090',
  webMethod: 'GET',
  webTimeoutMs: 5000,
} as const;

const ROUTER_VALUES = ['error_rate', 'p50_ms', 'p95_ms', 'p99_ms', 'request_rate', 'requests'];

/** The names a condition may use, by metric source. */
export const CONDITION_IDENTIFIERS: Record<MetricSpec['source'], readonly string[]> = {
  router: [...ROUTER_VALUES, ...ROUTER_VALUES.map((v) => `stable_${v}`)],
  prometheus: ['result'],
  web: ['status', 'status_ok', 'duration_ms', 'body_matches'],
};

const CONDITION_EXAMPLES: Record<MetricSpec['source'], string> = {
  router: 'condition: "error_rate < 0.01"  (or "p99_ms < stable_p99_ms * 1.5 + 20")',
  prometheus: 'condition: "result < 0.8"  (result is the query\'s value)',
  web: 'condition: "status == 200 && duration_ms < 500"',
};

/** Keys of a metric that only one source uses. */
const SOURCE_KEYS: Record<MetricSpec['source'], string[]> = {
  router: ['min_requests'],
  prometheus: ['query', 'address'],
  web: ['url', 'method', 'status', 'body', 'timeout'],
};

const PROCESS_KEYS = ['command', 'instances', 'cwd'];
/** Keys of `router:` that only HAProxy as the provider uses. */
const HAPROXY_KEYS = ['socket', 'backend', 'stats_url', 'url'];
/** Router values HAProxy's figures cannot give: it keeps average times, not a latency histogram. */
const LATENCY_VALUE = /^(stable_)?p(50|95|99)_ms$/;
/** HAProxy's names for proxies (a backend), as its configuration parser accepts them. */
const HAPROXY_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const HAPROXY_EXAMPLE = 'router:\n  provider: haproxy\n  socket: /run/haproxy/admin.sock      # its runtime API (stats socket ... level admin)\n  backend: app                         # the backend with the stable*/canary* server slots\n  stats_url: http://127.0.0.1:8404/metrics\n  url: http://127.0.0.1:8080';
const SCRIPT_KEYS = ['deploy', 'set_weight', 'promote', 'rollback', 'timeout'];
const STRATEGIES = ['rolling', 'blue-green', 'canary'] as const;
const STEP_KINDS = ['weight', 'pause', 'analysis', 'approval'] as const;

const CANARY_EXAMPLE = `strategy:
  canary:
    steps: [{ weight: 10 }, { pause: 1m }, { weight: 50 }, { pause: 1m }]`;

/** Normalizes every environment; positions and messages use the `environments.NAME.key` path. */
export function normalizeEnvironments(ctx: EnvironmentContext, raw: Json | null): Record<string, EnvironmentConfig> {
  const out: Record<string, EnvironmentConfig> = {};
  if (!raw) return out;
  for (const [name, body] of Object.entries(raw)) {
    const nameLoc = keyLoc(raw, name);
    if (!ENVIRONMENT_NAME.test(name)) {
      ctx.issues.add(
        'bad-name',
        nameLoc,
        `\`${name}\` is not a valid environment name`,
        'use letters, digits, `.`, `_` and `-` (starting with a letter or digit), at most 63 characters',
      );
      continue;
    }
    // Not a map: the schema said so.
    if (!isMap(body)) continue;
    out[name] = new EnvironmentNormalizer(ctx, name, body, nameLoc).run();
  }
  checkPorts(ctx, raw, out);
  checkBackends(ctx, raw, out);
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function int(v: unknown, fallback: number): number {
  return Number.isInteger(v) ? (v as number) : fallback;
}

/** A string or a list of strings (one level of nested lists, like `script:`). */
function commands(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return [];
  return v.flatMap((x) => (Array.isArray(x) ? x : [x])).filter((x): x is string => typeof x === 'string');
}

/** Why `src` with `flags` is no RE2 pattern; undefined when it is one. */
function compileRegex(src: string, flags = ''): string | undefined {
  try {
    RE2().compile(src, regexFlags(flags));
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

class EnvironmentNormalizer {
  private readonly issues: Issues;
  private readonly base: string;
  /** `router: { provider: haproxy }`: known before the analysis is read, for what it cannot measure. */
  private readonly haproxy: boolean;

  constructor(
    private readonly ctx: EnvironmentContext,
    private readonly name: string,
    private readonly env: Json,
    private readonly nameLoc: Loc | undefined,
  ) {
    this.issues = ctx.issues;
    this.base = `environments.${name}`;
    this.haproxy = isMap(env.router) && env.router.provider === 'haproxy' && !(isMap(env.target) && env.target.type === 'script');
  }

  run(): EnvironmentConfig {
    const target = this.target();
    return {
      name: this.name,
      target,
      strategy: this.strategy(target),
      health: this.health(target),
      router: this.router(target),
      protection: this.protection(),
      variables: variables(this.env.variables),
      onRestart: this.env.on_restart === 'rollback' ? 'rollback' : 'resume',
      pos: this.issues.pos(this.nameLoc),
    };
  }

  // --- helpers ------------------------------------------------------------------------------

  private missing(at: Loc | undefined, label: string, key: string, hint: string): void {
    this.issues.add('missing-key', at, `\`${label}\` needs \`${key}\``, hint);
  }

  /** Milliseconds of parent[key]; undefined when absent or wrong (reported here or by the schema). */
  private duration(parent: Json, key: string, label: string, opts: { positive?: boolean } = {}): number | undefined {
    const v = parent[key];
    if ((typeof v !== 'string' && typeof v !== 'number') || (typeof v === 'number' && v < 0)) return undefined;
    const ms = parseDuration(v);
    if (ms === null) {
      this.issues.add('bad-duration', valueLoc(parent, key), `\`${String(v)}\` is not a duration (${label}.${key})`, 'use forms like 250ms, 30s, 10m, 1h30m, "1h 30m"');
      return undefined;
    }
    if (opts.positive && ms <= 0) {
      this.issues.add('bad-value', valueLoc(parent, key), `\`${label}.${key}\` must be longer than 0`, 'use a duration like 1s or 30s');
      return undefined;
    }
    return ms;
  }

  private misplaced(parent: Json, key: string, message: string, hint: string): void {
    this.issues.add('misplaced-key', keyLoc(parent, key), message, hint);
  }

  // --- target -------------------------------------------------------------------------------

  private target(): TargetSpec {
    const label = `${this.base}.target`;
    const t = this.env.target;
    const fallback: TargetSpec = { type: 'process', command: '', instances: DEFAULTS.instances };
    if (t === undefined) {
      this.issues.add(
        'missing-key',
        this.nameLoc,
        `environment \`${this.name}\` has no \`target\``,
        'say what runs there, for example:\n  target: { type: process, command: node server.js, instances: 2 }\nor, with your own deploy commands:\n  target: { type: script, deploy: ./deploy.sh }',
      );
      return fallback;
    }
    if (!isMap(t)) return fallback;
    // A type the schema rejected: nothing more to say until it is fixed.
    if (t.type !== undefined && t.type !== 'process' && t.type !== 'script') return fallback;
    const type = t.type === 'script' ? 'script' : 'process';
    const at = valueLoc(this.env, 'target');

    for (const k of type === 'process' ? SCRIPT_KEYS : PROCESS_KEYS) {
      if (!(k in t)) continue;
      this.misplaced(
        t,
        k,
        `\`${k}\` is for ${type === 'process' ? 'script' : 'process'} targets; this target is \`type: ${type}\``,
        type === 'process' ? 'add `type: script` to deploy with your own commands, or remove it' : 'remove it; a script target deploys with `deploy:`',
      );
    }

    if (type === 'script') {
      if (t.deploy === undefined) {
        this.missing(at, label, 'deploy', 'a script target deploys with your own commands, like deploy: ./deploy.sh\n(FERRY_ENVIRONMENT and FERRY_VERSION say what to deploy)');
      } else if (commands(t.deploy).length === 0 && (typeof t.deploy === 'string' || Array.isArray(t.deploy))) {
        this.issues.add('bad-value', valueLoc(t, 'deploy'), `\`${label}.deploy\` has no commands`, 'list the commands that deploy the new version');
      }
      const spec: TargetSpec = { type: 'script', deploy: commands(t.deploy) };
      if (t.set_weight !== undefined) spec.setWeight = commands(t.set_weight);
      if (t.promote !== undefined) spec.promote = commands(t.promote);
      if (t.rollback !== undefined) spec.rollback = commands(t.rollback);
      const timeoutMs = this.duration(t, 'timeout', `${label}.timeout`, { positive: true });
      if (timeoutMs !== undefined) spec.timeoutMs = timeoutMs;
      return spec;
    }

    const command = str(t.command);
    if (t.command === undefined) {
      this.missing(at, label, 'command', 'the command that starts one instance; it must listen on $PORT, like command: node server.js');
    } else if (command !== undefined && command.trim() === '') {
      this.issues.add('bad-value', valueLoc(t, 'command'), `\`${label}.command\` is empty`, 'the command that starts one instance, like command: node server.js');
    }
    const spec: TargetSpec = { type: 'process', command: command ?? '', instances: int(t.instances, DEFAULTS.instances) };
    const cwd = str(t.cwd);
    if (cwd !== undefined) {
      const norm = posix.normalize(cwd);
      if (posix.isAbsolute(cwd) || norm === '..' || norm.startsWith('../')) {
        this.issues.add('bad-value', valueLoc(t, 'cwd'), `\`${label}.cwd\` must stay inside the release's files`, 'use a relative path like cwd: server');
      } else spec.cwd = norm;
    }
    return spec;
  }

  // --- strategy -----------------------------------------------------------------------------

  private strategy(target: TargetSpec): StrategySpec {
    const label = `${this.base}.strategy`;
    const s = this.env.strategy;
    const rolling: StrategySpec = { type: 'rolling', maxSurge: DEFAULTS.maxSurge, maxUnavailable: DEFAULTS.maxUnavailable };
    if (s === undefined || s === null) return rolling;
    if (typeof s === 'string') {
      if (s === 'blue-green') return this.blueGreen({}, label, target);
      if (s === 'canary') {
        this.issues.add('missing-key', valueLoc(this.env, 'strategy'), '`strategy: canary` needs its steps', `write the canary as a map with its steps:\n${CANARY_EXAMPLE}`);
        return { type: 'canary', steps: [] };
      }
      return rolling;
    }
    if (!isMap(s)) return rolling;
    const named = Object.keys(s).filter((k) => (STRATEGIES as readonly string[]).includes(k));
    if (named.length === 0) {
      // Only unknown keys: the schema reported each.
      if (Object.keys(s).length === 0) {
        this.issues.add('missing-key', valueLoc(this.env, 'strategy'), `\`${label}\` names no strategy`, 'use one of: rolling, blue-green, canary, like strategy: rolling');
      }
      return rolling;
    }
    if (named.length > 1) {
      this.issues.add('bad-value', keyLoc(s, named[1]), `\`${label}\` has both \`${named[0]}\` and \`${named[1]}\`; an environment has one strategy`, 'keep one of them');
    }
    const kind = named[0];
    const v = s[kind];
    if (kind === 'rolling') {
      if (!isMap(v)) return rolling;
      const spec = { type: 'rolling' as const, maxSurge: int(v.max_surge, DEFAULTS.maxSurge), maxUnavailable: int(v.max_unavailable, DEFAULTS.maxUnavailable) };
      if (spec.maxSurge === 0 && spec.maxUnavailable === 0) {
        this.issues.add('bad-value', valueLoc(s, 'rolling'), `\`${label}.rolling\` can neither add nor remove an instance: max_surge and max_unavailable are both 0`, 'set max_surge: 1 (start a new instance before stopping an old one) or max_unavailable: 1');
      }
      return spec;
    }
    if (kind === 'blue-green') return this.blueGreen(isMap(v) ? v : {}, `${label}.blue-green`, target);
    return this.canary(s, isMap(v) ? v : undefined, `${label}.canary`, target);
  }

  private blueGreen(v: Json, label: string, target: TargetSpec): StrategySpec {
    const spec: StrategySpec = {
      type: 'blue-green',
      smoke: [],
      keepWarmMs: this.duration(v, 'keep_warm', label) ?? DEFAULTS.keepWarmMs,
    };
    if (Number.isInteger(v.preview_port)) {
      if (target.type === 'script') {
        this.misplaced(v, 'preview_port', '`preview_port` is for process targets; a script target exposes the new version itself', 'remove it');
      } else spec.previewPort = v.preview_port as number;
    }
    if (Array.isArray(v.smoke)) {
      v.smoke.forEach((c, i) => {
        if (!isMap(c)) return;
        const check = this.webCheck(c, `${label}.smoke[${i}]`, valueLoc(v.smoke, i), target);
        if (check) spec.smoke.push(check);
      });
    }
    const analysis = this.analysis(v, `${label}.analysis`, target, 'blue-green');
    if (analysis) spec.analysis = analysis;
    return spec;
  }

  private canary(parent: Json, v: Json | undefined, label: string, target: TargetSpec): CanarySpec {
    const spec: CanarySpec = { type: 'canary', steps: [] };
    const at = valueLoc(parent, 'canary');
    // Not a map (`canary:` with nothing under it included): the schema's to report.
    if (!v) return spec;
    const analysis = this.analysis(v, `${label}.analysis`, target, 'canary');
    if (analysis) spec.analysis = analysis;
    const steps = v.steps;
    if (steps === undefined) {
      this.missing(at, label, 'steps', `list the canary's steps:\n${CANARY_EXAMPLE}`);
      return spec;
    }
    if (!Array.isArray(steps)) return spec;
    if (steps.length === 0) {
      this.issues.add('bad-value', valueLoc(v, 'steps'), `\`${label}.steps\` is empty`, `a canary needs at least one step, like steps: [{ weight: 10 }, { pause: 1m }]`);
      return spec;
    }
    let weightWithoutSetter = false;
    steps.forEach((st, i) => {
      if (!isMap(st)) return;
      const stepLabel = `${label}.steps[${i}]`;
      const stepLoc = valueLoc(steps, i);
      const pos = this.issues.pos(stepLoc);
      const known = Object.keys(st).filter((k) => (STEP_KINDS as readonly string[]).includes(k));
      if (known.length === 0) {
        if (Object.keys(st).length === 0) {
          this.issues.add('bad-step', stepLoc, `\`${stepLabel}\` is empty`, 'a step is one of: { weight: 10 }, { pause: 1m }, { pause: {} } (until promoted), { analysis: 30s }, { approval: true }');
        }
        return;
      }
      if (known.length > 1) {
        this.issues.add(
          'bad-step',
          keyLoc(st, known[1]),
          `\`${stepLabel}\` has both \`${known[0]}\` and \`${known[1]}\`; a step does one thing`,
          `write them as two steps, in the order they should happen:\n  - { ${known[0]}: ... }\n  - { ${known[1]}: ... }`,
        );
        return;
      }
      const kind = known[0];
      const val = st[kind];
      let step: CanaryStep | undefined;
      if (kind === 'weight') {
        if (Number.isInteger(val) && (val as number) >= 0 && (val as number) <= 100) {
          step = { kind: 'weight', weight: val as number, pos };
          if (target.type === 'script' && !target.setWeight && (val as number) < 100 && !weightWithoutSetter) {
            weightWithoutSetter = true;
            this.issues.add(
              'missing-key',
              valueLoc(st, 'weight'),
              `\`${stepLabel}\` sends part of the traffic, but the script target of environment \`${this.name}\` has no \`set_weight\``,
              'add set_weight: commands that send $FERRY_CANARY_WEIGHT percent of the traffic to the new version',
            );
          }
        }
      } else if (kind === 'pause') {
        if (val === true || val === null || isMap(val)) step = { kind: 'pause', pos };
        else if (typeof val === 'string' || typeof val === 'number') {
          const ms = this.duration(st, 'pause', stepLabel);
          if (ms !== undefined) step = { kind: 'pause', durationMs: ms, pos };
        }
      } else if (kind === 'analysis') {
        const ms = this.duration(st, 'analysis', stepLabel, { positive: true });
        if (ms !== undefined) step = { kind: 'analysis', durationMs: ms, pos };
        if (!('analysis' in v) && (typeof val === 'string' || typeof val === 'number')) {
          this.issues.add(
            'missing-analysis',
            valueLoc(st, 'analysis'),
            `\`${stepLabel}\` measures the canary's analysis, but \`${label}\` has no \`analysis\``,
            'add the metrics to measure under the canary:\n  analysis:\n    metrics:\n      - { name: errors, source: router, condition: "error_rate < 0.01" }',
          );
        }
      } else if (val === true) step = { kind: 'approval', pos };
      if (step) spec.steps.push(step);
    });
    const weights = spec.steps.filter((s) => s.kind === 'weight');
    const last = weights[weights.length - 1];
    if (!last || last.weight !== 100) {
      // Documented: a canary always ends with the whole traffic on the new version.
      spec.steps.push({ kind: 'weight', weight: 100, pos: this.issues.pos(valueLoc(v, 'steps')) });
    }
    return spec;
  }

  // --- analysis -----------------------------------------------------------------------------

  private analysis(parent: Json, label: string, target: TargetSpec, strategy: 'canary' | 'blue-green'): AnalysisSpec | undefined {
    const a = parent.analysis;
    if (!isMap(a)) return undefined;
    const spec: AnalysisSpec = {
      intervalMs: this.duration(a, 'interval', label, { positive: true }) ?? DEFAULTS.analysisIntervalMs,
      failureLimit: int(a.failure_limit, DEFAULTS.failureLimit),
      inconclusiveLimit: int(a.inconclusive_limit, DEFAULTS.inconclusiveLimit),
      metrics: [],
    };
    const metrics = a.metrics;
    if (metrics === undefined) {
      this.missing(valueLoc(parent, 'analysis'), label, 'metrics', 'list what to measure, like:\n  metrics:\n    - { name: errors, source: router, condition: "error_rate < 0.01" }');
      return spec;
    }
    if (!Array.isArray(metrics)) return spec;
    if (metrics.length === 0) {
      this.issues.add('bad-value', valueLoc(a, 'metrics'), `\`${label}.metrics\` is empty`, 'list at least one metric, like - { name: errors, source: router, condition: "error_rate < 0.01" }');
    }
    const seen = new Map<string, Loc | undefined>();
    metrics.forEach((m, i) => {
      if (!isMap(m)) return;
      const metric = this.metric(m, `${label}.metrics[${i}]`, valueLoc(metrics, i), target, strategy);
      if (!metric) return;
      if (metric.name !== '' && seen.has(metric.name)) {
        const first = seen.get(metric.name);
        this.issues.add('duplicate-metric', valueLoc(m, 'name'), `metric \`${metric.name}\` is defined twice in \`${label}\``, `the first one is at line ${first?.line ?? '?'}; give each metric its own name`);
      } else seen.set(metric.name, valueLoc(m, 'name'));
      spec.metrics.push(metric);
    });
    return spec;
  }

  private metric(m: Json, label: string, at: Loc | undefined, target: TargetSpec, strategy: 'canary' | 'blue-green'): MetricSpec | undefined {
    const source = m.source === undefined ? 'router' : m.source;
    if (source !== 'router' && source !== 'prometheus' && source !== 'web') return undefined; // the schema's
    const name = str(m.name);
    if (m.name === undefined) this.missing(at, label, 'name', 'name the metric, like name: errors; messages and stored measurements refer to it by name');

    for (const [other, keys] of Object.entries(SOURCE_KEYS)) {
      if (other === source) continue;
      for (const k of keys) {
        if (!(k in m)) continue;
        this.misplaced(
          m,
          k,
          `\`${k}\` is for ${other} metrics; the source of this one is ${source}${m.source === undefined ? ' (the default)' : ''}`,
          m.source === undefined ? `add \`source: ${other}\`, or remove \`${k}\`` : `remove \`${k}\`, or use source: ${other}`,
        );
      }
    }
    if (source === 'router' && target.type === 'script') {
      this.issues.add(
        'bad-source',
        'source' in m ? valueLoc(m, 'source') : at,
        `router metrics need Ferry's router, and environment \`${this.name}\` has a script target`,
        'measure with source: prometheus (a query) or source: web (an HTTP request)',
      );
    }

    const condition = str(m.condition);
    if (m.condition === undefined) {
      this.missing(at, label, 'condition', `say what a good measurement is, like ${CONDITION_EXAMPLES[source]}`);
    } else if (condition !== undefined) {
      this.checkCondition(m, label, condition, source, strategy);
    }
    const common = { name: name ?? '', condition: condition ?? '', pos: this.issues.pos(at) };

    if (source === 'router') return { ...common, source, minRequests: int(m.min_requests, DEFAULTS.minRequests) };
    if (source === 'prometheus') {
      const query = str(m.query);
      if (m.query === undefined) this.missing(at, label, 'query', 'a PromQL query whose single value is `result`, like query: sum(rate(http_errors_total{version="$FERRY_VERSION"}[1m]))');
      else if (query !== undefined && query.trim() === '') this.issues.add('bad-value', valueLoc(m, 'query'), `\`${label}.query\` is empty`, 'write a PromQL query returning one value');
      let address: string = DEFAULTS.prometheusAddress;
      const a = str(m.address);
      if (a !== undefined) {
        if (isHttpUrl(a)) address = a.replace(/\/+$/, '');
        else this.issues.add('bad-value', valueLoc(m, 'address'), `\`${a}\` is not an http(s) URL (${label}.address)`, 'write the Prometheus base URL, like address: http://127.0.0.1:9090');
      }
      return { ...common, source, query: query ?? '', address };
    }
    const check = this.webCheck(m, label, at, target);
    const web: MetricSpec = { ...common, source, url: check?.url ?? '', method: check?.method ?? DEFAULTS.webMethod, timeoutMs: check?.timeoutMs ?? DEFAULTS.webTimeoutMs };
    if (check?.expectStatus !== undefined) web.expectStatus = check.expectStatus;
    if (check?.expectBody !== undefined) web.expectBody = check.expectBody;
    return web;
  }

  private checkCondition(m: Json, label: string, text: string, source: MetricSpec['source'], strategy: 'canary' | 'blue-green'): void {
    const base = valueLoc(m, 'condition');
    const inside = (offset: number): Loc | undefined => (base ? locInsideScalar(base, offset, this.ctx.lc) : undefined);
    const block = base?.scalar?.type === 'BLOCK_LITERAL' || base?.scalar?.type === 'BLOCK_FOLDED';
    const where = (offset: number) => (block ? ` (at character ${offset + 1})` : '');
    const parsed = parseCondition(text);
    if (!parsed.ok) {
      this.issues.add(
        'bad-condition',
        inside(parsed.offset),
        `bad condition in \`${label}\`: ${parsed.error}${where(parsed.offset)}`,
        `conditions compare values with < <= > >= == !=, use + - * / and parentheses, and join with && || !; like ${CONDITION_EXAMPLES[source]}`,
      );
      return;
    }
    const allowed = CONDITION_IDENTIFIERS[source];
    for (const id of conditionIdentifierNodes(parsed.cond)) {
      if (!allowed.includes(id.name)) {
        const near = didYouMean(id.name, allowed);
        this.issues.add(
          'unknown-identifier',
          inside(id.offset),
          `\`${id.name}\` is not a value of ${source} metrics${where(id.offset)}`,
          near ?? `${source} metrics have: ${allowed.join(', ')}`,
        );
      } else if (source === 'router' && this.haproxy && LATENCY_VALUE.test(id.name)) {
        this.issues.add(
          'unknown-identifier',
          inside(id.offset),
          `\`${id.name}\` never has a value with HAProxy as the router: HAProxy gives average response times, not the latency histogram p50/p95/p99 are computed from${where(id.offset)}`,
          'measure latency with source: prometheus (a histogram of your application) or source: web (duration_ms); error_rate, request_rate and requests come from HAProxy',
        );
      } else if (strategy === 'blue-green' && id.name.startsWith('stable_')) {
        this.issues.add(
          'unknown-identifier',
          inside(id.offset),
          `\`${id.name}\` never has a value under blue-green: after the switch the stable version gets no traffic${where(id.offset)}`,
          `compare with a fixed limit, like ${id.name.slice('stable_'.length)} < 500, or use a canary to compare the two versions`,
        );
      } else if (id.name === 'body_matches' && m.body === undefined) {
        this.issues.add('missing-key', inside(id.offset), `\`body_matches\` needs \`body:\` in \`${label}\`, the regular expression the body is matched against${where(id.offset)}`, 'add body: "ok" (an RE2 regular expression)');
      }
    }
  }

  /** A smoke check, or the request part of a web metric. */
  private webCheck(c: Json, label: string, at: Loc | undefined, target: TargetSpec): WebCheckSpec | undefined {
    const url = str(c.url);
    if (c.url === undefined) {
      this.missing(at, label, 'url', 'a path of the new version, like url: /healthz, or a full URL');
    } else if (url !== undefined) {
      if (url.startsWith('/')) {
        if (target.type === 'script') {
          this.issues.add('bad-value', valueLoc(c, 'url'), `\`${url}\` is a path, and the script target of environment \`${this.name}\` has no address Ferry knows (${label}.url)`, 'write a full URL, like url: https://staging.example.com/healthz');
        }
      } else if (!isHttpUrl(url)) {
        this.issues.add('bad-value', valueLoc(c, 'url'), `\`${url}\` is neither a path starting with / nor an http(s) URL (${label}.url)`, 'write a path of the new version, like /healthz, or a full URL');
      }
    }
    const check: WebCheckSpec = {
      url: url ?? '',
      method: str(c.method) ?? DEFAULTS.webMethod,
      timeoutMs: this.duration(c, 'timeout', label, { positive: true }) ?? DEFAULTS.webTimeoutMs,
    };
    if (Number.isInteger(c.status)) check.expectStatus = [c.status as number];
    else if (Array.isArray(c.status)) check.expectStatus = c.status.filter((x): x is number => Number.isInteger(x));
    const body = str(c.body);
    if (body !== undefined) {
      const err = compileRegex(body);
      if (err) this.issues.add('bad-regex', valueLoc(c, 'body'), `bad regular expression in \`${label}.body\`: ${err}`, 'body is an RE2 regular expression (no lookaround or backreferences), like "\\"status\\":\\s*\\"ok\\""');
      else check.expectBody = body;
    }
    return check;
  }

  // --- health, router -----------------------------------------------------------------------

  private health(target: TargetSpec): HealthSpec {
    const label = `${this.base}.health`;
    const h = this.env.health;
    if (h !== undefined && target.type === 'script') {
      this.misplaced(this.env, 'health', '`health` is for process targets; a script target checks its own deployment', 'remove it, and make the deploy script wait until the new version is healthy');
    }
    const v = isMap(h) ? h : {};
    let path: string = DEFAULTS.healthPath;
    const p = str(v.path);
    if (p !== undefined && this.checkPath(v, 'path', label)) path = p;
    const readiness = this.probe(v, 'readiness', label, { path, ...DEFAULTS.readiness });
    const liveness = v.liveness === false ? null : this.probe(v, 'liveness', label, { path, ...DEFAULTS.liveness });
    return {
      readiness,
      liveness,
      startTimeoutMs: this.duration(v, 'start_timeout', label, { positive: true }) ?? DEFAULTS.startTimeoutMs,
    };
  }

  private checkPath(parent: Json, key: string, label: string): boolean {
    const p = parent[key];
    if (typeof p === 'string' && !p.startsWith('/')) {
      this.issues.add('bad-value', valueLoc(parent, key), `\`${label}.${key}\` must start with /, not \`${p}\``, `write it as /${p.replace(/^\/*/, '')}`);
      return false;
    }
    return true;
  }

  private probe(parent: Json, key: string, label: string, defaults: ProbeSpec): ProbeSpec {
    const v = parent[key];
    if (!isMap(v)) return defaults;
    const l = `${label}.${key}`;
    return {
      path: typeof v.path === 'string' && this.checkPath(v, 'path', l) ? v.path : defaults.path,
      intervalMs: this.duration(v, 'interval', l, { positive: true }) ?? defaults.intervalMs,
      timeoutMs: this.duration(v, 'timeout', l, { positive: true }) ?? defaults.timeoutMs,
      failureThreshold: int(v.failure_threshold, defaults.failureThreshold),
    };
  }

  private router(target: TargetSpec): RouterSpec {
    const label = `${this.base}.router`;
    const r = this.env.router;
    const spec: RouterSpec = { host: DEFAULTS.routerHost, sticky: false };
    if (target.type === 'script') {
      for (const k of ['router', 'port']) {
        if (k in this.env) this.misplaced(this.env, k, `\`${k}\` is for process targets; a script target routes its own traffic`, 'remove it (a script target splits traffic with set_weight)');
      }
      return spec;
    }
    const haproxy = this.haproxy;
    if (isMap(r)) {
      if (r.provider === 'edge' || r.provider === 'haproxy') spec.provider = r.provider;
      if (haproxy) {
        if ('port' in r) this.misplaced(r, 'port', '`port` is for the edge\'s router; with `provider: haproxy`, users connect to HAProxy\'s frontend', "remove it: the frontend's `bind` in haproxy.cfg says where users connect (give that address as url: http://HOST:PORT)");
        if ('retry_canary_errors' in r) this.misplaced(r, 'retry_canary_errors', '`retry_canary_errors` is for the edge\'s router', 'remove it: configure retries in haproxy.cfg (`retry-on`)');
        if ('sticky' in r) this.misplaced(r, 'sticky', '`sticky` is for the edge\'s router; HAProxy keeps clients on a server with its own cookie', 'remove it, and add `cookie SERVERID insert indirect nocache` to the backend in haproxy.cfg if clients must stay on one version');
      } else {
        for (const k of HAPROXY_KEYS) {
          if (k in r) this.misplaced(r, k, `\`${k}\` is for \`provider: haproxy\`; this environment's router is the edge's`, 'add provider: haproxy to route through your HAProxy, or remove it');
        }
        if (Number.isInteger(r.port)) spec.port = r.port as number;
        if (typeof r.sticky === 'boolean') spec.sticky = r.sticky;
        if (r.retry_canary_errors === false) spec.retryCanaryErrors = false;
      }
      const host = str(r.host);
      if (host !== undefined) {
        if (isIP(host) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) spec.host = host;
        else this.issues.add('bad-value', valueLoc(r, 'host'), `\`${host}\` is not an address to listen on (${label}.host)`, 'use an IP address like 127.0.0.1 or 0.0.0.0, or a host name');
      }
      if (haproxy) this.haproxyRouter(r, label, spec);
    }
    if (haproxy) {
      if ('port' in this.env) this.misplaced(this.env, 'port', '`port` is for the edge\'s router; with `provider: haproxy`, users connect to HAProxy\'s frontend', "remove it: the frontend's `bind` in haproxy.cfg says where users connect (give that address as router.url)");
    } else if (Number.isInteger(this.env.port)) {
      if (spec.port !== undefined) {
        this.issues.add('conflicting-keys', keyLoc(this.env, 'port'), `environment \`${this.name}\` sets both \`port\` and \`router.port\``, '`port:` is a shorthand for router.port; keep one of them');
      } else spec.port = this.env.port as number;
    }
    return spec;
  }

  /** socket, backend, stats_url and url of `router: { provider: haproxy }`. */
  private haproxyRouter(r: Json, label: string, spec: RouterSpec): void {
    const at = valueLoc(this.env, 'router');
    const socket = str(r.socket);
    if (r.socket === undefined) {
      this.missing(at, label, 'socket', `HAProxy is driven through its runtime API: the \`stats socket\` of haproxy.cfg, at level admin, like\n${HAPROXY_EXAMPLE}`);
    } else if (socket !== undefined) {
      if (isRuntimeSocket(socket)) spec.socket = socket;
      else this.issues.add('bad-value', valueLoc(r, 'socket'), `\`${socket}\` is neither the absolute path of a unix socket nor HOST:PORT (${label}.socket)`, 'write the `stats socket` of haproxy.cfg: a path like /run/haproxy/admin.sock, or 127.0.0.1:9999 for `stats socket ipv4@127.0.0.1:9999 level admin`');
    }
    const backend = str(r.backend);
    if (r.backend === undefined) {
      this.missing(at, label, 'backend', 'the backend of haproxy.cfg whose `stable` and `canary` server slots Ferry fills, like backend: app');
    } else if (backend !== undefined) {
      if (HAPROXY_NAME.test(backend)) spec.backend = backend;
      else this.issues.add('bad-value', valueLoc(r, 'backend'), `\`${backend}\` is not a backend name HAProxy accepts (${label}.backend)`, 'use the name of the `backend` section in haproxy.cfg: letters, digits, `_`, `.`, `:` and `-`');
    }
    for (const [key, field, hint] of [
      ['stats_url', 'statsUrl', 'the URL of its Prometheus exporter, like stats_url: http://127.0.0.1:8404/metrics (a frontend with `http-request use-service prometheus-exporter`)'],
      ['url', 'url', 'where users reach the environment through HAProxy, like url: http://127.0.0.1:8080'],
    ] as const) {
      const v = str(r[key]);
      if (v === undefined) continue;
      if (isHttpUrl(v)) spec[field] = field === 'url' ? v.replace(/\/+$/, '') : v;
      else this.issues.add('bad-value', valueLoc(r, key), `\`${v}\` is not an http(s) URL (${label}.${key})`, hint);
    }
  }

  // --- protection ---------------------------------------------------------------------------

  private protection(): ProtectionSpec {
    const label = `${this.base}.protection`;
    const p = isMap(this.env.protection) ? this.env.protection : {};
    const spec: ProtectionSpec = { approvals: int(p.approvals, 0), branches: null, freeze: [] };
    const b = p.branches;
    if (typeof b === 'string' || Array.isArray(b)) {
      const list = typeof b === 'string' ? [b] : b;
      if (list.length === 0) {
        this.issues.add('bad-value', valueLoc(p, 'branches'), `\`${label}.branches\` is empty, so no branch could deploy here`, 'list the branches allowed to deploy, or leave `branches` out to allow any; to stop deploys for a while, use `freeze`');
      }
      spec.branches = [];
      list.forEach((x, i) => {
        if (typeof x !== 'string') return;
        const at = typeof b === 'string' ? valueLoc(p, 'branches') : valueLoc(b, i);
        const m = /^\/(.*)\/([A-Za-z]*)$/s.exec(x);
        if (m) {
          const err = compileRegex(m[1].replace(/\\\//g, '/'), m[2]);
          if (err) {
            this.issues.add('bad-regex', at, `bad regular expression \`${x}\` in \`${label}.branches\`: ${err}`, 'patterns are RE2 regular expressions between slashes, like /^release-.*/');
            return;
          }
        }
        spec.branches!.push(x);
      });
    }
    if (Array.isArray(p.freeze)) {
      p.freeze.forEach((w, i) => {
        if (!isMap(w)) return;
        const win = this.freezeWindow(w, `${label}.freeze[${i}]`, valueLoc(p.freeze, i));
        if (win) spec.freeze.push(win);
      });
    }
    return spec;
  }

  private freezeWindow(w: Json, label: string, at: Loc | undefined): FreezeWindow | undefined {
    let ok = true;
    let timezone: string | undefined;
    const tz = str(w.timezone);
    if (tz !== undefined) {
      timezone = canonicalTimeZone(tz);
      if (!timezone) {
        ok = false;
        const near = didYouMean(tz, timeZones());
        this.issues.add('bad-timezone', valueLoc(w, 'timezone'), `\`${tz}\` is not a time zone (${label}.timezone)`, near ?? 'use an IANA time zone name, like Europe/Paris, America/New_York or UTC');
      }
    }
    const cron = str(w.cron);
    if (w.cron === undefined) {
      ok = false;
      this.missing(at, label, 'cron', 'when each freeze window opens, like cron: "0 17 * * 5" (Fridays at 17:00)');
    } else if (cron !== undefined) {
      const problem = cronProblem(cron, timezone);
      if (problem) {
        ok = false;
        this.issues.add('bad-cron', valueLoc(w, 'cron'), `bad cron \`${cron}\` in \`${label}\`: ${problem}`, 'five fields: minute hour day-of-month month day-of-week, like "0 17 * * 5" for Fridays at 17:00');
      }
    }
    let durationMs: number | undefined;
    if (w.duration === undefined) {
      ok = false;
      this.missing(at, label, 'duration', 'how long each window stays open, like duration: 64h (Friday 17:00 to Monday 9:00)');
    } else {
      durationMs = this.duration(w, 'duration', label, { positive: true });
      if (durationMs === undefined) ok = false;
    }
    if (!ok || cron === undefined || durationMs === undefined) return undefined;
    const win: FreezeWindow = { cron, durationMs, pos: this.issues.pos(at) };
    if (timezone) win.timezone = timezone;
    return win;
  }
}

/** The `stats socket` of haproxy.cfg as Ferry connects to it: /abs/path, or HOST:PORT ([v6]:PORT). */
export function isRuntimeSocket(s: string): boolean {
  if (s.startsWith('/')) return s.length > 1 && !/[\s\0]/.test(s);
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(s);
  if (!m) return false;
  const port = Number(m[3]);
  if (m[1]!.startsWith('[') && isIP(m[1]!.slice(1, -1)) !== 6) return false;
  return port >= 1 && port <= 65535;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

let zones: string[] | undefined;
function timeZones(): string[] {
  zones ??= [...Intl.supportedValuesOf('timeZone'), 'UTC'];
  return zones;
}

/** The canonical IANA name (`europe/paris` -> Europe/Paris), or undefined when it is not one. */
export function canonicalTimeZone(tz: string): string | undefined {
  if (tz.trim() === '') return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** Why croner rejects the pattern, or that it never fires; undefined when it is fine. */
export function cronProblem(pattern: string, timezone?: string): string | undefined {
  let job: Cron | undefined;
  try {
    // The same mode as the freeze gate (src/delivery/gates/freeze.ts): 5 or 6 fields.
    const CronClass = loadCron();
    job = new CronClass(pattern, { paused: true, mode: '5-or-6-parts', ...(timezone ? { timezone } : {}) });
    if (job.nextRun() === null) return 'it never opens (no date matches it)';
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^Cron\w*:\s*/, '').replace(/\.$/, '');
  } finally {
    job?.stop();
  }
}

/** A port used by two environments (or twice in one) fails at the edge; say so now. */
function checkPorts(ctx: EnvironmentContext, raw: Json, envs: Record<string, EnvironmentConfig>): void {
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  const taken: { port: number; host: string; what: string }[] = [];
  for (const env of Object.values(envs)) {
    const body = raw[env.name];
    if (!isMap(body)) continue;
    const uses: { port: number; host: string; what: string; at: Loc | undefined }[] = [];
    if (env.router.port !== undefined) {
      const at = isMap(body.router) && Number.isInteger(body.router.port) ? valueLoc(body.router, 'port') : valueLoc(body, 'port');
      uses.push({ port: env.router.port, host: env.router.host, what: `the router of environment \`${env.name}\``, at });
    }
    if (env.strategy.type === 'blue-green' && env.strategy.previewPort !== undefined) {
      const s = isMap(body.strategy) && isMap(body.strategy['blue-green']) ? body.strategy['blue-green'] : undefined;
      uses.push({ port: env.strategy.previewPort, host: env.router.host, what: `the preview port of environment \`${env.name}\``, at: s ? valueLoc(s, 'preview_port') : undefined });
    }
    for (const u of uses) {
      const clash = taken.find((t) => t.port === u.port && (t.host === u.host || wildcard(t.host) || wildcard(u.host)));
      if (clash) {
        ctx.issues.add('port-conflict', u.at, `port ${u.port} is already used by ${clash.what}`, 'give each router and preview port its own number, or leave the port out and let the edge pick one');
      } else taken.push(u);
    }
  }
}

/** Two environments filling the same HAProxy backend would take each other's server slots. */
function checkBackends(ctx: EnvironmentContext, raw: Json, envs: Record<string, EnvironmentConfig>): void {
  const taken = new Map<string, string>();
  for (const env of Object.values(envs)) {
    const { provider, socket, backend } = env.router;
    if (provider !== 'haproxy' || !socket || !backend) continue;
    const key = `${socket}\0${backend}`;
    const first = taken.get(key);
    if (first === undefined) {
      taken.set(key, env.name);
      continue;
    }
    const body = raw[env.name];
    const at = isMap(body) && isMap(body.router) ? valueLoc(body.router, 'backend') : undefined;
    ctx.issues.add('backend-conflict', at, `HAProxy backend \`${backend}\` (${socket}) is already driven by environment \`${first}\``, 'give each environment its own backend in haproxy.cfg (each with its stable and canary server slots)');
  }
}
