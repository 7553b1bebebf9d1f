// The demo's repositories: `origin.git`, a bare repository the server watches (its post-receive
// hook starts pipelines, as a push to a shared remote would), and `sample-service`, the working
// copy a developer commits in and pushes from. The service is examples/sample-service; its later
// commits copy examples/demo-changes/<version>/ over it.
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { packageRoot } from '../package-root.js';

const run = promisify(execFile);

/** Who writes the demo's changes; someone else (a deployer) approves them. */
export const AUTHOR = { name: 'Dana Developer', email: 'dana@example.com' };

export interface Ports {
  staging: number;
  production: number;
}

export interface DemoRepository {
  /** The bare repository the server watches. */
  origin: string;
  /** The working copy. */
  work: string;
  /** Copies examples/demo-changes/<change> over the working copy (when given), commits, pushes. */
  commitAndPush(message: string, change?: string): Promise<{ sha: string; at: Date }>;
}

export async function createDemoRepository(root: string, ports: Ports): Promise<DemoRepository> {
  const origin = join(root, 'origin.git');
  const work = join(root, 'sample-service');
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: AUTHOR.name,
    GIT_AUTHOR_EMAIL: AUTHOR.email,
    GIT_COMMITTER_NAME: AUTHOR.name,
    GIT_COMMITTER_EMAIL: AUTHOR.email,
  };
  const git = async (cwd: string, ...args: string[]) => (await run('git', args, { cwd, env })).stdout.trim();

  await run('git', ['init', '-q', '--bare', '--initial-branch=main', origin]);
  cpSync(join(packageRoot(), 'examples', 'sample-service'), work, { recursive: true });
  usePorts(join(work, 'ferry.yml'), ports);
  await run('git', ['init', '-q', '--initial-branch=main', work]);
  await git(work, 'remote', 'add', 'origin', origin);

  return {
    origin,
    work,
    async commitAndPush(message, change) {
      if (change) cpSync(join(packageRoot(), 'examples', 'demo-changes', change), work, { recursive: true });
      await git(work, 'add', '-A');
      await git(work, 'commit', '-q', '-m', message);
      const sha = await git(work, 'rev-parse', 'HEAD');
      const at = new Date(Number(await git(work, 'log', '-1', '--format=%ct')) * 1000);
      // The push runs origin's post-receive hook, which tells the server.
      await git(work, 'push', '-q', 'origin', 'HEAD:main');
      return { sha, at };
    },
  };
}

/** Points the environments' routers (and the load gate) at ports free on this machine. */
function usePorts(file: string, ports: Ports): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(['environments', 'staging', 'port'], ports.staging);
  doc.setIn(['environments', 'production', 'port'], ports.production);
  doc.setIn(['variables', 'STAGING_URL'], `http://127.0.0.1:${ports.staging}`);
  writeFileSync(file, doc.toString({ lineWidth: 0 }));
}
