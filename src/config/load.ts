// ferry.yml -> PipelineConfig. Problems are collected rather than thrown one at a time so a user
// fixes the whole file in one pass: YAML syntax, then the schema, then what only code can check.

import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { checkNeedCycles } from './checks.js';
import { normalizeEnvironments } from './environments.js';
import { resolveAllExtends, type JobDef } from './extends.js';
import { Issues } from './issues.js';
import { fillDefaults, isMap, type Json } from './merge.js';
import { normalizeJob, rules, variables, type NormalizeContext } from './normalize.js';
import { keyLoc, metaOf, selfLoc, setMeta, toPlain, TooLargeError } from './positions.js';
import { jobKeys, TOP_LEVEL_KEYS, validateSchema } from './schema.js';
import { closest } from './suggest.js';
import { ConfigError, type ConfigIssue, type JobConfig, type PipelineConfig } from './types.js';

export const DEFAULT_STAGES = ['build', 'test', 'deploy'];

/** Keys of `default:` copied into jobs that do not set them. */
const DEFAULT_KEYS = ['before_script', 'after_script', 'retry', 'timeout', 'artifacts', 'cache', 'tags', 'interruptible', 'image', 'services'] as const;

/** GitLab's old global keywords; Ferry wants them under `default:`. */
const GLOBAL_DEFAULTS = new Set(['before_script', 'after_script', 'cache']);

