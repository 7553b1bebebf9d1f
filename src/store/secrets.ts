// The secrets aggregate: values sealed with the server's master key, per project and
// environment. Plaintext exists only in memory, on its way in (setSecret) or out to a job
// (jobSecrets); listings never include it. Sealing uses src/secrets/crypto.ts, a leaf library.
import { decryptSecret, encryptSecret, SecretError, validateSecretName, validateSecretValue } from '../secrets/crypto.js';
import type { Db } from './db.js';

/** '' is the environment of secrets every job of the project gets. */
export const EVERY_JOB = '';

const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SecretInfo {
  name: string;
  /** '' for every job, else the deploy environment it is limited to. */
  environment: string;
  createdAt: Date;
  updatedAt: Date;
  updatedBy: string | null;
}

/** What a sealed value authenticates: where it belongs. A ciphertext moved elsewhere fails. */
export function secretAad(projectId: number, environment: string, name: string): string {
  return `${projectId}/${environment}/${name}`;
}

export function validateEnvironment(environment: string): void {
  if (environment !== EVERY_JOB && !ENVIRONMENT.test(environment)) {
    throw new SecretError('bad-name', `invalid environment name ${JSON.stringify(environment)}: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit`);
  }
}

/** Creates or replaces a secret; `created` says which. Throws SecretError for a bad name, environment or value. */
export async function setSecret(
  db: Db,
  key: Buffer,
  s: { projectId: number; environment?: string; name: string; value: string; updatedBy?: string },
): Promise<{ created: boolean; updatedAt: Date }> {
  const environment = s.environment ?? EVERY_JOB;
  validateSecretName(s.name);
  validateEnvironment(environment);
  validateSecretValue(s.value);
  const sealed = encryptSecret(key, s.value, secretAad(s.projectId, environment, s.name));
  const [row] = await db.query<{ created: boolean; updated_at: Date }>(
    `INSERT INTO secrets (project_id, environment, name, sealed, updated_by) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (project_id, environment, name)
     DO UPDATE SET sealed = excluded.sealed, updated_by = excluded.updated_by, updated_at = now()
     RETURNING (xmax = 0) AS created, updated_at`,
    [s.projectId, environment, s.name, sealed, s.updatedBy ?? null],
  );
  return { created: row!.created, updatedAt: row!.updated_at };
}

/** Names and dates, never values, ordered by name then environment. */
export async function listSecrets(db: Db, projectId: number): Promise<SecretInfo[]> {
  const rows = await db.query<{ name: string; environment: string; created_at: Date; updated_at: Date; updated_by: string | null }>(
    'SELECT name, environment, created_at, updated_at, updated_by FROM secrets WHERE project_id = $1 ORDER BY name, environment',
    [projectId],
  );
  return rows.map((r) => ({ name: r.name, environment: r.environment, createdAt: r.created_at, updatedAt: r.updated_at, updatedBy: r.updated_by }));
}

export async function deleteSecret(db: Db, projectId: number, name: string, environment = EVERY_JOB): Promise<boolean> {
  const rows = await db.query('DELETE FROM secrets WHERE project_id = $1 AND environment = $2 AND name = $3 RETURNING name', [projectId, environment, name]);
  return rows.length > 0;
}

/**
 * The secrets a job gets, decrypted: the project's secrets for every job, plus, for a deploy
 * job, those of its environment (which win over a global one of the same name). Throws
 * SecretError ('decrypt-failed', ...) naming the secret, never its value, when one cannot be
 * decrypted: a job must not run with a secret silently missing.
 */
export async function jobSecrets(db: Db, key: Buffer | undefined, projectId: number, environment?: string): Promise<Record<string, string>> {
  const envs = environment ? [EVERY_JOB, environment] : [EVERY_JOB];
  const rows = await db.query<{ environment: string; name: string; sealed: string }>(
    // Global first, so that the environment's value of a name replaces it below.
    'SELECT environment, name, sealed FROM secrets WHERE project_id = $1 AND environment = ANY($2::text[]) ORDER BY (environment <> \'\'), name',
    [projectId, envs],
  );
  const out: Record<string, string> = {};
  if (rows.length === 0) return out;
  if (!key) throw new SecretError('bad-master-key', 'this server has no master key, so it cannot decrypt the project\'s secrets');
  for (const r of rows) out[r.name] = decryptSecret(key, r.sealed, secretAad(projectId, r.environment, r.name));
  return out;
}
