// Libraries only some pipeline files need, loaded the first time one does: every `ferry run` and
// `ferry validate` parses a config, and loading re2js and croner up front cost each ~15 ms of
// start-up whether the file had a regular expression or a freeze window or not. Both ship a
// CommonJS build, so a synchronous require serves the synchronous parser.
import { createRequire } from 'node:module';
import type { RE2JS as RE2JSClass } from 're2js';
import type { Cron as CronClass } from 'croner';

const require = createRequire(import.meta.url);

let re2: typeof RE2JSClass | undefined;
let cron: typeof CronClass | undefined;

/** RE2JS: linear-time regular expressions, so a pattern in ferry.yml cannot hang the planner. */
export function RE2(): typeof RE2JSClass {
  return (re2 ??= (require('re2js') as { RE2JS: typeof RE2JSClass }).RE2JS);
}

/**
 * The RE2JS flags of a `/re/flags` pattern in ferry.yml (the ones GitLab's RE2 takes: i, m, s);
 * throws naming the first flag that is none of them.
 */
export function regexFlags(flags: string): number {
  let f = 0;
  for (const c of flags) {
    if (c === 'i') f |= RE2().CASE_INSENSITIVE;
    else if (c === 'm') f |= RE2().MULTILINE;
    else if (c === 's') f |= RE2().DOTALL;
    else throw new Error(`unknown regex flag \`${c}\` (allowed: i, m, s)`);
  }
  return f;
}

export function Cron(): typeof CronClass {
  return (cron ??= (require('croner') as { Cron: typeof CronClass }).Cron);
}
