// `ferry init [dir]`: a first ferry.yml for a repository, from what its files say it is
// (src/init/). It never overwrites a pipeline without --force, and checks what it wrote the way
// `ferry validate` would, so the file it leaves is one Ferry accepts.
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatIssues } from '../config/format.js';
import { detect, STACKS, type Detection } from '../init/detect.js';
import { CliError, EXIT } from './exit-codes.js';

const FILE = 'ferry.yml';

interface InitFlags {
  force?: boolean;
  stack?: string;
  print?: boolean;
}

function report(d: Detection, forced: boolean, target: string, printed: boolean): string {
  const lines: string[] = [];
  const plan = d.plan;
  if (d.stack.name === 'generic') {
    lines.push(
      forced
        ? 'Stack: generic (--stack generic).'
        : 'Found no known stack (looked for package.json, pyproject.toml, requirements.txt, setup.py, go.mod, pom.xml, Cargo.toml, Dockerfile): a generic pipeline.',
    );
  } else {
    lines.push(d.evidence.length ? `Detected ${plan.title} from ${d.evidence.join(', ')}.` : `Stack: ${plan.title} (--stack ${d.stack.name}; none of its files are here).`);
  }
  for (const o of d.others) lines.push(`Also found: ${o.name} (${o.evidence.join(', ')}); \`ferry init --force --stack ${o.name}\` to use it instead.`);
  if (d.dockerfile) lines.push(`Also found: ${d.dockerfile}: a manual docker-build job (Ferry does not deploy containers yet).`);
  lines.push(`Default branch: ${d.defaultBranch} (only its commits are released; production needs an approval).`);
  const jobs = ['build', 'test', ...Object.keys(plan.checks ?? {}), 'scan', ...(d.imageJob ? ['docker-build'] : []), 'deploy-staging', 'deploy-production'];
  lines.push(`${printed ? 'Printed' : 'Wrote'} ${target}: jobs ${jobs.join(', ')}; environments staging (rolling) and production (canary).`);
  if (plan.notes.length) lines.push('', 'Check:', ...plan.notes.map((n) => `  - ${n}`));
  const next: [string, string][] = [
    [`ferry validate${target === FILE ? '' : ` ${target}`}`, 'check it: every problem with its line'],
    ['ferry run', 'run the pipeline on this machine (deploy jobs are left out: releases need `ferry server`)'],
    d.isGitRepository ? [`git add ${target} && git commit -m "Ferry pipeline"`, 'a server runs it on every push'] : ['git init && git add -A && git commit -m init', '`ferry run` needs a repository with a commit'],
  ];
  const width = Math.max(...next.map(([c]) => c.length));
  lines.push('', 'Next:', ...next.map(([c, what]) => `  ${c.padEnd(width)}   ${what}`));
  return lines.join('\n') + '\n';
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('Write a ferry.yml for a repository: build, test, secret scan and deploy jobs for its stack, staging and production environments.')
    .argument('[dir]', 'the repository', '.')
    .option('--force', 'overwrite an existing ferry.yml')
    .option('--stack <name>', `use this stack instead of detecting it: ${STACKS.map((s) => s.name).join(', ')}`)
    .option('--print', 'print the file instead of writing it')
    .addHelpText(
      'after',
      `
It looks at the repository's files (package.json and its lock file, pyproject.toml,
requirements.txt, setup.py, go.mod, pom.xml, Cargo.toml, Dockerfile), takes the build, test and
start commands from them, and writes a commented ferry.yml that \`ferry validate\` accepts. Read
it: the start command of the environments and the health check path are guesses to check.

Examples:
  ferry init                          this repository
  ferry init services/api             another folder
  ferry init --print | less           look before writing
  ferry init --force --stack python   a Python pipeline, over the old file

Exit codes: 0 written, 3 no such folder or ferry.yml already there (use --force), 64 bad usage.`,
    )
    .action(async (dir: string, flags: InitFlags) => {
      if (flags.stack && !STACKS.some((s) => s.name === flags.stack)) {
        throw new CliError(`--stack ${flags.stack}: unknown stack; one of ${STACKS.map((s) => s.name).join(', ')}`, EXIT.USAGE);
      }
      const root = resolve(dir);
      if (!existsSync(root) || !statSync(root).isDirectory()) throw new CliError(`${dir}: no such folder`, EXIT.ENVIRONMENT);
      const path = join(root, FILE);
      const shown = relative(process.cwd(), path) || FILE;
      // The repository is "not usable" for init as it is: it has a pipeline; --force says to replace it.
      if (existsSync(path) && !flags.force && !flags.print) {
        throw new CliError(`${shown} already exists; nothing written. \`ferry init --print\` shows what init would write, \`--force\` replaces it.`, EXIT.ENVIRONMENT);
      }
      // Loaded here: the YAML writer and the pipeline validator cost every command's start-up.
      const [{ renderFerryYml }, { parseConfig }] = await Promise.all([import('../init/templates.js'), import('../config/load.js')]);
      const d = await detect(root, flags.stack);
      const text = renderFerryYml(d);
      const { config, issues } = parseConfig(text, FILE);
      if (!config) {
        throw new CliError(`internal error: the ferry.yml written for ${d.plan.title} is not valid; please report this.\n${formatIssues(issues, { color: false })}`, EXIT.INTERNAL);
      }
      if (flags.print) {
        process.stdout.write(text);
        // What was detected goes to stderr, so `ferry init --print > ferry.yml` stays clean.
        process.stderr.write(report(d, !!flags.stack, shown, true));
        return;
      }
      await writeFile(path, text);
      process.stdout.write(report(d, !!flags.stack, shown, false));
    });
}
