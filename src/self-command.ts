// How to start the ferry command itself as a child process (the server's runner, the background
// ingest): the same Node, the compiled entry point, or the TypeScript one under tsx in tests.
// Never this process's own Node flags: under `node -e` or the test runner they are not ours.
import { fileURLToPath } from 'node:url';

export function selfCommand(args: string[]): { command: string; args: string[] } {
  const ts = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(`./cli/main.${ts ? 'ts' : 'js'}`, import.meta.url));
  return { command: process.execPath, args: [...(ts ? ['--import', 'tsx'] : []), main, ...args] };
}
