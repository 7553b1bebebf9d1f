// Secrets at rest: AES-256-GCM with a random IV per value and the value's place as associated
// data, so a ciphertext copied to another row (or another project) fails authentication.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { SecretError } from './errors.js';
import { validateSecretValue } from './validate.js';

export { SecretError, type SecretErrorCode } from './errors.js';
export { validateSecretName, validateSecretValue, MAX_SECRET_NAME_LENGTH, MAX_SECRET_VALUE_BYTES } from './validate.js';
export { loadMasterKey, parseMasterKey, type MasterKey } from './master-key.js';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== 32) {
    throw new SecretError('bad-master-key', 'the master key must be 32 bytes');
  }
}

/** `v1:<iv>:<tag>:<ciphertext>` (standard base64): the version leaves room for a new scheme or key rotation. */
export function encryptSecret(key: Buffer, plaintext: string, aad: string): string {
  checkKey(key);
  validateSecretValue(plaintext);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${VERSION}:${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${ciphertext.toString('base64')}`;
}

export function decryptSecret(key: Buffer, sealed: string, aad: string): string {
  checkKey(key);
  const parts = typeof sealed === 'string' ? sealed.split(':') : [];
  if (parts.length !== 4 || parts[0] !== VERSION || !parts.slice(1).every((p) => B64.test(p))) {
    const version = parts.length > 1 && /^v\d+$/.test(parts[0]) ? ` (format ${parts[0]})` : '';
    throw new SecretError('bad-sealed-value', `the stored secret for ${aad} is not in a format this version of Ferry reads${version}`);
  }
  const iv = Buffer.from(parts[1], 'base64');
  const tag = Buffer.from(parts[2], 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new SecretError('bad-sealed-value', `the stored secret for ${aad} is damaged (bad IV or tag length)`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(parts[3], 'base64')), decipher.final()]).toString('utf8');
  } catch {
    // OpenSSL's own message says nothing useful; what matters is the likely cause.
    throw new SecretError(
      'decrypt-failed',
      `cannot decrypt the secret for ${aad}: the master key differs from the one it was stored with, or the stored value was altered or copied from elsewhere`,
    );
  }
}

/** Identifies a key in logs and diagnostics ("which key is this server using?") without revealing it. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}
