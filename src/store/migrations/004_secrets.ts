// Secrets per project and environment, sealed with the server's master key (AES-256-GCM, see
// src/secrets/crypto.ts). The plaintext is never stored; `sealed` authenticates its own place
// (`project/environment/name`), so a value copied to another row does not decrypt.
export const sql = `
CREATE TABLE secrets (
  project_id  integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  -- '' = every job of the project; otherwise only deploy jobs to this environment
  environment text NOT NULL DEFAULT '',
  name        text NOT NULL,
  sealed      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  -- the name of the user who last wrote it
  updated_by  text,
  PRIMARY KEY (project_id, environment, name)
);
`;
