// The spawner (see ./run.ts): a small process that runs the commands its parent sends over IPC
// and answers with what they wrote. It ends when its parent disconnects or dies.
import { runHere, CommandError, type RunOptions } from './run.js';

interface Request {
  id: number;
  cmd: string;
  args: string[];
  opts: RunOptions;
}

process.on('message', (m: Request) => {
  runHere(m.cmd, m.args, m.opts).then(
    (r) => process.send?.({ id: m.id, stdout: r.stdout, stderr: r.stderr }),
    (err: Error) => {
      const e = err instanceof CommandError ? err : new CommandError(err.message, null, Buffer.alloc(0), Buffer.alloc(0));
      process.send?.({ id: m.id, stdout: e.stdout, stderr: e.stderr, error: { message: e.message, code: e.code } });
    },
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.('ready');
