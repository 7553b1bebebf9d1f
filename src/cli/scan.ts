// `ferry scan [dir]`: secrets committed to a repository (src/scan/). Jobs run it too: the shell
// executor puts `ferry` on their PATH.
import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { IGNORE_FILE } from '../scan/ignore.js';
import { ALLOW_MARKER, MAX_FILE_BYTES, scanDirectory, type ScanResult } from '../scan/scan.js';
import { CliError, EXIT } from './exit-codes.js';

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Where a finding's file is, as the person who typed the command would open it. */
function shownPath(root: string, file: string): string {
  const abs = resolve(root, file);
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

function summary(r: ScanResult): string {
  const skipped = [
    r.skipped.binary && `${r.skipped.binary} binary`,
    r.skipped.large && `${r.skipped.large} over ${MAX_FILE_BYTES / 1024 / 1024} MiB`,
    r.skipped.ignored && `${r.skipped.ignored} in ${IGNORE_FILE}`,
    r.skipped.unreadable && `${r.skipped.unreadable} unreadable`,
  ].filter(Boolean);
  const tail = [skipped.length ? `skipped ${skipped.join(', ')}` : '', r.allowed ? `${r.allowed} allowed by ${ALLOW_MARKER}` : ''].filter(Boolean).join('; ');
  const head = r.findings.length ? `${plural(r.findings.length, 'secret')} found in ${plural(new Set(r.findings.map((f) => f.file)).size, 'file')}` : 'No secrets found';
  return `${head} (${plural(r.scanned, 'file')} scanned${tail ? `; ${tail}` : ''}).`;
}

export function registerScan(program: Command): void {
  program
    .command('scan')
    .description('Find secrets committed to a repository: cloud keys, tokens, private keys, hard-coded passwords.')
    .argument('[dir]', 'the folder to scan', '.')
    .option('--json', 'print the findings as JSON')
    .addHelpText(
      'after',
      `
In a git repository it reads the files git tracks and the untracked ones it does not ignore;
elsewhere every file but .git/, node_modules/ and .ferry/. Binary files and files over 1 MiB
are skipped. Secrets are never printed: only their first four characters.

False positives: add \`${ALLOW_MARKER}\` in a comment on the line, or the file's path (a glob,
as in .gitignore) to ${IGNORE_FILE} at the root of the scanned folder.

In a pipeline:
  scan:
    script: ferry scan

Examples:
  ferry scan                     this folder
  ferry scan services/api        another one
  ferry scan --json | jq .       { "findings": [{ "file", "line", "column", "rule", "excerpt" }] }

Exit codes: 0 no secrets, 1 secrets found, 3 no such folder.`,
    )
    .action(async (dir: string, opts: { json?: boolean }) => {
      const root = resolve(dir);
      const s = await stat(root).catch(() => null);
      if (!s?.isDirectory()) throw new CliError(`${dir}: no such folder`, EXIT.ENVIRONMENT);
      const result = await scanDirectory(root);
      if (opts.json) {
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      } else {
        for (const f of result.findings) {
          process.stdout.write(`${shownPath(root, f.file)}:${f.line}:${f.column}  ${f.rule}  ${f.description}  (${f.excerpt})\n`);
        }
        process.stdout.write(`${summary(result)}\n`);
        if (result.findings.length) {
          process.stdout.write(`Remove them, and revoke them: they stay in git's history. A false positive: \`${ALLOW_MARKER}\` on its line, or its path in ${IGNORE_FILE}.\n`);
        }
      }
      process.exitCode = result.findings.length ? EXIT.FAILED : EXIT.OK;
    });
}
