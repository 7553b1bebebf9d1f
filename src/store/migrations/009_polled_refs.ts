// Polling remotes that send no webhooks: the branch and tag heads last seen of each polled
// project, and when it was last polled. Replicas share both: a project is polled by the one
// replica that moves polled_at forward, and a changed head starts a pipeline only in the
// transaction that moves its row from the sha seen to the new one (compare-and-set).
export const sql = `
CREATE TABLE polled_refs (
  project_id integer NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  -- refs/heads/<branch> or refs/tags/<tag>
  ref        text NOT NULL,
  -- the commit (a tag's peeled commit)
  sha        text NOT NULL,
  PRIMARY KEY (project_id, ref)
);
ALTER TABLE projects ADD COLUMN polled_at timestamptz;
`;
