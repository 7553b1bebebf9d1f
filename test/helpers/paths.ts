// Test files run from test/ (tsx) and from dist/test/ (compiled), but fixtures and the schema are
// never compiled: find them from the package root.
import { join } from 'node:path';
import { packageRoot } from '../../src/package-root.js';

export function fixture(...parts: string[]): string {
  return join(packageRoot(), 'test', 'fixtures', ...parts);
}

export function fromRoot(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/** A sibling module of a test, as .ts under tsx and .js when compiled, with how to run it. */
export function siblingScript(metaUrl: string, base: string): { path: string; execArgv: string[] } {
  const ts = metaUrl.endsWith('.ts');
  return { path: new URL(`./${base}.${ts ? 'ts' : 'js'}`, metaUrl).pathname, execArgv: ts ? ['--import', 'tsx'] : [] };
}
