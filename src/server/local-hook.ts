// Pushes to a repository on the server's own machine start pipelines at once: adding a local
// project installs a post-receive hook that tells the server which refs moved. The hook is plain
// bash speaking HTTP over /dev/tcp, so a push pays no program start-up; the server trusts it
// only with the project's hook token, and reads the commits from the repository itself.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { git } from '../pipeline/git.js';

export const HOOK_MARK = '# Installed by Ferry';

/** Where git runs hooks for this repository (bare or not, honouring core.hooksPath). */
async function hooksDir(repo: string): Promise<string> {
  const configured = (await git(repo, ['rev-parse', '--git-path', 'hooks'])).trim();
  return configured.startsWith('/') ? configured : join(repo, configured);
}

/**
 * bash, by its full path: the hook starts it directly rather than through `env`, one program
 * start less on every push.
 */
function bashPath(): string {
  for (const dir of ['/bin', '/usr/bin', ...(process.env.PATH ?? '').split(delimiter)]) {
    if (dir && existsSync(join(dir, 'bash'))) return join(dir, 'bash');
  }
  return '/usr/bin/env bash';
}

/**
 * The hook. Every program it starts is time a push waits before its pipeline can start (about
 * 8 ms each on a small machine), so it starts none: stdin is read with `read`, the length is
 * bash's own (${#body}, counted in bytes under LC_ALL=C), and the request goes over /dev/tcp.
 */
export function hookScript(host: string, port: number, projectId: number, token: string, bash = bashPath()): string {
  return `#!${bash}
${HOOK_MARK}: tells the Ferry server at ${host}:${port} which refs a push moved.
# Reinstalled when the project is added again; remove this file to stop it.
LC_ALL=C
IFS= read -r -d '' body
exec 3<>/dev/tcp/${host}/${port} || { echo "ferry: server not reachable; no pipeline started" >&2; exit 0; }
printf 'POST /api/hooks/local/${projectId} HTTP/1.1\\r\\nHost: ${host}\\r\\nContent-Type: text/plain\\r\\nX-Ferry-Hook-Token: ${token}\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s' "\${#body}" "$body" >&3
read -r -t 5 _ status _ <&3
[ "$status" = 202 ] && echo "ferry: pipeline started" >&2
exit 0
`;
}

export type HookResult = { installed: true; token: string } | { installed: false; reason: string };

/**
 * Installs the post-receive hook in `repo`; returns the token the hook sends (to be kept,
 * hashed, with the project). An existing post-receive hook that is not Ferry's is left alone.
 */
export async function installLocalHook(repo: string, url: string, projectId: number): Promise<HookResult> {
  const u = new URL(url);
  const dir = await hooksDir(repo);
  const file = join(dir, 'post-receive');
  if (existsSync(file) && !(await readFile(file, 'utf8')).includes(HOOK_MARK)) {
    return { installed: false, reason: `${file} exists and is not Ferry's: add a call to Ferry's hook URL there, or use webhooks` };
  }
  const token = randomBytes(24).toString('hex');
  await mkdir(dir, { recursive: true });
  await writeFile(file, hookScript(u.hostname, Number(u.port || 80), projectId, token), { mode: 0o700 });
  await chmod(file, 0o700);
  return { installed: true, token };
}

export function hashHookToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function hookTokenMatches(token: string, storedHash: string): boolean {
  const a = Buffer.from(hashHookToken(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface RefUpdate {
  before: string;
  after: string;
  ref: string;
}

/** post-receive's stdin: one `old new ref` line per ref. Anything else is dropped. */
export function parseRefUpdates(text: string): RefUpdate[] {
  const out: RefUpdate[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/(?:heads|tags)\/[^\s]+)$/.exec(line.trim());
    if (m) out.push({ before: m[1], after: m[2], ref: m[3] });
  }
  return out;
}
