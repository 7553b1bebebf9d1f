// One error type for everything secret-related, with a stable code the API and CLI can map to
// a status or exit code. Messages never carry a secret value or key material: they end up in
// logs and HTTP responses.
export type SecretErrorCode =
  | 'bad-name'
  | 'bad-value'
  | 'bad-master-key'
  | 'key-file-permissions'
  | 'key-file-unreadable'
  | 'bad-sealed-value'
  | 'decrypt-failed';

export class SecretError extends Error {
  constructor(
    readonly code: SecretErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}
