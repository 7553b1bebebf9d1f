// Counting test cases into a report. Kept apart from the XML parser so that code which only
// merges or shows reports (the terminal views) does not load the parser.
import type { TestCase, TestReport, TestStatus } from './types.js';

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export function summarize(cases: TestCase[], timeMs: number): TestReport {
  const count = (s: TestStatus) => cases.reduce((n, c) => n + (c.status === s ? 1 : 0), 0);
  return {
    tests: cases.length,
    failures: count('failed'),
    errors: count('error'),
    skipped: count('skipped'),
    timeMs: round3(timeMs),
    cases,
  };
}

export function mergeReports(reports: TestReport[]): TestReport {
  const cases = reports.flatMap((r) => r.cases);
  return summarize(cases, reports.reduce((s, r) => s + r.timeMs, 0));
}
