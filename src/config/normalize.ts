// Raw (schema-checked) job maps -> JobConfig with every default applied. The schema has already
// reported wrong types, so this code skips what it does not recognize instead of reporting again.

import type { LineCounter } from 'yaml';
import { parseDuration } from './duration.js';
import { ExpressionError, parseExpression } from './expr.js';
import type { Issues } from './issues.js';
import { isMap, type Json } from './merge.js';
import { keyLoc, locInsideScalar, valueLoc, type Loc } from './positions.js';
import { closest, didYouMean } from './suggest.js';
import type {
  ArtifactsSpec,
  CacheSpec,
  JobConfig,
  JobNeed,
  RetrySpec,
  RetryWhen,
  Rule,
  When,
} from './types.js';

export interface NormalizeContext {
  issues: Issues;
  lc: LineCounter;
  /** Names of the jobs that run (hidden templates excluded). */
  jobNames: string[];
  stages: string[];
  /** null when the file has no `environments:`. */
  environments: Json | null;
}

/** GitLab's limit on jobs made from one `parallel:` or matrix. */
export const MAX_PARALLEL = 200;

const WHENS: When[] = ['on_success', 'on_failure', 'always', 'manual', 'never'];

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return [];
  return v.flatMap((x) => (Array.isArray(x) ? x : [x])).filter((x): x is string => typeof x === 'string');
}

function ints(v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is number => Number.isInteger(x));
}

/**
 * YAML reads `1.10` as the number 1.1; a variable is a string, so the text as written is kept.
 */
function scalarText(parent: unknown, key: string | number, v: unknown): string | undefined {
  if (typeof v === 'number') {
    const s = valueLoc(parent, key)?.scalar;
    if (s?.type === 'PLAIN') return s.raw.trim();
  }
  return str(v);
}

export function variables(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isMap(v)) return out;
  for (const [k, raw] of Object.entries(v)) {
    if (isMap(raw)) {
      const text = scalarText(raw, 'value', raw.value);
      out[k] = text ?? '';
    } else {
      const text = scalarText(v, k, raw);
      if (text !== undefined) out[k] = text;
    }
  }
  return out;
}

function notSupported(ctx: NormalizeContext, at: Loc | undefined, what: string, hint?: string): void {
  ctx.issues.add('not-supported', at, `${what} is not supported yet`, hint);
}

function duration(ctx: NormalizeContext, parent: Json, key: string, what: string): number | undefined {
  const v = parent[key];
  // Negative numbers are the schema's to report.
  if (v === undefined || (typeof v !== 'string' && typeof v !== 'number') || (typeof v === 'number' && v < 0)) return undefined;
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.issues.add(
      'bad-duration',
      valueLoc(parent, key),
      `\`${String(v)}\` is not a duration (${what})`,
      'use forms like 30s, 10m, 1h30m, "1h 30m", "2 hours"',
    );
    return undefined;
  }
  return ms;
}

export function rules(ctx: NormalizeContext, v: unknown, allowedWhen: readonly string[] = WHENS): Rule[] | null {
  if (!Array.isArray(v)) return null;
  const out: Rule[] = [];
  v.forEach((r, i) => {
    if (!isMap(r)) return;
    const rule: Rule = { pos: ctx.issues.pos(valueLoc(v, i)) };
    if (typeof r.if === 'string') {
      rule.if = r.if;
      checkExpression(ctx, r, r.if);
    }
    if (typeof r.when === 'string') {
      if (r.when === 'delayed') notSupported(ctx, valueLoc(r, 'when'), '`when: delayed`');
      else if (!allowedWhen.includes(r.when)) {
        ctx.issues.add('bad-value', valueLoc(r, 'when'), `\`when: ${r.when}\` is not allowed here`, `use one of: ${allowedWhen.join(', ')}`);
      } else rule.when = r.when as When;
    }
    if (typeof r.allow_failure === 'boolean') rule.allowFailure = r.allow_failure;
    if (isMap(r.variables)) rule.variables = variables(r.variables);
    for (const k of ['changes', 'exists']) {
      if (k in r) notSupported(ctx, keyLoc(r, k), `\`rules:${k}\``, 'use `if:` with variables such as $FERRY_BRANCH');
    }
    out.push(rule);
  });
  return out;
}

function checkExpression(ctx: NormalizeContext, rule: Json, src: string): void {
  try {
    parseExpression(src);
  } catch (e) {
    if (!(e instanceof ExpressionError)) throw e;
    const base = valueLoc(rule, 'if');
    const at = base ? locInsideScalar(base, e.offset, ctx.lc) : undefined;
    ctx.issues.add('bad-expression', at, `bad \`if:\` expression: ${e.message}`, 'expressions look like: $FERRY_BRANCH == "main" && $TAG =~ /^v\\d+/');
  }
}

