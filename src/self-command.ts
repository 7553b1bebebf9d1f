// How to start Ferry's own programs as child processes (the server's runner, the background
// ingest, the edge, the spawner): the same Node, and the same build as this process runs.
//   - the bundle (dist/ferry.js, what `ferry` and `npm start` run; see scripts/build-bundle.mjs),
//   - the compiled files under dist/src (what tests import),
//   - or the TypeScript sources under tsx.
// Never this process's own Node flags: under `node -e` or the test runner they are not ours.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from './package-root.js';

/** Set by the bundler (esbuild `define`) in the bundle; undefined in dist/src and under tsx. */
declare const __FERRY_BUNDLE__: boolean | undefined;
const bundled = typeof __FERRY_BUNDLE__ !== 'undefined' && __FERRY_BUNDLE__;

const here = fileURLToPath(import.meta.url);
const ts = here.endsWith('.ts');

/** The bundle's entry, when it was built: the fast way to start `ferry` (one file to load). */
function bundleMain(): string | null {
  const file = join(packageRoot(), 'dist', 'ferry.js');
  return bundled || existsSync(file) ? file : null;
}

export function selfCommand(args: string[]): { command: string; args: string[] } {
  if (ts) return { command: process.execPath, args: ['--import', 'tsx', join(dirname(here), 'cli', 'main.ts'), ...args] };
  return { command: process.execPath, args: [bundleMain() ?? join(dirname(here), 'cli', 'main.js'), ...args] };
}

/** The file of the spawner helper (src/process/spawner-child.ts) for `fork`. */
export function spawnerChildFile(): string {
  if (bundled) return join(packageRoot(), 'dist', 'spawner-child.js');
  return join(dirname(here), 'process', 'spawner-child.js');
}
