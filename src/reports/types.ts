// Test results parsed from report files (JUnit XML today, SARIF later).

export type TestStatus = 'passed' | 'failed' | 'error' | 'skipped';

export interface TestCase {
  suite: string;
  classname: string;
  name: string;
  file?: string;
  /** Source line as the producer wrote it (PHPUnit: 1-based; pytest xunit1: 0-based). */
  line?: number;
  timeMs: number;
  status: TestStatus;
  /** Failure or error message (short), when not passed. */
  message?: string;
  /** The failure's body: stack trace or assertion diff, trimmed to a sane size. */
  details?: string;
  /** Failure type / exception class, when the producer gives one (`type` attribute). */
  type?: string;
  /** Passed only after a rerun (Surefire `<flakyFailure>`/`<flakyError>`). */
  flaky?: boolean;
  /** Captured `<system-out>` / `<system-err>`, trimmed like `details`. */
  stdout?: string;
  stderr?: string;
}

export interface TestReport {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  timeMs: number;
  cases: TestCase[];
}
