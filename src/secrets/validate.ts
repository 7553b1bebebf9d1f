import { SecretError } from './errors.js';

export const MAX_SECRET_NAME_LENGTH = 128;
/** In UTF-8 bytes: a secret becomes an environment variable, and the kernel limits those. */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

const NAME = /^[A-Z_][A-Z0-9_]*$/;

/** Secrets are injected as environment variables, so their names follow the portable env var rules. */
export function validateSecretName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new SecretError('bad-name', 'a secret needs a name');
  }
  if (name.length > MAX_SECRET_NAME_LENGTH) {
    throw new SecretError('bad-name', `secret name is ${name.length} characters long; at most ${MAX_SECRET_NAME_LENGTH} are allowed`);
  }
  if (!NAME.test(name)) {
    throw new SecretError(
      'bad-name',
      `invalid secret name ${JSON.stringify(name)}: use upper-case letters, digits and underscores, not starting with a digit (like DATABASE_PASSWORD)`,
    );
  }
  // FERRY_* are the predefined variables of every job; a secret must not silently replace one.
  if (name.startsWith('FERRY_')) {
    throw new SecretError('bad-name', `invalid secret name ${JSON.stringify(name)}: names starting with FERRY_ are reserved for Ferry's own variables`);
  }
}

/** The message names the size only: the value itself must never reach an error or a log. */
export function validateSecretValue(value: string): void {
  if (typeof value !== 'string') throw new SecretError('bad-value', 'a secret value must be a string');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_VALUE_BYTES) {
    throw new SecretError('bad-value', `secret value is ${bytes} bytes; at most ${MAX_SECRET_VALUE_BYTES} bytes (64 KiB) are allowed`);
  }
  // An environment variable cannot hold a NUL byte: the job would fail to start much later.
  if (value.includes('\0')) throw new SecretError('bad-value', 'a secret value cannot contain a NUL character');
}
