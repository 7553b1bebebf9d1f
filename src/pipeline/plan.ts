// config + trigger -> the DAG of jobs a pipeline runs: workflow rules decide whether there is a
// pipeline at all; matrix and `parallel: N` expand into job instances; rules pick each job's
// `when`; needs (or stage order, when a job names none) become edges.
import { randomUUID } from 'node:crypto';
import type { ArtifactsSpec, CacheSpec, JobConfig, PipelineConfig, RetrySpec, Rule, SourcePos, When } from '../config/types.js';
import { evaluate, parseExpression } from '../config/expr.js';
import { expandVariables, resolveVariables } from './variables.js';

export interface PlannedNeed {
  jobId: string;
  name: string;
  /** Whether the job takes the needed job's artifacts: false too when that job keeps none. */
  artifacts: boolean;
}

/** One job instance of a pipeline, JSON-serialisable (it is stored and replayed by `ferry play`). */
export interface PlannedJob {
  id: string;
  /** Unique in the pipeline: `test`, `test: [node=20, os=linux]`, `shard 2/4`. */
  name: string;
  /** The job's key in ferry.yml (shared by all instances of a matrix). */
  baseName: string;
  stage: string;
  stageIndex: number;
  script: string[];
  beforeScript: string[];
  afterScript: string[];
  /** Edges: the jobs this one waits for. */
  needs: PlannedNeed[];
  /** true when `needs` came from stage order rather than an explicit `needs:`. */
  stageOrdered: boolean;
  when: When;
  allowFailure: boolean | { exitCodes: number[] };
  retry: RetrySpec;
  timeoutMs?: number;
  /** Job-level variables (global, job, matrix and rule variables, references resolved). */
  variables: Record<string, string>;
  artifacts?: ArtifactsSpec;
  cache: CacheSpec[];
  reports: { junit: string[] };
  deploy?: { environment: string };
  tags: string[];
  nodeIndex?: number;
  nodeTotal?: number;
}

export interface Plan {
  stages: string[];
  jobs: PlannedJob[];
}

export class PlanError extends Error {
  constructor(
    message: string,
    public readonly pos?: SourcePos,
  ) {
    super(pos ? `${pos.file}:${pos.line}:${pos.col}: ${message}` : message);
    this.name = 'PlanError';
  }
}

/** Thrown when workflow rules decide that this trigger makes no pipeline. */
export class NoPipelineError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'NoPipelineError';
  }
}

interface Instance {
  config: JobConfig;
  name: string;
  matrixVars: Record<string, string>;
  nodeIndex?: number;
  nodeTotal?: number;
}

function expand(job: JobConfig): Instance[] {
  if (job.matrix && job.matrix.length > 0) {
    const combos: Record<string, string>[] = [];
    for (const entry of job.matrix) {
      let partial: Record<string, string>[] = [{}];
      for (const [k, values] of Object.entries(entry)) {
        partial = partial.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
      }
      combos.push(...partial);
    }
    return combos.map((vars, i) => ({
      config: job,
      // GitLab's naming: `job: [value1, value2]`.
      name: `${job.name}: [${Object.values(vars).join(', ')}]`,
      matrixVars: vars,
      nodeIndex: i + 1,
      nodeTotal: combos.length,
    }));
  }
  if (job.parallel && job.parallel > 1) {
    return Array.from({ length: job.parallel }, (_, i) => ({
      config: job,
      name: `${job.name} ${i + 1}/${job.parallel}`,
      matrixVars: {},
      nodeIndex: i + 1,
      nodeTotal: job.parallel,
    }));
  }
  return [{ config: job, name: job.name, matrixVars: {} }];
}

function ruleMatches(rule: Rule, vars: Record<string, string>): boolean {
  if (rule.if === undefined) return true;
  try {
    return evaluate(parseExpression(rule.if), vars);
  } catch (err) {
    throw new PlanError(`rules: cannot evaluate \`${rule.if}\`: ${(err as Error).message}`, rule.pos);
  }
}

/** The first rule that matches wins, like GitLab; no match means the job is left out. */
function firstMatch(rules: Rule[], vars: Record<string, string>): Rule | undefined {
  return rules.find((r) => ruleMatches(r, vars));
}

export interface PlanInput {
  config: PipelineConfig;
  /** Predefined variables of the pipeline (src/pipeline/variables.ts). */
  predefined: Record<string, string>;
  /** Variables given with the trigger (`ferry run -v KEY=VALUE`): they win over ferry.yml. */
  triggerVariables?: Record<string, string>;
  /** Makes ids deterministic in tests. */
  newId?: () => string;
}

