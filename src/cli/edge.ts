// `ferry edge`: the data plane of this machine (router + application instances) in the
// foreground. It outlives server restarts; SIGTERM/SIGINT stop its routes and instances (they are
// started again, from FERRY_HOME/edge/state.json, by the next `ferry edge`).
import { InvalidArgumentError, type Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, EXIT } from './exit-codes.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port from 0 to 65535 (0: any free port).');
  return n;
}

export function registerEdge(program: Command): void {
  program
    .command('edge')
    .description('Run the edge: the router and the application instances of this machine, driven by the server.')
    .option('--admin-port <n>', 'admin API port on 127.0.0.1 (0: any free port, written to FERRY_HOME/edge/admin.json)', port, 7701)
    .option('--home <dir>', 'Ferry home; the edge keeps its token and state under <home>/edge (env FERRY_HOME)', process.env.FERRY_HOME ?? join(homedir(), '.ferry'))
    .addHelpText(
      'after',
      `
Examples:
  ferry edge                       admin API on http://127.0.0.1:7701, state under ~/.ferry/edge
  ferry edge --admin-port 0        any free port (see ~/.ferry/edge/admin.json)

Applications keep running while the server restarts; stopping the edge stops them.`,
    )
    .action(async (opts: { adminPort: number; home: string }) => {
      // The edge outlives whoever started it: a closed stderr (its parent gone) must not kill it.
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
      const { startEdge } = await import('../edge/edge.js');
      const home = resolve(opts.home);
      let edge;
      try {
        edge = await startEdge({ home, adminPort: opts.adminPort });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EADDRINUSE') throw new CliError(`port ${opts.adminPort} is in use (another edge? try --admin-port)`, EXIT.ENVIRONMENT);
        throw new CliError((err as Error).message, EXIT.ENVIRONMENT);
      }
      // A bug in one request's handling must not take every route and application down with it
      // (a restarted edge restarts the applications): say it, and keep serving.
      process.on('uncaughtException', (err) => process.stderr.write(`ferry edge: internal error (still serving): ${err.stack ?? err}\n`));
      process.stderr.write(`Ferry edge on ${edge.url} (pid ${process.pid}; ${edge.routes.size} route(s), ${edge.supervisor.list().length} instance(s) restored; state in ${edge.dir})\n`);
      await new Promise<void>((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      process.stderr.write('ferry edge: stopping: draining routes, stopping instances…\n');
      await edge.stop();
      process.exit(0);
    });
}
