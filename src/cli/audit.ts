// `ferry audit`: the server's audit log (who changed what in which environment, and why), and
// `ferry audit verify`, which recomputes its hash chain. Both read the server's store directly
// (FERRY_HOME / --home, or DATABASE_URL), so an auditor can check the log without trusting a
// running server. The embedded store is opened by one process at a time: with a running
// `ferry server` on it, this waits for the server to stop (on PostgreSQL it does not wait).
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { listAudit, verifyAudit, type AuditEntry } from '../store/audit.js';
import type { Db } from '../store/db.js';
import { openDb } from '../store/open.js';
import { CliError, EXIT } from './exit-codes.js';
import { renderTable } from './history.js';
import { positiveInt } from './options.js';
import { paint } from './view/ansi.js';
import { useColor } from './view/index.js';

interface StoreOptions {
  home: string;
}

interface ListOptions extends StoreOptions {
  env?: string;
  project?: string;
  limit: number;
  before?: number;
  json?: boolean;
}

function homeOption(cmd: Command): Command {
  return cmd.option('--home <dir>', "the server's home, where its embedded store lives (env FERRY_HOME; ignored with DATABASE_URL)", process.env.FERRY_HOME || join(homedir(), '.ferry'));
}

async function withServerStore<T>(opts: StoreOptions, fn: (db: Db) => Promise<T>): Promise<T> {
  let notice: NodeJS.Timeout | undefined;
  const db = await openDb({
    home: opts.home,
    url: process.env.DATABASE_URL || undefined,
    onLockWait: (pid) => {
      notice = setTimeout(
        () => process.stderr.write(`ferry: the store in ${opts.home} is in use by pid ${pid} (a running ferry server?); waiting for it to stop…\n`),
        2000,
      );
    },
  }).finally(() => clearTimeout(notice));
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export function registerAudit(program: Command): void {
  const audit = homeOption(
    program
      .command('audit')
      .description("The server's audit log, newest first: releases, approvals, freeze overrides, secret changes.")
      .option('--env <environment>', 'only this environment')
      .option('--project <id>', 'only this project')
      .option('-n, --limit <n>', 'how many', positiveInt, 50)
      .option('--before <seq>', 'only entries older than this one (the next page)', positiveInt)
      .option('--json', 'print JSON'),
  )
    .addHelpText(
      'after',
      `
Examples:
  ferry audit --env production
  ferry audit --limit 200 --json | jq '.[] | select(.action == "release.approved")'
  ferry audit verify        exit 0 when the hash chain is intact, ${EXIT.TAMPERED} when it is not`,
    )
    .action(async (opts: ListOptions) => {
      let projectId: number | undefined;
      if (opts.project !== undefined) {
        if (!/^\d+$/.test(opts.project)) throw new CliError(`--project takes a project id, not \`${opts.project}\``, EXIT.USAGE);
        projectId = Number(opts.project);
      }
      const rows = await withServerStore(opts, (db) => listAudit(db, { environment: opts.env, projectId, limit: opts.limit, beforeSeq: opts.before }));
      const last = rows[rows.length - 1];
      const more = last && rows.length === opts.limit && last.seq > 1 ? `(older entries: ferry audit --before ${last.seq})\n` : '';
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        process.stderr.write(more);
        return;
      }
      if (rows.length === 0) {
        process.stderr.write(opts.env || projectId !== undefined || opts.before ? 'No audit entries match.\n' : 'The audit log is empty.\n');
        return;
      }
      process.stdout.write(renderTable(['SEQ', 'TIME (UTC)', 'ACTOR', 'ACTION', 'ENVIRONMENT', 'SUBJECT', 'REASON'], rows.map(auditRow)));
      process.stderr.write(more);
    });

  // --home and --json are the parent's (commander gives a parent's options to it wherever they
  // stand), so `ferry audit verify --json` and `ferry audit --json verify` mean the same.
  audit
    .command('verify')
    .description('Recompute the hash chain of the audit log; name the first entry that was changed or removed.')
    .addHelpText('after', `\nOptions of ferry audit apply: --home <dir>, --json.\nExit codes: 0 intact, ${EXIT.TAMPERED} tampered.`)
    .addHelpText(
      'after',
      `
Examples:
  ferry audit verify                          the embedded store of ~/.ferry (stop the server first)
  ferry audit verify --home /srv/ferry --json
  DATABASE_URL=postgres://… ferry audit verify`,
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<StoreOptions & { json?: boolean }>();
      const result = await withServerStore(opts, (db) => verifyAudit(db));
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      const p = paint(useColor(process.stdout, process.env));
      if (result.ok) {
        if (!opts.json) process.stdout.write(`${p.green('audit log intact')}: ${result.entries} ${result.entries === 1 ? 'entry' : 'entries'}\n`);
        return;
      }
      const message = `audit log tampered at entry #${result.firstBad.seq}: ${result.firstBad.problem}`;
      if (!opts.json) process.stdout.write(`${p.red(message)} (${result.entries} ${result.entries === 1 ? 'entry' : 'entries'} before it intact)\n`);
      process.exitCode = EXIT.TAMPERED;
    });
}

function auditRow(e: AuditEntry): string[] {
  return [
    String(e.seq),
    e.at.toISOString().replace('T', ' ').slice(0, 19),
    cell(e.actor),
    cell(e.action),
    cell(e.environment ?? '-'),
    cell(e.subject ?? '-'),
    cell(e.reason ?? ''),
  ];
}

/** One table cell: control characters (a newline in a reason, escape sequences) never reach the terminal. */
function cell(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}