function retry(v: unknown): RetrySpec {
  const spec: RetrySpec = { max: 0, when: ['always'], exitCodes: [] };
  if (Number.isInteger(v)) spec.max = v as number;
  else if (isMap(v)) {
    if (Number.isInteger(v.max)) spec.max = v.max as number;
    if (v.when !== undefined) spec.when = strings(v.when) as RetryWhen[];
    if (v.exit_codes !== undefined) spec.exitCodes = ints(v.exit_codes);
  }
  return spec;
}

function artifacts(ctx: NormalizeContext, v: unknown): ArtifactsSpec | undefined {
  if (!isMap(v)) return undefined;
  const spec: ArtifactsSpec = {
    paths: strings(v.paths),
    exclude: strings(v.exclude),
    when: v.when === 'on_failure' || v.when === 'always' ? v.when : 'on_success',
  };
  if (v.expire_in !== undefined && !(typeof v.expire_in === 'string' && v.expire_in.trim().toLowerCase() === 'never')) {
    const ms = duration(ctx, v, 'expire_in', 'artifacts.expire_in');
    if (ms !== undefined) spec.expireInMs = ms;
  }
  return spec;
}

function cache(ctx: NormalizeContext, v: unknown): CacheSpec[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  const out: CacheSpec[] = [];
  for (const c of list) {
    if (!isMap(c)) continue;
    if (isMap(c.key)) {
      notSupported(ctx, valueLoc(c, 'key'), '`cache:key` computed from files', 'use a string key with variables, like key: "npm-$FERRY_BRANCH"');
    }
    out.push({
      key: str(c.key) ?? 'default',
      paths: strings(c.paths),
      policy: c.policy === 'pull' || c.policy === 'push' ? c.policy : 'pull-push',
      when: c.when === 'on_failure' || c.when === 'always' ? c.when : 'on_success',
    });
  }
  return out;
}

function needs(ctx: NormalizeContext, job: string, v: unknown): JobNeed[] | null {
  if (!Array.isArray(v)) return null;
  const out: JobNeed[] = [];
  v.forEach((n, i) => {
    const at = valueLoc(v, i);
    let need: JobNeed | undefined;
    if (typeof n === 'string') need = { job: n, artifacts: true, optional: false, pos: ctx.issues.pos(at) };
    else if (isMap(n) && typeof n.job === 'string') {
      need = {
        job: n.job,
        artifacts: n.artifacts !== false,
        optional: n.optional === true,
        pos: ctx.issues.pos(valueLoc(n, 'job')),
      };
    }
    if (!need) return;
    if (!ctx.jobNames.includes(need.job)) {
      const hint = didYouMean(need.job, ctx.jobNames.filter((j) => j !== job));
      ctx.issues.add('unknown-need', isMap(n) ? valueLoc(n, 'job') : at, `job \`${job}\` needs unknown job \`${need.job}\`${hint ? `; ${hint}` : ''}`, hint ? undefined : `defined jobs: ${ctx.jobNames.join(', ')}`);
    }
    out.push(need);
  });
  return out;
}

function matrix(ctx: NormalizeContext, job: string, parallel: Json): Record<string, string[]>[] | undefined {
  const m = parallel.matrix;
  if (!Array.isArray(m)) return undefined;
  const out: Record<string, string[]>[] = [];
  let count = 0;
  for (const entry of m) {
    if (!isMap(entry)) continue;
    const row: Record<string, string[]> = {};
    let combos = 1;
    for (const [k, v] of Object.entries(entry)) {
      const values = Array.isArray(v) ? v.map((x, i) => scalarText(v, i, x) ?? '') : [scalarText(entry, k, v) ?? ''];
      row[k] = values;
      combos *= values.length;
    }
    count += combos;
    out.push(row);
  }
  if (count > MAX_PARALLEL) {
    ctx.issues.add(
      'matrix-too-large',
      valueLoc(parallel, 'matrix'),
      `the matrix of job \`${job}\` expands to ${count} jobs; at most ${MAX_PARALLEL} are allowed`,
      'split the matrix over several jobs or use fewer values',
    );
  }
  return out;
}

const UNSUPPORTED_JOB_KEYS: Record<string, string> = {
  trigger: 'downstream pipelines will come later',
  only: 'use `rules:` with `if:` instead',
  except: 'use `rules:` with `if:` instead',
  inherit: 'leave it out; jobs always inherit `default:` and top-level `variables:`',
  environment: 'use `deploy: { environment: NAME }` and declare NAME under `environments:`',
};

