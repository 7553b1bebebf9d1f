#!/usr/bin/env node
// Bundles the compiled `ferry` command (dist/src/cli/main.js) and the spawner helper into
// dist/ferry.js and dist/spawner-child.js, with the modules only some commands load split into
// dist/chunks/ (each command still loads only what it needs). Run after tsc (in `prepare`,
// `build` and `test`). Why: Node loads a command made of ~150 small modules (ours, yaml's,
// commander's) file by file; one file per command cuts ~50 ms from every `ferry` start, a
// good part of a small `ferry run`.
//
// Packages that find their own files at run time (PGlite's WebAssembly, pg's optional native
// binding) or load plugins by name (fastify) stay in node_modules, as do those only the
// server loads.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const started = Date.now();
rmSync(`${root}dist/chunks`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { ferry: 'dist/src/cli/main.js', 'spawner-child': 'dist/src/process/spawner-child.js' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  external: ['@electric-sql/pglite', 'pg', 'fastify', '@fastify/swagger', 'prom-client', 'ajv'],
  // Bundled CommonJS packages call require() for Node's own modules.
  banner: { js: "import { createRequire as __ferryCreateRequire } from 'node:module'; const require = __ferryCreateRequire(import.meta.url);" },
  define: { __FERRY_BUNDLE__: 'true' },
  logLevel: 'warning',
});
console.log(`ferry: bundled dist/ferry.js (${Date.now() - started} ms)`);
