// The per-job log limit (FERRY_LOG_LIMIT, `ferry server --log-limit`): how much of an attempt's
// log the server has accepted from its runner, and whether the log was cut at the limit.
export const sql = `
-- bytes (UTF-8) of runner output accepted for this attempt: the server's count, kept in the
-- store so that every replica enforces the same limit on one attempt
ALTER TABLE job_attempts ADD COLUMN log_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE job_attempts ADD COLUMN log_truncated boolean NOT NULL DEFAULT false;
-- of the job's current attempt, like its status
ALTER TABLE jobs ADD COLUMN log_truncated boolean NOT NULL DEFAULT false;
`;
