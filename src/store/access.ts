// The access aggregate: users with a role, their API tokens, and runner tokens. Tokens are
// random 256-bit values shown once; only their sha256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './db.js';

export const ROLES = ['viewer', 'developer', 'deployer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** `fry_` for people's tokens, `fryr_` for runners': a leaked token says what it is. */
export function newToken(prefix: 'fry' | 'fryr'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export interface Principal {
  userId: number;
  name: string;
  role: Role;
}

export async function countUsers(db: Db): Promise<number> {
  const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
  return row!.n;
}

/** Creates a user (or finds it by name) and gives it a new token; returns the token, once. */
export async function createUserToken(db: Db, name: string, role: Role, tokenName = 'default', email?: string): Promise<{ userId: number; token: string }> {
  return db.transaction(async (tx) => {
    // The e-mail is what four-eyes approval compares with a commit's author.
    const [user] = await tx.query<{ id: number }>(
      `INSERT INTO users (name, role, email) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET role = excluded.role, email = coalesce(excluded.email, users.email) RETURNING id`,
      [name, role, email ?? null],
    );
    const token = newToken('fry');
    await tx.query('INSERT INTO api_tokens (user_id, name, hash) VALUES ($1, $2, $3)', [user!.id, tokenName, hashToken(token)]);
    return { userId: user!.id, token };
  });
}

/**
 * Writes `sql` (which stamps a row as used now) for `key` at most once every `everyMs` in this
 * process: authentication reads on every request, but a write on each cost more than the rest of
 * a small request on the embedded store.
 */
const touched = new Map<string, number>();
async function touchAtMost(db: Db, key: string, everyMs: number, sql: string, param: unknown): Promise<void> {
  const now = Date.now();
  if (now - (touched.get(key) ?? 0) < everyMs) return;
  touched.set(key, now);
  if (touched.size > 10_000) touched.clear();
  await db.query(sql, [param]);
}

export async function principalForToken(db: Db, token: string): Promise<Principal | null> {
  const hash = hashToken(token);
  const [row] = await db.query<{ user_id: number; name: string; role: string }>(
    'SELECT t.user_id, u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1',
    [hash],
  );
  if (!row || !isRole(row.role)) return null;
  await touchAtMost(db, `token:${hash}`, 60_000, 'UPDATE api_tokens SET last_used_at = now() WHERE hash = $1', hash);
  return { userId: row.user_id, name: row.name, role: row.role };
}

export interface RunnerRow {
  id: string;
  name: string;
  tags: string[];
  createdAt: Date;
  lastSeenAt: Date | null;
  info: Record<string, unknown>;
}

export async function registerRunner(db: Db, name: string, tags: string[]): Promise<{ id: string; token: string }> {
  const token = newToken('fryr');
  const id = `runner-${randomBytes(6).toString('hex')}`;
  await db.query('INSERT INTO runners (id, name, hash, tags) VALUES ($1, $2, $3, $4::jsonb)', [id, name, hashToken(token), JSON.stringify(tags)]);
  return { id, token };
}

/** How often a runner's requests write its last_seen_at (well inside the minute that counts it online). */
const RUNNER_SEEN_EVERY_SECONDS = 10;

export async function runnerForToken(db: Db, token: string): Promise<RunnerRow | null> {
  const [row] = await db.query<{ id: string; name: string; tags: string[]; created_at: Date; last_seen_at: Date | null; info: Record<string, unknown> }>(
    'SELECT id, name, tags, created_at, last_seen_at, info FROM runners WHERE hash = $1',
    [hashToken(token)],
  );
  if (!row) return null;
  await touchAtMost(db, `runner:${row.id}`, RUNNER_SEEN_EVERY_SECONDS * 1000, 'UPDATE runners SET last_seen_at = now() WHERE id = $1', row.id);
  return { id: row.id, name: row.name, tags: row.tags, createdAt: row.created_at, lastSeenAt: row.last_seen_at, info: row.info };
}

export async function listRunners(db: Db): Promise<RunnerRow[]> {
  const rows = await db.query<{ id: string; name: string; tags: string[]; created_at: Date; last_seen_at: Date | null; info: Record<string, unknown> }>(
    'SELECT id, name, tags, created_at, last_seen_at, info FROM runners ORDER BY created_at',
  );
  return rows.map((row) => ({ id: row.id, name: row.name, tags: row.tags, createdAt: row.created_at, lastSeenAt: row.last_seen_at, info: row.info }));
}

/** The server's own runner: one row per host, its token replaced at every start. */
export async function rotateRunnerToken(db: Db, id: string, name: string, tags: string[]): Promise<string> {
  const token = newToken('fryr');
  await db.query(
    `INSERT INTO runners (id, name, hash, tags) VALUES ($1, $2, $3, $4::jsonb)
     ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, tags = excluded.tags, name = excluded.name`,
    [id, name, hashToken(token), JSON.stringify(tags)],
  );
  return token;
}