export function parseConfig(text: string, file: string): { config: PipelineConfig | null; issues: ConfigIssue[] } {
  const issues = new Issues(file);
  const lc = new LineCounter();
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true, lineCounter: lc });
  let fatal = false;
  for (const e of doc.errors) {
    const [start] = e.linePos ?? [{ line: 1, col: 1 }];
    const at = { line: start.line, col: start.col, offset: e.pos[0] };
    if (e.code === 'DUPLICATE_KEY') {
      issues.add('duplicate-key', at, 'this key is already defined in the same map', 'remove one of the two or rename it');
    } else {
      fatal = true;
      // yaml often reports one slip twice at the same spot; the first message is the useful one.
      if (issues.list.some((i) => i.code === 'yaml-syntax' && i.pos.line === at.line && i.pos.col === at.col)) continue;
      issues.add('yaml-syntax', at, firstLine(e.message), 'check indentation, quotes and brackets around here');
    }
  }
  for (const w of doc.warnings) {
    if (w.code === 'TAG_RESOLVE_FAILED') {
      const [start] = w.linePos ?? [{ line: 1, col: 1 }];
      issues.add('not-supported', { line: start.line, col: start.col, offset: w.pos[0] }, `YAML tag is not supported: ${firstLine(w.message)}`, 'GitLab\'s !reference is not supported; use extends: or YAML anchors');
    }
  }
  if (fatal) return { config: null, issues: issues.sorted() };

  let root: unknown;
  try {
    root = toPlain(doc, text, lc);
  } catch (e) {
    if (!(e instanceof TooLargeError)) throw e;
    issues.add('too-large', { line: 1, col: 1, offset: 0 }, e.message, 'avoid aliases that expand into huge documents');
    return { config: null, issues: issues.sorted() };
  }
  if (root === null || root === undefined) {
    issues.add('empty', { line: 1, col: 1, offset: 0 }, 'the pipeline file is empty', 'define at least one job, for example:\n  build:\n    script: make');
    return { config: null, issues: issues.sorted() };
  }
  if (!isMap(root)) {
    issues.add('wrong-type', selfLoc(root), 'the pipeline file must be a map of keywords and jobs', 'start with `stages:`, `variables:` or a job name followed by a colon');
    return { config: null, issues: issues.sorted() };
  }

  const view = topLevel(root, issues);
  validateSchema(view, issues);
  const config = build(view, issues, lc, file);
  return issues.list.length > 0 ? { config: null, issues: issues.sorted() } : { config, issues: [] };
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * Top-level keys that are neither keywords nor jobs (typos of `stages`, GitLab's old globals)
 * are reported here and left out of what the schema sees, so each gets one clear message.
 */
function topLevel(root: Json, issues: Issues): Json {
  const view: Json = {};
  const jk = new Set(jobKeys());
  for (const [k, v] of Object.entries(root)) {
    if (TOP_LEVEL_KEYS.includes(k) || k.startsWith('.')) {
      view[k] = v;
      continue;
    }
    if (GLOBAL_DEFAULTS.has(k)) {
      issues.add('not-supported', keyLoc(root, k), `top-level \`${k}\` is not supported`, `move it under \`default:\`, like default: { ${k}: ... }`);
      continue;
    }
    const near = closest(k, TOP_LEVEL_KEYS);
    const looksLikeJob = isMap(v) && Object.keys(v).some((x) => jk.has(x));
    if (near && !looksLikeJob) {
      issues.add('unknown-key', keyLoc(root, k), `unknown top-level key \`${k}\``, `did you mean \`${near}\`?`);
      continue;
    }
    view[k] = v;
  }
  const m = metaOf(root);
  if (m) setMeta(view, m);
  if ('include' in view) {
    issues.add('not-supported', keyLoc(root, 'include'), '`include:` is not supported yet', 'Ferry reads a single file; copy the included jobs into it');
  }
  return view;
}

function build(root: Json, issues: Issues, lc: LineCounter, file: string): PipelineConfig {
  // Job definitions from both styles: top-level (GitLab) and under `jobs:` (Ferry's examples).
  const defs = new Map<string, JobDef>();
  const addDef = (name: string, body: unknown, parent: Json) => {
    const nameLoc = keyLoc(parent, name);
    const prev = defs.get(name);
    if (prev) {
      issues.add('duplicate-job', nameLoc, `job \`${name}\` is defined twice`, `the first definition is at line ${prev.nameLoc?.line ?? '?'}; rename or remove one`);
      return;
    }
    if (isMap(body)) defs.set(name, { name, body, nameLoc });
  };
  for (const [k, v] of Object.entries(root)) if (!TOP_LEVEL_KEYS.includes(k)) addDef(k, v, root);
  if (isMap(root.jobs)) for (const [k, v] of Object.entries(root.jobs)) addDef(k, v, root.jobs);

  const userStages = Array.isArray(root.stages) ? root.stages.filter((s): s is string => typeof s === 'string') : DEFAULT_STAGES;
  const stages = ['.pre', ...new Set(userStages.filter((s) => s !== '.pre' && s !== '.post')), '.post'];
  const environments = isMap(root.environments) ? root.environments : null;
  const ctx: NormalizeContext = {
    issues,
    lc,
    jobNames: [...defs.keys()].filter((n) => !n.startsWith('.')),
    stages,
    environments,
  };

  const merged = resolveAllExtends(defs, issues);
  const defaults = isMap(root.default) ? root.default : {};
  const jobs: JobConfig[] = [];
  for (const [name, def] of defs) {
    const body = merged.get(name);
    if (!body) continue;
    const hidden = name.startsWith('.');
    // Templates are normalized too, only for their problems; `default:` applies to real jobs.
    const job = hidden ? body : fillDefaults(body, defaults, DEFAULT_KEYS);
    const cfg = normalizeJob(ctx, name, job, def.nameLoc, hidden);
    if (!hidden) jobs.push(cfg);
  }
  if (isMap(root.default)) normalizeJob(ctx, 'default', root.default, keyLoc(root, 'default'), true);
  checkNeedCycles(jobs, issues);
  if (defs.size > 0 && ctx.jobNames.length === 0) {
    issues.add('no-jobs', selfLoc(root), 'the pipeline has only hidden templates (names starting with a dot) and no job to run', 'add a job whose name does not start with a dot');
  } else if (defs.size === 0 && !Object.keys(root).some((k) => !TOP_LEVEL_KEYS.includes(k)) && !(isMap(root.jobs) && Object.keys(root.jobs).length > 0)) {
    issues.add('no-jobs', selfLoc(root), 'the pipeline defines no jobs', 'add a job, for example:\n  build:\n    script: make');
  }

  const workflow = isMap(root.workflow) ? root.workflow : undefined;
  return {
    file,
    stages,
    variables: variables(root.variables),
    jobs,
    environments: normalizeEnvironments(ctx, environments),
    workflowRules: workflow ? rules(ctx, workflow.rules, ['always', 'never']) : null,
  };
}

export async function loadConfig(path: string): Promise<PipelineConfig> {
  const text = await readFile(path, 'utf8');
  const { config, issues } = parseConfig(text, path);
  if (!config) throw new ConfigError(issues);
  return config;
}
