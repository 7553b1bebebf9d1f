// Two things for a noisy job's log.
//
// Log text stored compressed by Ferry: `packed` holds the raw-deflate of a row's UTF-8 text, in
// base64, and `text` is then ''. Compressing in Node's thread pool, before the text reaches the
// database, takes the work off the server's event loop and hands the database a quarter (real
// logs) to a hundredth (repetitive ones) of the bytes: with PGlite, which runs on that loop,
// passing the text in was most of the cost. Short rows stay plain text. EXTERNAL: the database
// does not try to compress it again.
//
// Numbered batches: a runner has two batches of a job's log in flight at once and numbers them;
// `log_batch` is the last number recorded for the attempt, so that the server records them in
// order and a batch sent twice (its first request failed on the way back) once.
export const sql = `
ALTER TABLE job_logs ADD COLUMN packed text;
ALTER TABLE job_logs ALTER COLUMN packed SET STORAGE EXTERNAL;
ALTER TABLE job_attempts ADD COLUMN log_batch integer NOT NULL DEFAULT 0;
`;
