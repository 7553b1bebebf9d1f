// The folder Ferry is installed in (where package.json, schema/ and examples/ are), found the
// same way whether the code runs compiled from dist/src or from src under tsx.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'ferry') return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find Ferry's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
