// `ferry server` and the commands that manage it: runners, projects, manual pipelines.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { homedir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { api, addClientOptions, type ClientOptions } from './client.js';
import { CliError, EXIT } from './exit-codes.js';
import { parseVars, positiveInt } from './options.js';
import { renderTable } from './history.js';
import { LogLimitError, logLimitFromEnv, parseLogLimit } from '../executor/log-limit.js';

function logLimitOption(value: string): number {
  try {
    return parseLogLimit(value, '--log-limit');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** FERRY_LOG_LIMIT, said as a usage error when it is not a size. */
function logLimitOfEnv(): number {
  try {
    return logLimitFromEnv();
  } catch (err) {
    if (err instanceof LogLimitError) throw new CliError(err.message, EXIT.USAGE);
    throw err;
  }
}

function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!m) throw new CliError(`--listen takes HOST:PORT (e.g. 127.0.0.1:7700), not \`${value}\``, EXIT.USAGE);
  const port = Number(m[3]);
  if (port > 65535) throw new CliError(`port ${port} is out of range`, EXIT.USAGE);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** Seconds, 0 to turn polling off. */
function pollIntervalOption(value: string, name = '--poll-interval'): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new CliError(`${name}: give whole seconds (0 turns polling off), not \`${value}\``, EXIT.USAGE);
  return n;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('Run the Ferry server: HTTP API, job queue, and an in-process runner.')
    .option('--listen <host:port>', 'where to listen (keep 127.0.0.1 unless a proxy with TLS is in front)', '127.0.0.1:7700')
    .option('--home <dir>', 'where the embedded store, artifacts and caches live (env FERRY_HOME)', process.env.FERRY_HOME ?? join(homedir(), '.ferry'))
    .option('--no-runner', 'do not run jobs in this process (only remote runners)')
    .option('-j, --runner-concurrency <n>', 'jobs the in-process runner runs at once', positiveInt, availableParallelism())
    .option('--log-requests', 'log every HTTP request (JSON lines on stdout)')
    .option('--lease <seconds>', 'how long a runner that stopped heart-beating keeps its job', positiveInt, 30)
    .option('--no-delivery', 'do not carry out releases here (another replica does, or there are none)')
    .option('--edge-admin-port <n>', "the admin port of the edge this server starts when none runs (0: any free port)", (v: string) => Number.parseInt(v, 10))
    .option('--log-limit <size>', "the most log a job attempt keeps, like 100MiB (env FERRY_LOG_LIMIT; default 100MiB); past it the job runs on and its output is dropped", logLimitOption)
    .option('--poll-interval <seconds>', 'how often remote projects without a webhook are polled for pushes (env FERRY_POLL_INTERVAL; 0: never)', (v: string) => pollIntervalOption(v), pollIntervalOption(process.env.FERRY_POLL_INTERVAL ?? '60', 'FERRY_POLL_INTERVAL'))
    .addHelpText(
      'after',
      `
Examples:
  ferry server                              embedded store under ~/.ferry, http://127.0.0.1:7700
  DATABASE_URL=postgres://… ferry server    PostgreSQL; start several for more capacity
  ferry server --no-runner --listen 127.0.0.1:8080
  ferry server --poll-interval 30           poll remotes without webhooks every 30 s

The first start prints an admin API token, once. Use it as FERRY_TOKEN.`,
    )
    .action(async (opts: { listen: string; home: string; runner: boolean; runnerConcurrency: number; logRequests?: boolean; lease: number; delivery: boolean; edgeAdminPort?: number; logLimit?: number; pollInterval: number }) => {
      const { host, port } = parseListen(opts.listen);
      const logLimit = opts.logLimit ?? logLimitOfEnv();
      // Loaded here: fastify and the server's modules are not for every command's start-up.
      const { startServer } = await import('../server/server.js');
      const server = await startServer({ home: opts.home, databaseUrl: process.env.DATABASE_URL, host, port, runner: opts.runner, runnerConcurrency: opts.runnerConcurrency, logger: !!opts.logRequests, leaseMs: opts.lease * 1000, delivery: opts.delivery, edgeAdminPort: opts.edgeAdminPort, logLimit, pollIntervalMs: opts.pollInterval * 1000 });
      const key = server.masterKey;
      // One write: whoever reads this (a supervisor, a test) gets the start-up message whole.
      let said = `Ferry server on ${server.url} (store: ${process.env.DATABASE_URL ? 'PostgreSQL' : join(opts.home, 'db')}; in-process runner: ${opts.runner ? `${opts.runnerConcurrency} at once` : 'off'})\n`;
      said += `Master key for secrets: ${key.source === 'env' ? 'FERRY_MASTER_KEY' : key.keyFile} (fingerprint ${key.fingerprint})\n`;
      if (key.source === 'created') {
        said += `A new master key was created in ${key.keyFile} (mode 0600). Back it up: without it the stored secrets cannot be decrypted. Servers sharing one PostgreSQL need the same key (copy the file, or set FERRY_MASTER_KEY).\n`;
      }
      if (server.adminToken) {
        said += `\nFirst start: an admin API token was created. It is shown only now; keep it safe:\n\n  export FERRY_TOKEN=${server.adminToken}\n\n`;
      }
      process.stderr.write(said);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.stderr.write('ferry server: stopping…\n');
      await server.close();
    });

  addClientOptions(
    program
      .command('runners')
      .description('List the runners of a server, or register one (`ferry runners add NAME`).')
      .argument('[action]', '"add" to register a runner')
      .argument('[name]', 'the new runner\'s name')
      .option('--tags <tags>', 'with add: comma-separated tags', (v: string) => v.split(',').map((t) => t.trim()).filter(Boolean), [] as string[])
      .addHelpText('after', '\nExamples:\n  ferry runners\n  ferry runners add build-box-1 --tags linux,docker   prints the runner token, once'),
  ).action(async (action: string | undefined, name: string | undefined, opts: ClientOptions & { tags: string[] }) => {
    if (action === 'add') {
      if (!name) throw new CliError('ferry runners add needs a name', EXIT.USAGE);
      const r = await api<{ id: string; token: string }>(opts, 'POST', '/api/runners', { name, tags: opts.tags });
      process.stdout.write(`Runner ${name} (${r.id}) registered. Its token, shown only now:\n\n  ferry runner --server ${opts.server} --token ${r.token}\n`);
      return;
    }
    if (action) throw new CliError(`unknown action \`${action}\` (use: ferry runners, ferry runners add NAME)`, EXIT.USAGE);
    const rows = await api<{ id: string; name: string; tags: string[]; lastSeenAt: string | null; info: { hostname?: string } }>(opts, 'GET', '/api/runners');
    const list = rows as unknown as { id: string; name: string; tags: string[]; lastSeenAt: string | null; info: { hostname?: string } }[];
    const state = (seen: string | null) => (seen && Date.now() - Date.parse(seen) < 60_000 ? 'online' : seen ? `last seen ${seen.replace('T', ' ').slice(0, 19)}` : 'never seen');
    process.stdout.write(renderTable(['ID', 'NAME', 'TAGS', 'HOST', 'STATE'], list.map((r) => [r.id, r.name, r.tags.join(',') || '-', r.info?.hostname ?? '-', state(r.lastSeenAt)])));
  });

  addClientOptions(
    program
      .command('project')
      .description('Projects of a server: `ferry project add PATH-OR-URL`, `ferry project list`.')
      .argument('<action>', 'add | list')
      .argument('[path]', 'with add: a repository path on the server, or a URL it can clone')
      .addHelpText('after', '\nExamples:\n  ferry project add /srv/git/shop\n  ferry project add https://git.example.com/team/shop.git\n  ferry project list'),
  ).action(async (action: string, path: string | undefined, opts: ClientOptions) => {
    if (action === 'add') {
      if (!path) throw new CliError('ferry project add needs a path or URL', EXIT.USAGE);
      const p = await api<{ id: number; name: string }>(opts, 'POST', '/api/projects', { path });
      process.stdout.write(`Project ${p.name} is #${p.id}. Start a pipeline: ferry trigger ${p.id}\n`);
    } else if (action === 'list') {
      const rows = await api<{ id: number; name: string; path: string }[]>(opts, 'GET', '/api/projects');
      process.stdout.write(renderTable(['ID', 'NAME', 'PATH'], rows.map((r) => [String(r.id), r.name, r.path])));
    } else throw new CliError(`unknown action \`${action}\` (use add or list)`, EXIT.USAGE);
  });

  addClientOptions(
    program
      .command('trigger')
      .description('Start a pipeline of a server project by hand, with variables.')
      .argument('<project>', 'project id (see ferry project list)')
      .option('--ref <ref>', 'branch, tag or commit (default: the repository HEAD)')
      .option('-v, --var <KEY=VALUE>', 'a variable (repeatable)', parseVars, {})
      .addHelpText('after', '\nExamples:\n  ferry trigger 1\n  ferry trigger 1 --ref release-2.3 -v DEPLOY=canary'),
  ).action(async (project: string, opts: ClientOptions & { ref?: string; var: Record<string, string> }) => {
    const r = await api<{ pipelineId: string; number: number }>(opts, 'POST', `/api/projects/${encodeURIComponent(project)}/pipelines`, { ref: opts.ref, variables: opts.var });
    process.stdout.write(`Pipeline #${r.number} started (${r.pipelineId}).\n`);
  });
}

