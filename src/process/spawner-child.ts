// The spawner (see ./run.ts): a small process that runs the commands its parent sends over IPC
// and answers with what they wrote, and keeps the repositories' cat-file processes
// (./cat-file.ts). It ends when its parent disconnects or dies.
import { catFileBatch, stopCatFiles } from './cat-file.js';
import { runHere, CommandError, type RunOptions, type RunResult } from './run.js';

type Request = { id: number } & ({ cmd: string; args: string[]; opts: RunOptions } | { objects: { repo: string; lines: string[] } });

process.on('message', (m: Request) => {
  const answer: Promise<RunResult> =
    'objects' in m ? catFileBatch(m.objects.repo, m.objects.lines).then((stdout) => ({ stdout, stderr: Buffer.alloc(0) })) : runHere(m.cmd, m.args, m.opts);
  answer.then(
    (r) => process.send?.({ id: m.id, stdout: r.stdout, stderr: r.stderr }),
    (err: Error) => {
      const e = err instanceof CommandError ? err : new CommandError(err.message, null, Buffer.alloc(0), Buffer.alloc(0));
      process.send?.({ id: m.id, stdout: e.stdout, stderr: e.stderr, error: { message: e.message, code: e.code } });
    },
  );
});
process.on('disconnect', () => {
  stopCatFiles();
  process.exit(0);
});
process.send?.('ready');
