// What `ferry server` adds: people and their API tokens, runners and theirs, webhook
// deliveries seen (replay protection), and project settings.
export const sql = `
CREATE TABLE users (
  id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  -- viewer | developer | deployer | admin
  role       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
  id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id      integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text NOT NULL,
  -- sha256 of the token: tokens are 256-bit random values, so a fast hash is enough, and the
  -- token itself is never stored
  hash         text NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz
);

CREATE TABLE runners (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  hash         text NOT NULL UNIQUE,
  tags         jsonb NOT NULL DEFAULT '[]',
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz,
  -- what the runner said about itself at its last contact
  info         jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE webhook_deliveries (
  forge       text NOT NULL,
  delivery_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (forge, delivery_id)
);

ALTER TABLE projects ADD COLUMN webhook_secret text;
ALTER TABLE projects ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
`;
