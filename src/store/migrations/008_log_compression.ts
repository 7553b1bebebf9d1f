// Log text compressed with lz4 where the server has it (PostgreSQL 14+ built with lz4, as
// Debian's and the official images are): about three times faster to store than the default
// pglz, for about the same size, which is most of the cost of ingesting a noisy job's log.
// Rows written before keep their compression. PGlite has no lz4: it keeps pglz.
export const sql = `
DO $$
BEGIN
  ALTER TABLE job_logs ALTER COLUMN text SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END
$$;
`;
