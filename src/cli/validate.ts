// `ferry validate [file]`: every problem of a pipeline file at once, each with file:line:col.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatIssues } from '../config/format.js';
import { parseConfig } from '../config/load.js';
import { CliError, EXIT } from './exit-codes.js';
import { useColor } from './view/index.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('Check a pipeline file and print every problem with its line, column and a fix.')
    .argument('[file]', 'the pipeline file', 'ferry.yml')
    .option('--json', 'print the problems as JSON')
    .addHelpText(
      'after',
      `
Examples:
  ferry validate                 ./ferry.yml
  ferry validate ci/ferry.yml    another file
  ferry validate --json          [{ "file", "line", "col", "code", "message", "hint" }]

Exit codes: 0 valid, 2 invalid, 1 internal error.`,
    )
    .action(async (file: string, opts: { json?: boolean }) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (write one, or `ferry init`)' : (err as Error).message}`, EXIT.CONFIG);
      }
      let result: ReturnType<typeof parseConfig>;
      try {
        result = parseConfig(text, file);
      } catch (err) {
        throw new CliError(`internal error while validating ${file}: ${(err as Error).stack ?? err}`, EXIT.FAILED);
      }
      const { config, issues } = result;
      if (opts.json) {
        const rows = issues.map((i) => ({ file: i.pos.file, line: i.pos.line, col: i.pos.col, code: i.code, message: i.message, hint: i.hint }));
        process.stdout.write(JSON.stringify({ valid: !!config, issues: rows }, null, 2) + '\n');
      } else if (config) {
        const stages = new Set(config.jobs.map((j) => j.stage)).size;
        process.stdout.write(`${file} is valid: ${config.jobs.length} job${config.jobs.length === 1 ? '' : 's'} in ${stages} stage${stages === 1 ? '' : 's'}.\n`);
      } else {
        process.stderr.write(formatIssues(issues, { color: useColor(process.stderr, process.env) }));
      }
      process.exitCode = config ? EXIT.OK : EXIT.CONFIG;
    });
}
