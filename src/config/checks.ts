// Checks over the whole job graph, which no single job's keys can show.

import type { Issues } from './issues.js';
import type { JobConfig, SourcePos } from './types.js';

/** Reports each `needs` cycle once, as "a -> b -> c -> a", at the need that closes it. */
export function checkNeedCycles(jobs: JobConfig[], issues: Issues): void {
  const byName = new Map(jobs.map((j) => [j.name, j]));
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();

  const visit = (name: string): void => {
    state.set(name, 'active');
    stack.push(name);
    const job = byName.get(name)!;
    for (const need of job.needs ?? []) {
      if (!byName.has(need.job)) continue;
      const s = state.get(need.job);
      if (s === 'active') {
        const cycle = stack.slice(stack.indexOf(need.job));
        const key = [...cycle].sort().join('\0');
        if (!reported.has(key)) {
          reported.add(key);
          report(issues, [...cycle, need.job], need.pos);
        }
      } else if (s === undefined) visit(need.job);
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const j of jobs) if (!state.has(j.name)) visit(j.name);
}

function report(issues: Issues, path: string[], pos: SourcePos): void {
  issues.add(
    'cycle',
    { line: pos.line, col: pos.col, offset: 0 },
    `jobs need each other in a cycle: ${path.join(' -> ')}`,
    'remove one of these needs so the jobs can run in some order',
  );
}
