// A realistic run, as the scheduler emits it, with a fake clock; and a stream that collects output.
import { Writable } from 'node:stream';
import type { RunEvent, JobStatus, JobStateChanged } from '../../../src/pipeline/events.js';
import type { TestReport } from '../../../src/reports/types.js';

export class FakeStream extends Writable {
  chunks: string[] = [];
  columns?: number;
  rows?: number;
  isTTY?: boolean;
  constructor(opts: { columns?: number; rows?: number; isTTY?: boolean } = {}) {
    super();
    Object.assign(this, opts);
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }
  override write(chunk: unknown, ...rest: unknown[]): boolean {
    // Collect synchronously so tests can read right after onEvent.
    this.chunks.push(String(chunk));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** 2024-05-14 12:00:00.000 UTC */
export const T0 = Date.UTC(2024, 4, 14, 12, 0, 0, 0);

export class Clock {
  t = T0;
  now = () => this.t;
}

const P = 'a1b2c3d4-0000-4000-8000-000000000001';

const spec = (stageIndex: number, retryMax = 0) => ({ stageIndex, retry: { max: retryMax, when: ['always'], exitCodes: [] } });

export const unitReport: TestReport = {
  tests: 3,
  failures: 1,
  errors: 0,
  skipped: 1,
  timeMs: 812,
  cases: [
    { suite: 'cart', classname: 'test', name: 'adds items', timeMs: 3, status: 'passed' },
    {
      suite: 'cart',
      classname: 'test',
      name: 'computes the total',
      file: 'test/cart.test.mjs',
      timeMs: 5,
      status: 'failed',
      message: 'expected 41 to equal 42',
      details: 'AssertionError: expected 41 to equal 42\n    at TestContext.<anonymous> (test/cart.test.mjs:14:29)',
    },
    { suite: 'cart', classname: 'test', name: 'applies coupons', timeMs: 0, status: 'skipped', message: 'later' },
  ],
};

/**
 * build (success) -> unit (fails once, retried, fails again: 2 attempts), lint (allowed failure),
 * docs (skipped) -> deploy (manual). The pipeline fails. Logs arrive in chunks that split lines.
 */
export function failingRun(): RunEvent[] {
  const ev: RunEvent[] = [];
  let t = T0;
  const at = (ms: number) => (t = T0 + ms);
  const state = (ms: number, jobId: string, status: JobStatus, attempt: number, extra: Partial<JobStateChanged> = {}) =>
    ev.push({ type: 'job.state', at: at(ms), pipelineId: P, jobId, status, attempt, ...extra });
  const log = (ms: number, jobId: string, text: string, stream: 'stdout' | 'stderr' | 'system' = 'stdout', attempt = 1) =>
    ev.push({ type: 'job.log', at: at(ms), pipelineId: P, jobId, attempt, stream, text });

  ev.push({
    type: 'pipeline.started',
    at: at(0),
    pipelineId: P,
    project: '/home/dev/shop',
    sha: '4be1c0de9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c',
    branch: 'main',
    tag: null,
    source: 'local',
    configText: 'stages: [build, test, deploy]\n',
    variables: {},
    jobs: [
      { jobId: 'j-build', name: 'build', stage: 'build', needs: [], when: 'on_success', allowFailure: false, spec: spec(0) },
      { jobId: 'j-deploy', name: 'deploy', stage: 'deploy', needs: ['unit'], when: 'manual', allowFailure: false, spec: spec(2) },
      { jobId: 'j-unit', name: 'unit', stage: 'test', needs: ['build'], when: 'on_success', allowFailure: false, spec: spec(1, 1) },
      { jobId: 'j-lint', name: 'lint', stage: 'test', needs: ['build'], when: 'on_success', allowFailure: true, spec: spec(1) },
      { jobId: 'j-docs', name: 'docs', stage: 'test', needs: ['build'], when: 'on_success', allowFailure: false, spec: spec(1) },
    ],
  });
  for (const j of ['j-build', 'j-unit', 'j-lint', 'j-docs', 'j-deploy']) state(0, j, 'created', 0);
  state(1, 'j-build', 'pending', 1);
  state(5, 'j-build', 'running', 1);
  log(6, 'j-build', '$ npm run build\n', 'system');
  log(400, 'j-build', 'compiled 42 fi');
  log(650, 'j-build', 'les\nwrote dist/');
  state(1205, 'j-build', 'success', 1, { exitCode: 0 });

  state(1206, 'j-docs', 'skipped', 0);
  state(1207, 'j-unit', 'pending', 1);
  state(1207, 'j-lint', 'pending', 1);
  state(1210, 'j-unit', 'running', 1);
  state(1211, 'j-lint', 'running', 1);
  log(1220, 'j-unit', '$ npm test\n', 'system');
  log(1300, 'j-lint', '$ npm run lint\n', 'system');
  log(1500, 'j-lint', 'src/cart.ts:3:7  error  \'x\' is never used\n1 problem', 'stdout');
  state(1611, 'j-lint', 'failed', 1, { exitCode: 1, reason: 'script_failure', allowedFailure: true });
  log(2000, 'j-unit', 'TAP version 13\r\nnot ok 1 - computes', 'stdout', 1);
  log(2100, 'j-unit', ' the total\n', 'stdout', 1);
  log(2150, 'j-unit', 'Error: connect ECONNREFUSED 127.0.0.1:5432\n', 'stderr', 1);
  state(3010, 'j-unit', 'failed', 1, { exitCode: 1, reason: 'script_failure' });
  state(3010, 'j-unit', 'pending', 2);
  state(3020, 'j-unit', 'running', 2);
  log(3030, 'j-unit', '$ npm test\n', 'system', 2);
  for (let i = 1; i <= 25; i++) log(3100 + i, 'j-unit', `line ${i} of attempt 2\n`, 'stdout', 2);
  log(4000, 'j-unit', '\u001b[31mnot ok 2 - computes the total\u001b[39m\n', 'stdout', 2);
  log(4010, 'j-unit', '# fail 1', 'stdout', 2); // no trailing newline: flushed when the job ends
  ev.push({ type: 'job.report', at: at(4800), pipelineId: P, jobId: 'j-unit', attempt: 2, kind: 'junit', file: 'junit.xml', report: unitReport });
  state(4820, 'j-unit', 'failed', 2, { exitCode: 1, reason: 'script_failure', allowedFailure: false });
  state(4821, 'j-deploy', 'manual', 0);
  ev.push({ type: 'pipeline.finished', at: at(4830), pipelineId: P, status: 'failed' });
  return ev;
}

/** A small green run. */
export function passingRun(): RunEvent[] {
  return [
    {
      type: 'pipeline.started',
      at: T0,
      pipelineId: 'p2',
      project: '/p',
      sha: 'deadbeefcafe',
      branch: null,
      tag: 'v1.2.0',
      source: 'manual',
      configText: '',
      variables: {},
      jobs: [{ jobId: 'a', name: 'only', stage: 'test', needs: [], when: 'on_success', allowFailure: false, spec: {} }],
    },
    { type: 'job.state', at: T0 + 1, pipelineId: 'p2', jobId: 'a', status: 'running', attempt: 1 },
    { type: 'job.log', at: T0 + 2, pipelineId: 'p2', jobId: 'a', attempt: 1, stream: 'stdout', text: 'ok\n' },
    { type: 'job.state', at: T0 + 1801, pipelineId: 'p2', jobId: 'a', status: 'success', attempt: 1, exitCode: 0 },
    { type: 'pipeline.finished', at: T0 + 1802, pipelineId: 'p2', status: 'success' },
  ];
}
