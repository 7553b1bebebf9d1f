// Predefined variables every job sees, under Ferry's names and under GitLab's, so that scripts
// written for GitLab CI keep working unchanged.
import type { CommitInfo } from './git.js';

export interface TriggerContext {
  commit: CommitInfo;
  pipelineId: string;
  /** push | web | api | schedule | merge_request_event | local | ... */
  source: string;
  projectDir: string;
  projectName: string;
}

/** FERRY_* name -> the GitLab alias(es) set to the same value. */
const ALIASES: Record<string, string[]> = {
  FERRY_COMMIT_SHA: ['CI_COMMIT_SHA'],
  FERRY_COMMIT_SHORT_SHA: ['CI_COMMIT_SHORT_SHA'],
  FERRY_COMMIT_BRANCH: ['CI_COMMIT_BRANCH'],
  FERRY_BRANCH: [],
  FERRY_COMMIT_TAG: ['CI_COMMIT_TAG'],
  FERRY_COMMIT_REF_NAME: ['CI_COMMIT_REF_NAME'],
  FERRY_COMMIT_REF_SLUG: ['CI_COMMIT_REF_SLUG'],
  FERRY_COMMIT_MESSAGE: ['CI_COMMIT_MESSAGE'],
  FERRY_COMMIT_TITLE: ['CI_COMMIT_TITLE'],
  FERRY_COMMIT_AUTHOR: ['CI_COMMIT_AUTHOR'],
  FERRY_COMMIT_TIMESTAMP: ['CI_COMMIT_TIMESTAMP'],
  FERRY_PIPELINE_ID: ['CI_PIPELINE_ID'],
  FERRY_PIPELINE_SOURCE: ['CI_PIPELINE_SOURCE'],
  FERRY_PROJECT_DIR: ['CI_PROJECT_DIR'],
  FERRY_PROJECT_NAME: ['CI_PROJECT_NAME'],
  FERRY_DEFAULT_BRANCH: ['CI_DEFAULT_BRANCH'],
  FERRY_JOB_ID: ['CI_JOB_ID'],
  FERRY_JOB_NAME: ['CI_JOB_NAME'],
  FERRY_JOB_STAGE: ['CI_JOB_STAGE'],
  FERRY_NODE_INDEX: ['CI_NODE_INDEX'],
  FERRY_NODE_TOTAL: ['CI_NODE_TOTAL'],
};

/** GitLab's CI_COMMIT_REF_SLUG: lowercased, [^a-z0-9] -> '-', at most 63 chars, no edge dashes. */
export function refSlug(ref: string): string {
  return ref
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
}

function withAliases(vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { CI: 'true', FERRY: 'true' };
  for (const [k, v] of Object.entries(vars)) {
    out[k] = v;
    for (const alias of ALIASES[k] ?? []) out[alias] = v;
  }
  return out;
}

/** Variables that describe the pipeline (the same for every job). Absent values are left unset. */
export function pipelineVariables(t: TriggerContext): Record<string, string> {
  const c = t.commit;
  const ref = c.tag ?? c.branch ?? c.sha;
  const vars: Record<string, string> = {
    FERRY_COMMIT_SHA: c.sha,
    FERRY_COMMIT_SHORT_SHA: c.sha.slice(0, 8),
    FERRY_COMMIT_REF_NAME: ref,
    FERRY_COMMIT_REF_SLUG: refSlug(ref),
    FERRY_COMMIT_MESSAGE: c.message,
    FERRY_COMMIT_TITLE: c.message.split('\n')[0] ?? '',
    FERRY_COMMIT_AUTHOR: `${c.authorName} <${c.authorEmail}>`,
    FERRY_COMMIT_TIMESTAMP: c.timestamp,
    FERRY_PIPELINE_ID: t.pipelineId,
    FERRY_PIPELINE_SOURCE: t.source,
    FERRY_PROJECT_DIR: t.projectDir,
    FERRY_PROJECT_NAME: t.projectName,
    FERRY_DEFAULT_BRANCH: c.defaultBranch,
  };
  // GitLab leaves CI_COMMIT_BRANCH unset for tag pipelines and CI_COMMIT_TAG unset for branches;
  // rules like `$CI_COMMIT_TAG` depend on that.
  if (c.branch) {
    vars.FERRY_COMMIT_BRANCH = c.branch;
    vars.FERRY_BRANCH = c.branch;
  }
  if (c.tag) vars.FERRY_COMMIT_TAG = c.tag;
  return withAliases(vars);
}

/** Variables that describe one job. */
export function jobVariables(job: { id: string; name: string; stage: string; nodeIndex?: number; nodeTotal?: number }, workspace?: string): Record<string, string> {
  const vars: Record<string, string> = {
    FERRY_JOB_ID: job.id,
    FERRY_JOB_NAME: job.name,
    FERRY_JOB_STAGE: job.stage,
  };
  if (job.nodeIndex !== undefined) {
    vars.FERRY_NODE_INDEX = String(job.nodeIndex);
    vars.FERRY_NODE_TOTAL = String(job.nodeTotal);
  }
  const out = withAliases(vars);
  delete out.CI;
  delete out.FERRY;
  if (workspace) {
    out.FERRY_PROJECT_DIR = workspace;
    out.CI_PROJECT_DIR = workspace;
  }
  return out;
}

/**
 * Expands $VAR and ${VAR} from `vars` like GitLab does in variable values, cache keys and
 * artifact paths. Unknown variables expand to ''; `$$` is a literal `$`.
 */
export function expandVariables(s: string, vars: Record<string, string | undefined>): string {
  return s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, braced, bare) => {
    if (m === '$$') return '$';
    return vars[braced ?? bare] ?? '';
  });
}

/**
 * Resolves references between variables (`A: "$B-x"`) in definition order, so later
 * definitions can use earlier ones and predefined variables.
 */
export function resolveVariables(base: Record<string, string>, defs: Record<string, string>): Record<string, string> {
  const out = { ...base };
  for (const [k, v] of Object.entries(defs)) out[k] = expandVariables(v, out);
  return out;
}