export function registerRunner(program: Command): void {
  program
    .command('runner')
    .description('Run jobs for a Ferry server on this machine.')
    .requiredOption('--server <url>', 'the Ferry server', process.env.FERRY_SERVER)
    .requiredOption('--token <token>', 'the runner token (from `ferry runners add`; env FERRY_RUNNER_TOKEN)', process.env.FERRY_RUNNER_TOKEN)
    .option('--tags <tags>', 'comma-separated tags: jobs are taken when all their tags are here', (v: string) => v.split(',').map((t) => t.trim()).filter(Boolean))
    .option('-j, --concurrency <n>', 'jobs at once', positiveInt, availableParallelism())
    .option('--work-dir <dir>', 'where job workspaces are made', join(homedir(), '.ferry-runner'))
    .addOption(new Option('--exit-with-parent', 'stop when standard input closes (the server runs its own runner this way)').hideHelp())
    .addHelpText('after', '\nExamples:\n  ferry runner --server http://ci.internal:7700 --token fryr_… --tags linux,docker -j 4')
    .action(async (opts: { server: string; token: string; tags?: string[]; concurrency: number; workDir: string; exitWithParent?: boolean }) => {
      const { RunnerAgent, recoverAbandonedJobs } = await import('../runner/agent.js');
      const { RunnerTransport } = await import('../runner/transport.js');
      const { version } = await import('./version.js');
      await recoverAbandonedJobs(opts.workDir);
      const agent = new RunnerAgent({
        transport: new RunnerTransport(opts.server, opts.token),
        concurrency: opts.concurrency,
        workDir: opts.workDir,
        tags: opts.tags,
        version: version(),
        say: (line) => process.stderr.write(`${line}\n`),
      });
      agent.start();
      // The server's own runner (--exit-with-parent) says nothing at start: the server already did.
      if (!opts.exitWithParent) process.stderr.write(`ferry runner: taking jobs from ${opts.server} (${opts.concurrency} at once${opts.tags ? `, tags ${opts.tags.join(',')}` : ''})\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
        if (opts.exitWithParent) {
          process.stdin.on('data', () => undefined);
          process.stdin.once('close', () => resolve());
        }
      });
      if (!opts.exitWithParent) process.stderr.write('ferry runner: stopping; running jobs are canceled…\n');
      await agent.stop();
      // The open stdin (--exit-with-parent) would keep this process alive.
      process.stdin.destroy();
    });
}
