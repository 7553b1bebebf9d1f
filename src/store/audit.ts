// The audit log: every change to an environment (releases, approvals, freeze overrides, secrets)
// as an append-only hash chain. Each entry holds the hash of the one before, so an entry edited,
// removed or inserted in the database afterwards breaks the chain at that point, and
// `ferry audit verify` names it.
//
//   hash = sha256( JSON.stringify(['ferry-audit-v1', seq, at (ISO, ms), actor, action, project_id,
//                                  environment, subject, reason, canonical JSON of detail, prev_hash]) )
//
// canonical JSON = JSON with object keys sorted (by UTF-16 code units) at every depth and no
// whitespace; null stands for an absent field. The genesis entry (seq 1) has 64 zeros as prev_hash.
//
// What the chain cannot show on its own: entries cut off at the end (keep the head hash
// somewhere else to catch that), and a chain rewritten from the tampered entry on by someone
// who can write to the database and recompute every hash after it.
import { createHash } from 'node:crypto';
import { cleanText, type Db } from './db.js';

/** What gets audited. Add new actions here so they stay greppable and typed. */
export const AUDIT_ACTIONS = [
  'release.created',
  'release.waiting',
  'release.step',
  'release.promoted',
  'release.succeeded',
  'release.failed',
  'release.aborted',
  'release.rolled_back',
  'release.approved',
  'freeze.override',
  'secret.set',
  'secret.deleted',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditInput {
  /** A user name, 'pipeline', 'controller', ... */
  actor: string;
  /** One of AUDIT_ACTIONS, or a new one (add it to the list). */
  action: AuditAction | (string & {});
  projectId?: number | null;
  environment?: string | null;
  /** What the action is about: a release id, a secret name, ... */
  subject?: string | null;
  reason?: string | null;
  /** Any JSON object; stored and hashed in canonical form (sorted keys). */
  detail?: Record<string, unknown>;
  /** Default: the time the entry is appended (taken under the lock, so times never go back). */
  at?: Date;
}

export interface AuditEntry {
  seq: number;
  at: Date;
  actor: string;
  action: string;
  projectId: number | null;
  environment: string | null;
  subject: string | null;
  reason: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export type AuditProblem = 'hash mismatch' | 'broken link' | 'gap in sequence';

export type AuditVerification =
  | { ok: true; entries: number }
  | {
      ok: false;
      /** Entries checked and found intact before the first bad one. */
      entries: number;
      /** For a gap, seq is the first missing entry. */
      firstBad: { seq: number; problem: AuditProblem };
    };

interface AuditRow {
  seq: number;
  at: Date;
  actor: string;
  action: string;
  project_id: number | null;
  environment: string | null;
  subject: string | null;
  reason: string | null;
  detail: unknown;
  prev_hash: string;
  hash: string;
}

// Keyed by schema, like the migrations' lock: stores in different schemas of one server do not
// wait for each other.
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('ferry.audit:' || current_schema()))`;

/**
 * Appends one entry and returns it. Serialised across server replicas by a transaction-scoped
 * advisory lock, so concurrent appends never fork the chain.
 *
 * `db` may be a transaction handle (db.transaction nests as a savepoint): the entry then commits
 * or rolls back with the caller's transaction, and the lock is held until that transaction ends,
 * so call this as the LAST statement of a transaction (holding the audit lock while waiting for
 * row locks would serialise unrelated work and can deadlock with another appender). The caller's
 * transaction must be READ COMMITTED (PostgreSQL's default): a REPEATABLE READ snapshot taken
 * before the lock would not see the last entry, and the insert would fail on its seq.
 */
export async function appendAudit(db: Db, input: AuditInput): Promise<AuditEntry> {
  return db.transaction(async (tx) => {
    await tx.query(LOCK_SQL);
    const [last] = await tx.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    const entry: Omit<AuditEntry, 'hash'> = {
      seq: last ? Number(last.seq) + 1 : 1,
      at: new Date((input.at ?? new Date()).getTime()),
      actor: cleanText(input.actor),
      action: cleanText(input.action),
      projectId: input.projectId ?? null,
      environment: nullableText(input.environment),
      subject: nullableText(input.subject),
      reason: nullableText(input.reason),
      // The stored value is what verify will read back: normalise it the way jsonb will.
      detail: JSON.parse(canonicalJson(input.detail ?? {})) as Record<string, unknown>,
      prevHash: last ? last.hash : GENESIS_HASH,
    };
    const hash = auditHash(entry);
    await tx.query(
      `INSERT INTO audit_log (seq, at, actor, action, project_id, environment, subject, reason, detail, prev_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)`,
      [entry.seq, entry.at.toISOString(), entry.actor, entry.action, entry.projectId, entry.environment, entry.subject, entry.reason, canonicalJson(entry.detail), entry.prevHash, hash],
    );
    return { ...entry, hash };
  });
}

/** The hash of an entry from its fields and prev_hash. */
export function auditHash(e: Omit<AuditEntry, 'hash'>): string {
  const fields = [
    'ferry-audit-v1',
    e.seq,
    e.at.toISOString(),
    e.actor,
    e.action,
    e.projectId,
    e.environment,
    e.subject,
    e.reason,
    canonicalJson(e.detail),
    e.prevHash,
  ];
  return createHash('sha256').update(JSON.stringify(fields), 'utf8').digest('hex');
}

/** JSON with sorted object keys and no whitespace; strings cleaned as PostgreSQL will store them
 * (no NUL, no lone surrogates); undefined members dropped as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(v: unknown): unknown {
  if (typeof v === 'string') return cleanText(v);
  if (v === null || typeof v !== 'object') return v;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return sortKeys((v as { toJSON: () => unknown }).toJSON());
  if (Array.isArray(v)) return v.map((x) => (x === undefined || typeof x === 'function' ? null : sortKeys(x)));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    out[cleanText(k)] = sortKeys(x);
  }
  return out;
}

function nullableText(s: string | null | undefined): string | null {
  return s === undefined || s === null ? null : cleanText(s);
}

function toEntry(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    at: r.at instanceof Date ? r.at : new Date(r.at as unknown as string),
    actor: r.actor,
    action: r.action,
    projectId: r.project_id === null ? null : Number(r.project_id),
    environment: r.environment,
    subject: r.subject,
    reason: r.reason,
    detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

const COLUMNS = 'seq, at, actor, action, project_id, environment, subject, reason, detail, prev_hash, hash';

/**
 * Recomputes the chain from the first entry, a page at a time, and stops at the first entry
 * that does not hold: a seq that is not the one expected (an entry removed: 'gap in sequence',
 * naming the missing seq), a prev_hash that is not the previous entry's hash ('broken link'), or
 * a hash that is not the hash of the entry's own fields ('hash mismatch').
 */
export async function verifyAudit(db: Db, opts: { pageSize?: number } = {}): Promise<AuditVerification> {
  const pageSize = opts.pageSize ?? 1000;
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let entries = 0;
  for (;;) {
    const rows = await db.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2`, [expectedSeq, pageSize]);
    for (const row of rows) {
      const e = toEntry(row);
      if (e.seq !== expectedSeq) return { ok: false, entries, firstBad: { seq: expectedSeq, problem: 'gap in sequence' } };
      if (e.prevHash !== prevHash) return { ok: false, entries, firstBad: { seq: e.seq, problem: 'broken link' } };
      if (auditHash(e) !== e.hash) return { ok: false, entries, firstBad: { seq: e.seq, problem: 'hash mismatch' } };
      entries++;
      expectedSeq++;
      prevHash = e.hash;
    }
    if (rows.length < pageSize) break;
  }
  // Entries with a seq below 1 can only have been inserted by hand.
  const [stray] = await db.query<{ seq: number }>('SELECT seq FROM audit_log WHERE seq < 1 ORDER BY seq LIMIT 1');
  if (stray) return { ok: false, entries, firstBad: { seq: Number(stray.seq), problem: 'gap in sequence' } };
  return { ok: true, entries };
}

export interface ListAuditOptions {
  environment?: string;
  projectId?: number;
  /** Newest first; at most this many. */
  limit: number;
  /** Only entries older than this one (the next page: the last seq of the previous page). */
  beforeSeq?: number;
}

/** Entries newest first. */
export async function listAudit(db: Db, opts: ListAuditOptions): Promise<AuditEntry[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (opts.environment !== undefined) {
    params.push(opts.environment);
    where.push(`environment = $${params.length}`);
  }
  if (opts.projectId !== undefined) {
    params.push(opts.projectId);
    where.push(`project_id = $${params.length}`);
  }
  if (opts.beforeSeq !== undefined) {
    params.push(opts.beforeSeq);
    where.push(`seq < $${params.length}`);
  }
  params.push(Math.max(0, Math.floor(opts.limit)));
  const rows = await db.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map(toEntry);
}
