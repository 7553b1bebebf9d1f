// Pipelines, jobs, attempts, logs and test reports: what a run produces.
// Later issues (server queue, releases, audit, ...) add their own numbered migrations.
export const sql = `
CREATE TABLE projects (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- a local checkout's absolute path, or a remote repository's URL
  path        text NOT NULL UNIQUE,
  name        text NOT NULL,
  -- the number given to this project's latest pipeline (numbers are assigned by bumping it)
  last_number integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pipelines (
  id          text PRIMARY KEY,
  project_id  integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  number      integer NOT NULL,
  sha         text NOT NULL,
  branch      text,
  tag         text,
  source      text NOT NULL,
  status      text NOT NULL,
  config_text text NOT NULL DEFAULT '',
  variables   jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz,
  CONSTRAINT pipelines_project_number UNIQUE (project_id, number)
);
CREATE INDEX pipelines_created_at ON pipelines (created_at DESC);
CREATE INDEX pipelines_project_branch ON pipelines (project_id, branch, number DESC);

CREATE TABLE jobs (
  id              text PRIMARY KEY,
  pipeline_id     text NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  -- the job's place in the plan, for listing jobs in a stable order
  position        integer NOT NULL,
  name            text NOT NULL,
  stage           text NOT NULL,
  needs           jsonb NOT NULL DEFAULT '[]',
  when_           text NOT NULL DEFAULT 'on_success',
  allow_failure   boolean NOT NULL DEFAULT false,
  spec            jsonb,
  status          text NOT NULL DEFAULT 'created',
  attempt         integer NOT NULL DEFAULT 0,
  exit_code       integer,
  failure_reason  text,
  allowed_failure boolean NOT NULL DEFAULT false,
  -- of the current attempt
  started_at      timestamptz,
  finished_at     timestamptz,
  workspace       text
);
CREATE INDEX jobs_pipeline ON jobs (pipeline_id, position);

CREATE TABLE job_attempts (
  job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  number      integer NOT NULL,
  status      text NOT NULL,
  exit_code   integer,
  reason      text,
  started_at  timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (job_id, number)
);

CREATE TABLE job_logs (
  -- global insertion order; a job's log is its rows ordered by seq
  seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id  text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  stream  text NOT NULL,
  at      timestamptz NOT NULL,
  text    text NOT NULL,
  -- consecutive output is stored as one row: [[offset in text, epoch ms], ...] keeps when each
  -- later piece arrived (the first piece's time is \`at\`), so every line keeps its timestamp
  marks   jsonb
);
CREATE INDEX job_logs_job ON job_logs (job_id, attempt, seq);

CREATE TABLE test_reports (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt    integer NOT NULL,
  kind       text NOT NULL,
  file       text NOT NULL,
  tests      integer NOT NULL,
  failures   integer NOT NULL,
  errors     integer NOT NULL,
  skipped    integer NOT NULL,
  time_ms    double precision NOT NULL,
  -- the failed and errored cases only (passed and skipped ones are counted, not kept)
  cases      jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX test_reports_job ON test_reports (job_id, attempt);
`;