/** A job after `extends:` and `default:` are merged into it. */
export function normalizeJob(ctx: NormalizeContext, name: string, job: Json, nameLoc: Loc | undefined, hidden: boolean): JobConfig {
  const { issues } = ctx;
  for (const [k, hint] of Object.entries(UNSUPPORTED_JOB_KEYS)) {
    if (k in job) notSupported(ctx, keyLoc(job, k), `\`${k}:\``, hint);
  }
  const when: When = typeof job.when === 'string' && (WHENS as string[]).includes(job.when) ? (job.when as When) : 'on_success';
  if (job.when === 'delayed') notSupported(ctx, valueLoc(job, 'when'), '`when: delayed`', 'use `when: manual`, or a schedule trigger');

  let allowFailure: JobConfig['allowFailure'] = when === 'manual';
  if (typeof job.allow_failure === 'boolean') allowFailure = job.allow_failure;
  else if (isMap(job.allow_failure)) allowFailure = { exitCodes: ints(job.allow_failure.exit_codes) };

  const reportsFrom = (r: unknown) => (isMap(r) ? strings(r.junit) : []);
  const junit = [...new Set([...reportsFrom(job.reports), ...reportsFrom(isMap(job.artifacts) ? job.artifacts.reports : undefined)])];

  const cfg: JobConfig = {
    name,
    stage: typeof job.stage === 'string' ? job.stage : 'test',
    script: strings(job.script),
    beforeScript: strings(job.before_script),
    afterScript: strings(job.after_script),
    needs: needs(ctx, name, job.needs),
    rules: rules(ctx, job.rules),
    when,
    allowFailure,
    retry: retry(job.retry),
    variables: variables(job.variables),
    cache: cache(ctx, job.cache),
    reports: { junit },
    tags: strings(job.tags),
    pos: issues.pos(nameLoc),
  };
  const timeout = duration(ctx, job, 'timeout', 'timeout');
  if (timeout !== undefined) cfg.timeoutMs = timeout;
  const arts = artifacts(ctx, job.artifacts);
  if (arts) cfg.artifacts = arts;
  if (Number.isInteger(job.parallel)) cfg.parallel = job.parallel as number;
  else if (isMap(job.parallel)) {
    const m = matrix(ctx, name, job.parallel);
    if (m) cfg.matrix = m;
  }
  if (typeof job.interruptible === 'boolean') cfg.interruptible = job.interruptible;
  if (typeof job.resource_group === 'string') cfg.resourceGroup = job.resource_group;
  if (typeof job.coverage === 'string') cfg.coverage = job.coverage;
  if (Array.isArray(job.dependencies)) cfg.dependencies = strings(job.dependencies);

  if (isMap(job.deploy) && typeof job.deploy.environment === 'string') {
    cfg.deploy = { environment: job.deploy.environment };
  }
  if (!hidden) crossChecks(ctx, name, job, cfg, nameLoc);
  return cfg;
}

/** Checks that need the other jobs, the stages or the environments. */
function crossChecks(ctx: NormalizeContext, name: string, job: Json, cfg: JobConfig, nameLoc: Loc | undefined): void {
  const { issues } = ctx;
  // A misspelled or mistyped `script:` was already reported; one message per mistake.
  const scriptMentioned = Object.keys(job).some((k) => k === 'script' || closest(k, ['script']) === 'script');
  if (cfg.script.length === 0 && !cfg.deploy && !('trigger' in job) && !scriptMentioned) {
    issues.add(
      'missing-script',
      nameLoc,
      `job \`${name}\` has no \`script\``,
      'add `script:` with the commands to run, or `deploy: { environment: NAME }` for a deployment job',
    );
  }
  if (!ctx.stages.includes(cfg.stage)) {
    const hint = didYouMean(cfg.stage, ctx.stages);
    issues.add(
      'unknown-stage',
      'stage' in job ? valueLoc(job, 'stage') : nameLoc,
      `job \`${name}\` is in stage \`${cfg.stage}\`, which is not listed in \`stages\``,
      hint ?? `add it to stages: [${ctx.stages.filter((s) => !s.startsWith('.')).join(', ')}${ctx.stages.length > 2 ? ', ' : ''}${cfg.stage}]`,
    );
  }
  if (cfg.deploy) {
    const env = cfg.deploy.environment;
    const declared = ctx.environments ? Object.keys(ctx.environments) : [];
    if (!declared.includes(env)) {
      const at = isMap(job.deploy) ? valueLoc(job.deploy, 'environment') : nameLoc;
      const hint = didYouMean(env, declared);
      issues.add(
        'unknown-environment',
        at,
        `deploy.environment \`${env}\` is not declared under environments:`,
        hint ?? `add it:\n  environments:\n    ${env}:\n      target: { type: process, command: ... }`,
      );
    }
  }
  if (Array.isArray(job.dependencies)) {
    job.dependencies.forEach((d, i) => {
      if (typeof d === 'string' && !ctx.jobNames.includes(d)) {
        const hint = didYouMean(d, ctx.jobNames);
        issues.add('unknown-dependency', valueLoc(job.dependencies, i), `job \`${name}\` depends on unknown job \`${d}\``, hint);
      }
    });
  }
}
