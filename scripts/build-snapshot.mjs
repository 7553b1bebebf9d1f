#!/usr/bin/env node
// Builds dist/pglite-snapshot.tar.gz: a PGlite data folder with every migration applied, so a new
// embedded store unpacks it instead of running initdb (see src/store/snapshot.ts).
// Run after `tsc` (e.g. in `prepare`). Never fails the install: without the snapshot, a new store
// is created with initdb, only slower.
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);
try {
  const { buildSnapshot, SNAPSHOT_FILE } = await import(new URL('dist/src/store/snapshot.js', root).href);
  const out = process.argv[2] ?? fileURLToPath(new URL(`dist/${SNAPSHOT_FILE}`, root));
  const info = await buildSnapshot(out);
  console.log(`ferry: store snapshot ${info.path} (${(info.bytes / 1e6).toFixed(1)} MB, schema v${info.version}, ${Math.round(info.ms)} ms)`);
} catch (err) {
  console.warn(`ferry: could not build the store snapshot (new stores will run initdb): ${err?.message ?? err}`);
}
