// Delivery: releases of a commit to an environment (persisted state machines driven by the
// delivery controller), what they measured, who approved them, and the audit log of every change
// to an environment (a hash chain: each entry holds the hash of the one before).
export const sql = `
-- people may say who they are in commits: four eyes compares approvers with the change's author
ALTER TABLE users ADD COLUMN email text;

CREATE TABLE environments (
  project_id        integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  name              text NOT NULL,
  -- the release serving the environment now (its last succeeded one)
  stable_release_id text,
  -- the port its router was given by the edge, kept so the environment never moves
  router_port       integer,
  PRIMARY KEY (project_id, name)
);

CREATE TABLE releases (
  id              text PRIMARY KEY,
  project_id      integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  environment     text NOT NULL,
  -- 1, 2, 3 ... per environment
  number          integer NOT NULL,
  pipeline_id     text REFERENCES pipelines (id) ON DELETE SET NULL,
  job_id          text REFERENCES jobs (id) ON DELETE SET NULL,
  sha             text NOT NULL,
  branch          text,
  -- the change's author (commit) and who set the release going (user, or 'pipeline')
  author_email    text,
  created_by      text NOT NULL,
  -- the environment's configuration at that commit (EnvironmentConfig), and the release's files
  config          jsonb NOT NULL,
  files_dir       text,
  -- pending | waiting | progressing | succeeded | failed | rolled_back | aborted
  status          text NOT NULL,
  reason          text,
  -- the strategy's progress: current step, when it began, instances, weight, requests
  step            integer NOT NULL DEFAULT 0,
  step_started_at timestamptz,
  progress        jsonb NOT NULL DEFAULT '{}',
  -- the release that was stable when this one was created (what a rollback returns to)
  previous_id     text,
  -- set on a release made by 'ferry rollback': the release it redeploys
  redeploy_of     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  -- signals from people and alerts, kept apart from progress (which only the controller writes)
  promote_requested jsonb,
  abort_requested jsonb,
  -- which controller (server replica) drives it; taken over when the lease runs out
  owner           text,
  owner_expires_at timestamptz,
  CONSTRAINT releases_number UNIQUE (project_id, environment, number)
);
CREATE INDEX releases_active ON releases (created_at) WHERE status IN ('pending', 'waiting', 'progressing');
CREATE INDEX releases_env ON releases (project_id, environment, number DESC);

CREATE TABLE release_transitions (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  release_id text NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  at         timestamptz NOT NULL,
  from_status text,
  to_status  text NOT NULL,
  step       integer,
  actor      text NOT NULL,
  reason     text,
  detail     jsonb
);
CREATE INDEX release_transitions_release ON release_transitions (release_id, id);

CREATE TABLE release_measurements (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  release_id text NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  at         timestamptz NOT NULL,
  step       integer NOT NULL,
  metric     text NOT NULL,
  source     text NOT NULL,
  -- success | failure | inconclusive
  outcome    text NOT NULL,
  -- the values the condition saw (error_rate, p99_ms, result, ...)
  ivalues    jsonb NOT NULL,
  message    text
);
CREATE INDEX release_measurements_release ON release_measurements (release_id, id);

CREATE TABLE release_approvals (
  release_id text NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  user_name  text NOT NULL,
  at         timestamptz NOT NULL,
  comment    text,
  PRIMARY KEY (release_id, user_name)
);

-- Append-only. hash = sha256 over the entry's fields and prev_hash (see src/store/audit.ts);
-- 'ferry audit verify' recomputes the chain and names the first entry that does not match.
CREATE TABLE audit_log (
  seq         bigint PRIMARY KEY,
  at          timestamptz NOT NULL,
  actor       text NOT NULL,
  action      text NOT NULL,
  project_id  integer,
  environment text,
  subject     text,
  reason      text,
  detail      jsonb NOT NULL DEFAULT '{}',
  prev_hash   text NOT NULL,
  hash        text NOT NULL
);
`;
