// The job queue of `ferry server`: ready jobs are leased by runners straight from the jobs table
// (FOR UPDATE SKIP LOCKED), a lease lasts while its runner heart-beats, and the attempt number
// fences late reports from a runner that lost its lease.
export const sql = `
ALTER TABLE jobs ADD COLUMN queued_at timestamptz;
ALTER TABLE jobs ADD COLUMN lease_owner text;
ALTER TABLE jobs ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
-- what the queue scans: ready jobs, oldest first; running jobs by lease deadline
CREATE INDEX jobs_ready ON jobs (queued_at, position) WHERE status = 'pending';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';

ALTER TABLE pipelines ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
`;
