// The master key: FERRY_MASTER_KEY, else a key file, else a new key file. Several server
// processes may start at once on a fresh machine; they must all end up with the same key, or
// secrets written by one become unreadable to the others.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SecretError } from './errors.js';

export interface MasterKey {
  key: Buffer;
  source: 'env' | 'file' | 'created';
}

const ENV = 'FERRY_MASTER_KEY';
const HEX = /^[0-9a-fA-F]{64}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{43}=?|[A-Za-z0-9_-]{43}=?)$/;
const ACCEPTED = '64 hexadecimal characters, or 32 bytes in base64 (44 characters with "=" padding)';
// Long enough for another process to finish writing 65 bytes, short enough not to hang a start.
const READ_RETRIES = 40;
const READ_RETRY_MS = 25;

/** Accepts the forms documented for FERRY_MASTER_KEY; `where` names the source in the error, the value never appears. */
export function parseMasterKey(text: string, where: string): Buffer {
  const s = text.trim();
  if (HEX.test(s)) return Buffer.from(s, 'hex');
  if (BASE64.test(s)) {
    const key = Buffer.from(s, /[-_]/.test(s) ? 'base64url' : 'base64');
    if (key.length === 32) return key;
  }
  const got = s.length === 0 ? 'it is empty' : `got ${s.length} characters that are neither`;
  throw new SecretError('bad-master-key', `${where} must be ${ACCEPTED}; ${got}`);
}

export async function loadMasterKey(opts: { env?: NodeJS.ProcessEnv; keyFile: string }): Promise<MasterKey> {
  const fromEnv = (opts.env ?? process.env)[ENV];
  // An empty variable is a mistake (a blank line in a compose file), not a request for the key
  // file: silently using another key would make every stored secret unreadable.
  if (fromEnv !== undefined) return { key: parseMasterKey(fromEnv, ENV), source: 'env' };
  const existing = await readKeyFile(opts.keyFile);
  if (existing) return { key: existing, source: 'file' };
  return createKeyFile(opts.keyFile);
}

async function readKeyFile(path: string): Promise<Buffer | undefined> {
  for (let attempt = 0; ; attempt++) {
    let text: string;
    try {
      const fh = await open(path, 'r');
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new SecretError('key-file-unreadable', `master key file ${path} is not a regular file`);
        if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
          const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
          throw new SecretError(
            'key-file-permissions',
            `master key file ${path} has mode ${mode}, so other users may read it; make it private with: chmod 600 ${path}`,
          );
        }
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (err instanceof SecretError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SecretError('key-file-unreadable', `cannot read master key file ${path}: ${(err as Error).message}`);
    }
    try {
      return parseMasterKey(text, `master key file ${path}`);
    } catch (err) {
      // Only a file created without the link dance (older Ferry, a filesystem without hard links)
      // can be seen half-written; anything else is corrupt and retrying would not help.
      const partial = /^[0-9a-fA-F]{0,64}$/.test(text);
      if (!partial || attempt >= READ_RETRIES) throw err;
      await sleep(READ_RETRY_MS);
    }
  }
}

async function createKeyFile(path: string): Promise<MasterKey> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  const content = `${key.toString('hex')}\n`;
  // Written in full under a private name, then published with link(), which fails if the name
  // exists: nobody ever sees a half-written key file, and exactly one process wins.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeNew(tmp, content);
  let published: boolean;
  try {
    await link(tmp, path);
    published = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') published = false;
    else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') published = await createExclusive(path, content);
    else throw new SecretError('key-file-unreadable', `cannot create master key file ${path}: ${(err as Error).message}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  if (published) {
    await syncDir(dirname(path));
    return { key, source: 'created' };
  }
  const winner = await readKeyFile(path);
  if (!winner) throw new SecretError('key-file-unreadable', `master key file ${path} vanished while it was being created`);
  return { key: winner, source: 'file' };
}

async function writeNew(path: string, content: string): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The fallback where hard links are unsupported; readers retry if they catch it half-written. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  try {
    await writeNew(path, content);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  // Without it a power cut right after the first start could lose the key but keep the secrets.
  try {
    const fh = await open(dir, 'r');
    await fh.sync().finally(() => fh.close());
  } catch {
    // Not every platform can open or fsync a directory (Windows); the file itself is synced.
  }
}
