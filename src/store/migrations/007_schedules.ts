// Pipeline schedules: a project's pipelines started by cron (`ferry schedule add`). Server
// replicas on one PostgreSQL share them: a due schedule is fired by moving its next_run_at
// forward in the same transaction that records the pipeline, so exactly one replica does it.
export const sql = `
CREATE TABLE schedules (
  id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  -- croner syntax, 5 fields or 6 (with seconds)
  cron             text NOT NULL,
  -- the IANA time zone the cron is read in (the server's when the schedule was made, if not given)
  timezone         text NOT NULL,
  -- the branch (or tag) to run; null: the repository's HEAD
  branch           text,
  variables        jsonb NOT NULL DEFAULT '{}',
  description      text NOT NULL DEFAULT '',
  -- who made it: its pipelines are started in their name, as GitLab's run as the schedule's owner
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  next_run_at      timestamptz NOT NULL,
  -- the last slot fired, its pipeline, or why it made none (no ferry.yml at the branch, ...)
  last_run_at      timestamptz,
  last_pipeline_id text REFERENCES pipelines (id) ON DELETE SET NULL,
  last_error       text
);
CREATE INDEX schedules_due ON schedules (next_run_at);
CREATE INDEX schedules_project ON schedules (project_id, id);
`;
