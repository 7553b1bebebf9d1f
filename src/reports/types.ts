// Test results parsed from report files (JUnit XML today, SARIF later).

export type TestStatus = 'passed' | 'failed' | 'error' | 'skipped';

export interface TestCase {
  suite: string;
  classname: string;
  name: string;
  file?: string;
  timeMs: number;
  status: TestStatus;
  /** Failure or error message (short), when not passed. */
  message?: string;
  /** The failure's body: stack trace or assertion diff, trimmed to a sane size. */
  details?: string;
}

export interface TestReport {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  timeMs: number;
  cases: TestCase[];
}
