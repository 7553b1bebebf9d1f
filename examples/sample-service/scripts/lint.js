// A small linter without dependencies: every file must parse, and no debugging leftovers.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

let problems = 0;
let files = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.js')) check(p);
  }
}
function check(file) {
  files++;
  execFileSync(process.execPath, ['--check', file]);
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (/\bdebugger\b|console\.log\(['"]DEBUG/.test(line)) {
      console.error(`${file}:${i + 1}: leftover debugging statement`);
      problems++;
    }
  });
}
for (const dir of process.argv.slice(2)) walk(dir);
console.log(problems ? `lint: ${problems} problem(s) in ${files} files` : `lint: ${files} files, no problems`);
process.exit(problems ? 1 : 0);
