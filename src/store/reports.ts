// The test reports aggregate: per job attempt and report file, the counts and the failed cases.
import type { TestCase, TestReport } from '../reports/types.js';
import { toJson, type Db } from './db.js';

export interface NewReport {
  jobId: string;
  attempt: number;
  kind: string;
  file: string;
  report: TestReport;
}

export interface StoredReport {
  jobId: string;
  attempt: number;
  kind: string;
  file: string;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  timeMs: number;
  /** Failed and errored cases only. */
  failedCases: TestCase[];
}

export interface JobReports {
  jobId: string;
  jobName: string;
  stage: string;
  attempt: number;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  timeMs: number;
  failedCases: TestCase[];
  /** One per report file. */
  reports: StoredReport[];
}

const MAX_MESSAGE = 2_000;
const MAX_DETAILS = 8_000;
const MAX_KEPT_CASES = 500;

const trim = (s: string | undefined, n: number) => (s === undefined || s.length <= n ? s : `${s.slice(0, n)}…`);

/** The failed/errored cases worth keeping, their texts trimmed. */
export function keptCases(report: TestReport): TestCase[] {
  return report.cases
    .filter((c) => c.status === 'failed' || c.status === 'error')
    .slice(0, MAX_KEPT_CASES)
    .map((c) => ({ ...c, message: trim(c.message, MAX_MESSAGE), details: trim(c.details, MAX_DETAILS) }));
}

export async function insertReports(db: Db, reports: NewReport[]): Promise<void> {
  if (reports.length === 0) return;
  await db.query(
    `INSERT INTO test_reports (job_id, attempt, kind, file, tests, failures, errors, skipped, time_ms, cases)
     SELECT x.job_id, x.attempt, x.kind, x.file, x.tests, x.failures, x.errors, x.skipped, x.time_ms, x.cases
     FROM jsonb_to_recordset($1::jsonb) AS x(i int, job_id text, attempt int, kind text, file text, tests int, failures int,
                                            errors int, skipped int, time_ms double precision, cases jsonb)
     ORDER BY x.i`,
    [
      toJson(
        reports.map((r, i) => ({
          i,
          job_id: r.jobId,
          attempt: r.attempt,
          kind: r.kind,
          file: r.file,
          tests: r.report.tests,
          failures: r.report.failures,
          errors: r.report.errors,
          skipped: r.report.skipped,
          time_ms: r.report.timeMs,
          cases: keptCases(r.report),
        })),
      ),
    ],
  );
}

interface ReportRow {
  job_id: string;
  job_name: string;
  stage: string;
  attempt: number;
  kind: string;
  file: string;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  time_ms: number;
  cases: TestCase[];
}

const toStored = (r: ReportRow): StoredReport => ({
  jobId: r.job_id,
  attempt: r.attempt,
  kind: r.kind,
  file: r.file,
  tests: r.tests,
  failures: r.failures,
  errors: r.errors,
  skipped: r.skipped,
  timeMs: r.time_ms,
  failedCases: r.cases ?? [],
});

/**
 * A pipeline's test reports grouped per job (plan order), from each job's current attempt (or,
 * with `attempt: 'all'`, every attempt: then one entry per job and attempt).
 * Jobs without reports are absent.
 */
export async function getPipelineReports(db: Db, pipelineId: string, opts: { attempt?: 'current' | 'all' } = {}): Promise<JobReports[]> {
  const current = opts.attempt !== 'all';
  const rows = await db.query<ReportRow>(
    `SELECT r.job_id, j.name AS job_name, j.stage, r.attempt, r.kind, r.file, r.tests, r.failures, r.errors, r.skipped,
            r.time_ms, r.cases
     FROM test_reports r JOIN jobs j ON j.id = r.job_id
     WHERE j.pipeline_id = $1 ${current ? 'AND r.attempt = j.attempt' : ''}
     ORDER BY j.position, r.attempt, r.id`,
    [pipelineId],
  );
  const out: JobReports[] = [];
  for (const r of rows) {
    let last = out[out.length - 1];
    if (!last || last.jobId !== r.job_id || last.attempt !== r.attempt) {
      last = { jobId: r.job_id, jobName: r.job_name, stage: r.stage, attempt: r.attempt, tests: 0, failures: 0, errors: 0, skipped: 0, timeMs: 0, failedCases: [], reports: [] };
      out.push(last);
    }
    const s = toStored(r);
    last.reports.push(s);
    last.tests += s.tests;
    last.failures += s.failures;
    last.errors += s.errors;
    last.skipped += s.skipped;
    last.timeMs += s.timeMs;
    last.failedCases.push(...s.failedCases);
  }
  return out;
}

/** One job's reports for an attempt (default its current one). */
export async function getJobReports(db: Db, jobId: string, opts: { attempt?: number } = {}): Promise<StoredReport[]> {
  const rows = await db.query<ReportRow>(
    `SELECT r.job_id, j.name AS job_name, j.stage, r.attempt, r.kind, r.file, r.tests, r.failures, r.errors, r.skipped,
            r.time_ms, r.cases
     FROM test_reports r JOIN jobs j ON j.id = r.job_id
     WHERE r.job_id = $1 AND r.attempt = ${opts.attempt === undefined ? 'j.attempt' : '$2'}
     ORDER BY r.id`,
    opts.attempt === undefined ? [jobId] : [jobId, opts.attempt],
  );
  return rows.map(toStored);
}