export function plan(input: PlanInput): Plan {
  const { config, predefined } = input;
  const trigger = input.triggerVariables ?? {};
  const newId = input.newId ?? randomUUID;
  const globalVars = { ...resolveVariables(predefined, config.variables), ...trigger };

  if (config.workflowRules) {
    const rule = firstMatch(config.workflowRules, globalVars);
    if (!rule || rule.when === 'never') {
      throw new NoPipelineError(rule ? 'workflow rules say `when: never` for this trigger' : 'no workflow rule matches this trigger');
    }
    Object.assign(globalVars, resolveVariables(globalVars, rule.variables ?? {}), trigger);
  }

  const stageIndex = new Map(config.stages.map((s, i) => [s, i]));
  const planned: PlannedJob[] = [];
  const byBase = new Map<string, PlannedJob[]>();

  for (const job of config.jobs) {
    for (const inst of expand(job)) {
      let vars = resolveVariables(globalVars, { ...job.variables, ...inst.matrixVars });
      vars = { ...vars, ...trigger };
      let when = job.when;
      let allowFailure = job.allowFailure;
      let ruleVars: Record<string, string> = {};
      if (job.rules) {
        const rule = firstMatch(job.rules, vars);
        if (!rule) continue;
        if (rule.when) when = rule.when;
        if (rule.allowFailure !== undefined) allowFailure = rule.allowFailure;
        // GitLab: a rule that makes a job manual also makes it optional unless it says otherwise.
        else if (rule.when === 'manual') allowFailure = true;
        ruleVars = rule.variables ?? {};
        vars = { ...resolveVariables(vars, ruleVars), ...trigger };
      }
      if (when === 'never') continue;
      // Job-level variables only: the predefined and global ones are added when the job runs.
      const own: Record<string, string> = {};
      for (const k of new Set([...Object.keys(config.variables), ...Object.keys(job.variables), ...Object.keys(inst.matrixVars), ...Object.keys(ruleVars), ...Object.keys(trigger)])) {
        own[k] = vars[k];
      }
      const p: PlannedJob = {
        id: newId(),
        name: inst.name,
        baseName: job.name,
        stage: job.stage,
        stageIndex: stageIndex.get(job.stage) ?? 0,
        script: job.script,
        beforeScript: job.beforeScript,
        afterScript: job.afterScript,
        needs: [],
        stageOrdered: job.needs === null,
        when,
        allowFailure,
        retry: job.retry,
        timeoutMs: job.timeoutMs,
        variables: own,
        artifacts: job.artifacts && {
          ...job.artifacts,
          paths: job.artifacts.paths.map((x) => expandVariables(x, vars)),
        },
        cache: job.cache.map((c) => ({ ...c, key: expandVariables(c.key, vars), paths: c.paths.map((x) => expandVariables(x, vars)) })),
        reports: job.reports,
        deploy: job.deploy,
        tags: job.tags,
        nodeIndex: inst.nodeIndex,
        nodeTotal: inst.nodeTotal,
      };
      planned.push(p);
      const list = byBase.get(job.name) ?? [];
      list.push(p);
      byBase.set(job.name, list);
    }
  }

  // A job that keeps no artifacts has none to hand on: its dependents skip looking for them.
  const keepsArtifacts = (p: PlannedJob) => (p.artifacts?.paths.length ?? 0) > 0;
  for (const p of planned) {
    const job = config.jobs.find((j) => j.name === p.baseName)!;
    if (job.needs === null) {
      p.needs = planned
        .filter((o) => o.stageIndex < p.stageIndex)
        .map((o) => ({ jobId: o.id, name: o.name, artifacts: keepsArtifacts(o) }));
      continue;
    }
    for (const need of job.needs) {
      const targets = byBase.get(need.job);
      if (!targets) {
        if (need.optional) continue;
        throw new PlanError(`job \`${job.name}\` needs \`${need.job}\`, which is not in this pipeline (its rules left it out). Mark the need \`optional: true\` or give both jobs the same rules.`, need.pos);
      }
      for (const t of targets) p.needs.push({ jobId: t.id, name: t.name, artifacts: need.artifacts && keepsArtifacts(t) });
    }
  }

  // Stage order first, then definition order: the order the terminal shows and ready jobs start.
  planned.sort((a, b) => a.stageIndex - b.stageIndex);
  return { stages: config.stages.filter((s) => planned.some((p) => p.stage === s)), jobs: planned };
}
