// `ferry secret set|list|rm`: a server project's secrets. The value of `set` is read from
// standard input (or typed at a prompt that does not echo), never taken as an argument: an
// argument would land in shell history and in every process listing of the machine.
import type { Command } from 'commander';
import { api, addClientOptions, type ClientOptions } from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { renderTable } from './history.js';

interface SecretOptions extends ClientOptions {
  project: string;
  env?: string;
}

function projectPath(opts: SecretOptions): string {
  if (!/^\d+$/.test(opts.project)) throw new CliError(`--project takes a project id (see ferry project list), not \`${opts.project}\``, EXIT.USAGE);
  return `/api/projects/${opts.project}/secrets`;
}

export function registerSecret(program: Command): void {
  const secret = program
    .command('secret')
    .description("A server project's secrets: set, list, rm. Values are encrypted on the server and never shown again.")
    .addHelpText(
      'after',
      `
Examples:
  ferry secret set DATABASE_PASSWORD --project 1 < password.txt
  printf %s "$TOKEN" | ferry secret set NPM_TOKEN --project 1
  ferry secret set DEPLOY_KEY --env production --project 1 < id_ed25519
  ferry secret list --project 1
  ferry secret rm NPM_TOKEN --project 1

Jobs get the project's secrets as environment variables; a secret with --env only in deploy
jobs to that environment. Pipelines of forks and untrusted merge requests get none.`,
    );

  addClientOptions(
    secret
      .command('set')
      .description('Create or replace a secret; the value is read from standard input (one trailing newline is dropped).')
      .argument('<name>', 'upper-case letters, digits and _ (like DATABASE_PASSWORD)')
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .option('--env <environment>', 'only for deploy jobs to this environment')
      .addHelpText(
        'after',
        `
Examples:
  ferry secret set DATABASE_PASSWORD --project 1 < password.txt      the file's content
  ferry secret set API_KEY --project 1                               at a terminal: a prompt that does not echo
  ferry secret set DEPLOY_KEY --env production --project 1 < key     only deploy jobs to production get it`,
      ),
  ).action(async (name: string, opts: SecretOptions) => {
    const path = projectPath(opts);
    const value = await readValue(name);
    if (value.length === 0) throw new CliError('the value is empty: give it on standard input (ferry secret set NAME --project ID < file)', EXIT.USAGE);
    const r = await api<{ created: boolean }>(opts, 'PUT', `${path}/${encodeURIComponent(name)}`, { value, environment: opts.env });
    process.stderr.write(`Secret ${name}${opts.env ? ` (${opts.env})` : ''} ${r.created ? 'created' : 'updated'}.\n`);
  });

  addClientOptions(
    secret
      .command('list')
      .description("The project's secrets: names, environments, who changed them and when (never values).")
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .option('--json', 'print JSON')
      .addHelpText('after', '\nExamples:\n  ferry secret list --project 1\n  ferry secret list --project 1 --json | jq -r \'.[].name\''),
  ).action(async (opts: SecretOptions & { json?: boolean }) => {
    const rows = await api<{ name: string; environment: string; updatedAt: string; updatedBy: string | null }[]>(opts, 'GET', projectPath(opts));
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    if (rows.length === 0) {
      process.stderr.write(`Project ${opts.project} has no secrets. Add one: ferry secret set NAME --project ${opts.project} < file\n`);
      return;
    }
    process.stdout.write(
      renderTable(
        ['NAME', 'ENVIRONMENT', 'UPDATED', 'BY'],
        rows.map((r) => [r.name, r.environment || '(every job)', r.updatedAt.replace('T', ' ').slice(0, 19), r.updatedBy ?? '-']),
      ),
    );
  });

  addClientOptions(
    secret
      .command('rm')
      .description('Delete a secret.')
      .argument('<name>', 'the secret')
      .requiredOption('--project <id>', 'the project (see ferry project list)')
      .option('--env <environment>', 'the one for this environment (default: the one for every job)')
      .addHelpText('after', '\nExamples:\n  ferry secret rm NPM_TOKEN --project 1\n  ferry secret rm DEPLOY_KEY --env production --project 1'),
  ).action(async (name: string, opts: SecretOptions) => {
    const q = opts.env ? `?environment=${encodeURIComponent(opts.env)}` : '';
    await api(opts, 'DELETE', `${projectPath(opts)}/${encodeURIComponent(name)}${q}`);
    process.stderr.write(`Secret ${name}${opts.env ? ` (${opts.env})` : ''} deleted.\n`);
  });
}

/** Standard input, whole; at a terminal, one line typed without echo. */
async function readValue(name: string): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) return promptHidden(`Value for ${name} (not shown): `);
  const parts: Buffer[] = [];
  for await (const chunk of stdin) parts.push(chunk as Buffer);
  // `echo "$X" |` and files saved by editors end with a newline that is not part of the value.
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new CliError('interrupted', EXIT.INTERRUPTED));
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
