// `extends:` resolution: templates first (multi-level), later entries of a list win, the job's own
// keys win last. A name that extends itself, directly or not, is a cycle.

import type { Issues } from './issues.js';
import { deepMerge, isMap, withoutKey, type Json } from './merge.js';
import { valueLoc, type Loc } from './positions.js';
import { didYouMean } from './suggest.js';

export interface JobDef {
  name: string;
  body: Json;
  nameLoc: Loc | undefined;
}

export function resolveAllExtends(defs: Map<string, JobDef>, issues: Issues): Map<string, Json> {
  const done = new Map<string, Json>();
  const stack: string[] = [];

  const resolve = (name: string): Json => {
    const cached = done.get(name);
    if (cached) return cached;
    const def = defs.get(name)!;
    const ext = def.body.extends;
    if (ext === undefined) {
      done.set(name, def.body);
      return def.body;
    }
    stack.push(name);
    const bases = typeof ext === 'string' ? [ext] : Array.isArray(ext) ? ext : [];
    let merged: Json = {};
    bases.forEach((base, i) => {
      if (typeof base !== 'string') return;
      const at = typeof ext === 'string' ? valueLoc(def.body, 'extends') : valueLoc(ext, i);
      if (!defs.has(base)) {
        const hint = didYouMean(base, defs.keys());
        issues.add('unknown-extends', at, `job \`${name}\` extends unknown job \`${base}\``, hint ?? 'define it, usually as a hidden template whose name starts with a dot');
        return;
      }
      if (stack.includes(base)) {
        const cycle = [...stack.slice(stack.indexOf(base)), base];
        issues.add('cycle', at, `extends cycle: ${cycle.join(' -> ')}`, 'remove one of these extends');
        return;
      }
      const resolved = resolve(base);
      merged = deepMerge(merged, resolved);
    });
    stack.pop();
    const out = deepMerge(merged, withoutKey(def.body, 'extends'));
    done.set(name, out);
    return out;
  };

  for (const name of defs.keys()) if (isMap(defs.get(name)!.body)) resolve(name);
  return done;
}
