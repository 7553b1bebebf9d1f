// `ferry demo` (what `npm start` runs): the tour from commit to production (src/demo/demo.ts).
import type { Command } from 'commander';
import { CliError, EXIT } from './exit-codes.js';
import { useColor } from './view/index.js';

interface DemoFlags {
  dir?: string;
  keep?: boolean;
  port: string;
  rps: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('A change from commit to production on this machine: server, runner, edge, staging, approval, canary, an automatic rollback, DORA figures. What `npm start` runs.')
    .option('--dir <dir>', 'where to put the repositories and the server\'s store (default: a new temp folder)')
    .option('--keep', 'leave the server, the edge and the service running at the end, until Ctrl-C')
    .option('--port <port>', 'the server\'s port on 127.0.0.1 (0: any free one)', '0')
    .option('--rps <n>', 'requests per second that production\'s users send', '100')
    .addHelpText(
      'after',
      `
It creates a sample service in a git repository, starts a Ferry server (embedded database, an
in-process runner, the delivery controller) and the edge, and pushes three commits: v1 goes to
production through staging, a load gate and an approval; v2 carries a bug its tests miss, and
the canary's analysis of real traffic rolls it back by itself; v3 fixes it. It ends with the
releases, the DORA figures and the audit chain, then stops everything it started.

Examples:
  ferry demo
  ferry demo --keep --port 7700      look around afterwards with the CLI or the API
  ferry demo --dir ./ferry-demo      keep the repositories and the store somewhere you choose`,
    )
    .action(async (flags: DemoFlags) => {
      const port = Number(flags.port);
      const rps = Number(flags.rps);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port: ${flags.port} is not a port (0-65535)`, EXIT.USAGE);
      if (!Number.isFinite(rps) || rps < 10 || rps > 2000) throw new CliError(`--rps: ${flags.rps}: give 10 to 2000 requests per second`, EXIT.USAGE);
      let stop!: () => void;
      const interrupted = new Promise<void>((r) => (stop = r));
      let signalled = false;
      const onSignal = () => {
        signalled = true;
        stop();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // `ferry demo | head`: once the reader has gone (EPIPE), stop as for Ctrl-C, so that the
      // edge and the service's instances are stopped rather than left running. The listener stays
      // to the end: the goodbye lines fail too, after the action has returned.
      const onOutputError = (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') onSignal();
      };
      process.stdout.on('error', onOutputError);
      // Loaded here: the demo brings the whole server (fastify, ...), which other commands
      // should not pay for at start-up.
      const [{ runDemo }, { Narrator }] = await Promise.all([import('../demo/demo.js'), import('../demo/narrator.js')]);
      const narrator = new Narrator({ out: process.stdout, tty: process.stdout.isTTY === true, color: useColor(process.stdout, process.env) });
      try {
        const outcome = await runDemo({ dir: flags.dir, keep: flags.keep === true, port, rps, narrator, interrupted });
        process.exitCode = signalled && !flags.keep ? EXIT.INTERRUPTED : outcome.ok ? EXIT.OK : EXIT.FAILED;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
