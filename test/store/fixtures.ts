// Realistic run event sequences for store tests.
import { randomUUID } from 'node:crypto';
import type { JobStateChanged, RunEvent } from '../../src/pipeline/events.js';
import type { TestReport } from '../../src/reports/types.js';

export interface RunFixture {
  pipelineId: string;
  jobIds: { build: string; unit: string; lint: string; deploy: string };
  events: RunEvent[];
  /** Events of playing the manual `deploy` job later (another process). */
  playDeploy: RunEvent[];
  t0: number;
}

export const failingReport: TestReport = {
  tests: 3,
  failures: 1,
  errors: 0,
  skipped: 1,
  timeMs: 42.5,
  cases: [
    { suite: 'math', classname: 'math', name: 'adds', timeMs: 1, status: 'passed' },
    { suite: 'math', classname: 'math', name: 'divides', timeMs: 2, status: 'failed', message: 'expected 2 got 3\u0000', details: 'at divide (math.js:3)' },
    { suite: 'math', classname: 'math', name: 'later', timeMs: 0, status: 'skipped' },
  ],
};

export const passingReport: TestReport = {
  tests: 3,
  failures: 0,
  errors: 0,
  skipped: 1,
  timeMs: 40,
  cases: [
    { suite: 'math', classname: 'math', name: 'adds', timeMs: 1, status: 'passed' },
    { suite: 'math', classname: 'math', name: 'divides', timeMs: 2, status: 'passed' },
    { suite: 'math', classname: 'math', name: 'later', timeMs: 0, status: 'skipped' },
  ],
};

/** build → unit (fails once, retried) and lint (allowed to fail) → deploy (manual). */
export function runFixture(project = '/home/dev/shop', t0 = Date.UTC(2025, 0, 1, 12, 0, 0)): RunFixture {
  const pipelineId = randomUUID();
  const id = (n: string) => `${pipelineId}:${n}`;
  const jobIds = { build: id('build'), unit: id('unit'), lint: id('lint'), deploy: id('deploy') };
  let t = t0;
  const at = (dt = 100) => (t += dt);
  const state = (job: keyof typeof jobIds, status: JobStateChanged['status'], attempt: number, extra: Partial<JobStateChanged> = {}): RunEvent => ({
    type: 'job.state',
    at: at(),
    pipelineId,
    jobId: jobIds[job],
    status,
    attempt,
    ...extra,
  });
  const log = (job: keyof typeof jobIds, attempt: number, text: string, stream: 'stdout' | 'stderr' | 'system' = 'stdout'): RunEvent => ({
    type: 'job.log',
    at: at(10),
    pipelineId,
    jobId: jobIds[job],
    attempt,
    stream,
    text,
  });
  const events: RunEvent[] = [
    {
      type: 'pipeline.started',
      at: t0,
      pipelineId,
      project,
      sha: 'a1b2c3d4e5f6',
      branch: 'main',
      tag: null,
      source: 'local',
      configText: 'jobs:\n  build:\n    script: make\n',
      variables: { NODE_ENV: 'test' },
      jobs: [
        { jobId: jobIds.build, name: 'build', stage: 'build', needs: [], when: 'on_success', allowFailure: false, spec: { script: ['make'] } },
        { jobId: jobIds.unit, name: 'unit', stage: 'test', needs: ['build'], when: 'on_success', allowFailure: false, spec: { script: ['npm test'], retry: 1 } },
        { jobId: jobIds.lint, name: 'lint', stage: 'test', needs: ['build'], when: 'on_success', allowFailure: true, spec: { script: ['npm run lint'] } },
        { jobId: jobIds.deploy, name: 'deploy', stage: 'deploy', needs: ['unit'], when: 'manual', allowFailure: false, spec: { deploy: { environment: 'staging' } } },
      ],
    },
    state('build', 'pending', 0),
    state('build', 'running', 1, { workspace: '/tmp/ws/build' }),
    log('build', 1, '$ make\n', 'system'),
    log('build', 1, 'compiling a'),
    log('build', 1, '.c\ncompiling b.c\n'),
    log('build', 1, 'warning: unused\n', 'stderr'),
    log('build', 1, 'done\n'),
    state('build', 'success', 1, { exitCode: 0 }),
    state('unit', 'pending', 0),
    state('lint', 'pending', 0),
    state('unit', 'running', 1),
    state('lint', 'running', 1),
    log('unit', 1, 'running tests\n'),
    log('lint', 1, 'lint: 3 problems\n'),
    log('unit', 1, '1 failing\n'),
    { type: 'job.report', at: at(), pipelineId, jobId: jobIds.unit, attempt: 1, kind: 'junit', file: 'junit.xml', report: failingReport },
    state('unit', 'failed', 1, { exitCode: 1, reason: 'script_failure' }),
    state('lint', 'failed', 1, { exitCode: 2, reason: 'script_failure', allowedFailure: true }),
    state('unit', 'pending', 2),
    state('unit', 'running', 2),
    log('unit', 2, 'running tests again\n'),
    log('unit', 2, 'all passing\n'),
    { type: 'job.report', at: at(), pipelineId, jobId: jobIds.unit, attempt: 2, kind: 'junit', file: 'junit.xml', report: passingReport },
    state('unit', 'success', 2, { exitCode: 0 }),
    state('deploy', 'manual', 0),
    { type: 'pipeline.finished', at: at(), pipelineId, status: 'manual' },
  ];
  const playDeploy: RunEvent[] = [
    state('deploy', 'pending', 0),
    state('deploy', 'running', 1),
    log('deploy', 1, 'deploying to staging\n'),
    state('deploy', 'success', 1, { exitCode: 0 }),
    { type: 'pipeline.finished', at: at(), pipelineId, status: 'success' },
  ];
  return { pipelineId, jobIds, events, playDeploy, t0 };
}
