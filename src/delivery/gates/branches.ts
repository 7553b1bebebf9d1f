// The branch gate: `protection.branches` lists the branches allowed to deploy to an environment,
// as exact names or /re2 patterns/flags (flags i, m, s). A pattern matches anywhere in the
// name, as in GitLab and in `rules: if` (anchor it: /^release\/.+$/). re2js runs in linear
// time, so no pattern can stall the controller.
import type { RE2JS } from 're2js';
import { RE2, regexFlags } from '../../config/lazy-libs.js';

const cache = new Map<string, RE2JS | Error>();

/** The compiled pattern of a "/body/flags" entry, an Error for a bad one, or null for an exact name. */
export function compileBranchPattern(pattern: string): RE2JS | Error | null {
  const m = /^\/(.*)\/([A-Za-z]*)$/s.exec(pattern);
  if (!m) return null;
  let re = cache.get(pattern);
  if (re) return re;
  try {
    re = RE2().compile(m[1]!.replace(/\\\//g, '/'), regexFlags(m[2]!));
  } catch (err) {
    re = new Error(`bad branch pattern ${pattern}: ${(err as Error).message}`);
  }
  if (cache.size > 500) cache.clear();
  cache.set(pattern, re);
  return re;
}

/** Problems with a list of patterns, for the configuration's checks (empty: all fine). */
export function branchPatternErrors(patterns: readonly string[]): string[] {
  return patterns.map(compileBranchPattern).flatMap((r) => (r instanceof Error ? [r.message] : []));
}

/**
 * Whether `branch` may deploy: any branch when `patterns` is null; otherwise it must equal one
 * of the names or match one of the patterns. No branch (a tag, a detached commit) is allowed only
 * when there are no restrictions. A bad pattern matches nothing.
 */
export function branchAllowed(branch: string | null | undefined, patterns: readonly string[] | null): boolean {
  if (patterns === null) return true;
  if (branch === null || branch === undefined || branch === '') return false;
  for (const p of patterns) {
    const re = compileBranchPattern(p);
    if (re === null) {
      if (p === branch) return true;
    } else if (!(re instanceof Error) && re.matcher(branch).find()) {
      return true;
    }
  }
  return false;
}
