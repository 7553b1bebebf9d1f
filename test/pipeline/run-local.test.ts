// Pipelines run for real: temp git repositories, the real planner and scheduler, real bash
// processes. Each test states the GitLab-compatible behaviour it pins down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { repoWith, runPipeline } from './harness.js';
import { processesWith, waitFor } from '../helpers/procs.js';

test('needs form a DAG: each job starts only after the jobs it needs have passed', async () => {
  const repo = repoWith(`
jobs:
  a: { script: "sleep 0.2; echo a" }
  b: { needs: [a], script: "echo b" }
  c: { needs: [a], script: "sleep 0.1; echo c" }
  d: { needs: [b, c], script: "echo d" }
`);
  const r = await runPipeline(repo, { concurrency: 4 });
  assert.equal(r.status, 'success');
  assert.equal(r.order('running')[0], 'a');
  const before = (x: string, y: string) => assert.ok(r.at(x, 'success') < r.at(y, 'running'), `${x} passed before ${y} started`);
  before('a', 'b');
  before('a', 'c');
  before('b', 'd');
  before('c', 'd');
  assert.deepEqual(r.jobs, { a: 'success', b: 'success', c: 'success', d: 'success' });
});

test('without needs, stages run in order; `needs: []` starts at once', async () => {
  const repo = repoWith(`
stages: [build, test, deploy]
build1: { stage: build, script: "sleep 0.3" }
build2: { stage: build, script: "sleep 0.1" }
unit: { stage: test, script: "true" }
early: { stage: deploy, needs: [], script: "true" }
ship: { stage: deploy, script: "true" }
`);
  const r = await runPipeline(repo, { concurrency: 4 });
  assert.equal(r.status, 'success');
  assert.ok(r.at('early', 'running') < r.at('build1', 'success'), 'needs: [] ignores stage order');
  const before = (x: string, y: string) => assert.ok(r.at(x, 'success') < r.at(y, 'running'), `${x} passed before ${y} started`);
  before('build1', 'unit');
  before('build2', 'unit');
  before('unit', 'ship');
});

test('concurrency limits how many jobs run at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-conc-'));
  const repo = repoWith(`
jobs:
${[1, 2, 3, 4, 5, 6].map((i) => `  j${i}: { script: "echo start >> ${dir}/log; sleep 0.15; echo end >> ${dir}/log" }`).join('\n')}
`);
  const r = await runPipeline(repo, { concurrency: 2 });
  assert.equal(r.status, 'success');
  let live = 0;
  let max = 0;
  for (const line of readFileSync(join(dir, 'log'), 'utf8').trim().split('\n')) {
    live += line === 'start' ? 1 : -1;
    max = Math.max(max, live);
  }
  assert.equal(max, 2);
});

test('parallel matrix expands into one job per combination with its variables', async () => {
  const repo = repoWith(`
test:
  parallel:
    matrix:
      - OS: [linux, mac]
        NODE: ["18", "20"]
      - OS: windows
        NODE: "20"
  script: echo "os=$OS node=$NODE index=$FERRY_NODE_INDEX/$CI_NODE_TOTAL"
`);
  const r = await runPipeline(repo, { concurrency: 4 });
  assert.equal(r.status, 'success');
  const names = Object.keys(r.jobs).sort();
  assert.deepEqual(names, ['test: [linux, 18]', 'test: [linux, 20]', 'test: [mac, 18]', 'test: [mac, 20]', 'test: [windows, 20]']);
  assert.match(r.log('test: [mac, 20]'), /os=mac node=20 index=\d\/5/);
});

test('rules decide which jobs run and how, from predefined and pipeline variables', async () => {
  const yml = `
variables: { DEPLOY: "yes" }
always-here: { script: "true" }
main-only:
  rules: [{ if: '$FERRY_BRANCH == "main"' }]
  script: "true"
not-main:
  rules: [{ if: '$CI_COMMIT_BRANCH != "main" && $DEPLOY == "yes"' }]
  script: "true"
by-regex:
  rules:
    - if: '$CI_COMMIT_BRANCH =~ /^feat/'
      when: manual
    - when: never
  script: "true"
`;
  const onMain = await runPipeline(repoWith(yml));
  assert.deepEqual(Object.keys(onMain.jobs).sort(), ['always-here', 'main-only']);
  const onFeature = await runPipeline(repoWith(yml, {}, 'feature-x'));
  assert.deepEqual(Object.keys(onFeature.jobs).sort(), ['always-here', 'by-regex', 'not-main']);
  assert.equal(onFeature.jobs['by-regex'], 'manual');
  const overridden = await runPipeline(repoWith(yml, {}, 'feature-x'), { variables: { DEPLOY: 'no' } });
  assert.ok(!('not-main' in overridden.jobs), 'a trigger variable wins over ferry.yml');
});

test('retry runs a failed job again, up to max, and only for the listed reasons', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-retry-'));
  const repo = repoWith(`
flaky:
  retry: 2
  script:
    - echo x >> ${dir}/count
    - test $(wc -l < ${dir}/count) -ge 2
hopeless:
  retry: { max: 2, when: [job_execution_timeout] }
  script: "exit 3"
by-code:
  retry: { max: 1, exit_codes: [42] }
  script: "echo y >> ${dir}/code; exit 42"
`);
  const r = await runPipeline(repo, { concurrency: 3 });
  assert.equal(r.jobs.flaky, 'success');
  assert.deepEqual(r.states('flaky').filter((s) => s.status === 'running').map((s) => s.attempt), [1, 2]);
  assert.equal(r.jobs.hopeless, 'failed');
  assert.equal(r.states('hopeless').filter((s) => s.status === 'running').length, 1, 'script failures are not in when:');
  assert.equal(readFileSync(join(dir, 'code'), 'utf8').trim().split('\n').length, 2);
  assert.equal(r.status, 'failed');
});

test('timeout fails the job, kills its process group, and leaves no process behind', async () => {
  const marker = `ferry-job-timeout-${randomUUID()}`;
  const repo = repoWith(`
slow:
  timeout: 1s
  script:
    - bash -c 'exec -a ${marker} sleep 300' &
    - exec -a ${marker} sleep 300
`);
  const r = await runPipeline(repo);
  assert.equal(r.jobs.slow, 'failed');
  assert.equal(r.states('slow').at(-1)?.reason, 'job_execution_timeout');
  await waitFor(() => processesWith(marker).length === 0, 5000, 'no survivor');
});

test('cancel stops running jobs, cancels the waiting ones, and leaves no process', async () => {
  const marker = `ferry-job-cancel-${randomUUID()}`;
  const repo = repoWith(`
long: { script: "exec -a ${marker} sleep 300" }
after: { needs: [long], script: "true" }
`);
  const r = await runPipeline(repo, {
    onScheduler: (s) => {
      void waitFor(() => processesWith(marker).length > 0, 10_000, 'the job to start').then(() => s.cancel());
    },
  });
  assert.equal(r.status, 'canceled');
  assert.equal(r.jobs.long, 'canceled');
  assert.equal(r.jobs.after, 'canceled');
  await waitFor(() => processesWith(marker).length === 0, 5000, 'no survivor');
});

test('allow_failure: the failure is shown but the pipeline passes and dependents run', async () => {
  const repo = repoWith(`
stages: [test, deploy]
lint: { stage: test, allow_failure: true, script: "exit 1" }
picky: { stage: test, allow_failure: { exit_codes: [3] }, script: "exit 3" }
ship: { stage: deploy, script: "true" }
`);
  const r = await runPipeline(repo);
  assert.equal(r.status, 'success');
  assert.equal(r.jobs.lint, 'failed');
  assert.equal(r.states('lint').at(-1)?.allowedFailure, true);
  assert.equal(r.states('picky').at(-1)?.allowedFailure, true);
  assert.equal(r.jobs.ship, 'success');
});

test('a failure skips what follows, runs on_failure and always jobs', async () => {
  const repo = repoWith(`
stages: [build, test, cleanup]
build: { stage: build, script: "exit 1" }
unit: { stage: test, script: "true" }
report: { stage: cleanup, when: on_failure, script: "echo reporting" }
tidy: { stage: cleanup, when: always, script: "true" }
`);
  const r = await runPipeline(repo);
  assert.equal(r.status, 'failed');
  assert.deepEqual(r.jobs, { build: 'failed', unit: 'skipped', report: 'success', tidy: 'success' });
});

test('artifacts pass from a job to the jobs that need it, and only to them', async () => {
  const repo = repoWith(`
build:
  script: [mkdir -p dist, echo built-$FERRY_COMMIT_SHORT_SHA > dist/app.txt, echo tmp > scratch.txt]
  artifacts: { paths: [dist/] }
use:
  needs: [build]
  script: [cat dist/app.txt, test ! -e scratch.txt]
no-artifacts:
  needs: [{ job: build, artifacts: false }]
  script: test ! -e dist/app.txt
unrelated:
  needs: []
  script: test ! -e dist/app.txt
`);
  const r = await runPipeline(repo);
  assert.equal(r.status, 'success', JSON.stringify(r.jobs));
  assert.match(r.log('use'), new RegExp(`built-${r.ctx.commit.sha.slice(0, 8)}`));
});

test('cache is saved by one pipeline and restored by the next, keyed with variables', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  const repo = repoWith(`
deps:
  cache: { key: "deps-$FERRY_COMMIT_REF_SLUG", paths: [.deps/] }
  script:
    - if [ -f .deps/installed ]; then echo CACHE-HIT; else echo CACHE-MISS; mkdir -p .deps; date > .deps/installed; fi
`);
  const first = await runPipeline(repo, { home });
  assert.match(first.log('deps'), /CACHE-MISS/);
  assert.match(first.log('deps'), /Saved cache deps-main/);
  const second = await runPipeline(repo, { home });
  assert.match(second.log('deps'), /Restored cache deps-main/);
  assert.match(second.log('deps'), /CACHE-HIT/);
});

test('each job gets a clean workspace of the commit, with git available', async () => {
  const repo = repoWith(
    `
a: { script: [echo dirty > extra.txt, "git log -1 --format=%s"] }
b: { needs: [a], script: [test ! -e extra.txt, cat tracked.txt] }
`,
    { 'tracked.txt': 'from the commit' },
  );
  repo.write('tracked.txt', 'uncommitted edit');
  const r = await runPipeline(repo);
  assert.equal(r.status, 'success', r.log('b'));
  assert.match(r.log('a'), /initial/);
  assert.match(r.log('b'), /from the commit/);
  const dirty = await runPipeline(repo, { dirty: true });
  assert.match(dirty.log('b'), /uncommitted edit/);
});

test('predefined variables carry the commit under Ferry and GitLab names', async () => {
  const repo = repoWith(`
show:
  variables: { GREETING: "hi from $CI_PROJECT_NAME" }
  script: echo "sha=$FERRY_COMMIT_SHA ci=$CI_COMMIT_SHA branch=$FERRY_BRANCH ref=$CI_COMMIT_REF_NAME source=$FERRY_PIPELINE_SOURCE job=$CI_JOB_NAME greet=$GREETING"
`);
  const r = await runPipeline(repo);
  const sha = r.ctx.commit.sha;
  assert.match(r.log('show'), new RegExp(`sha=${sha} ci=${sha} branch=main ref=main source=local job=show greet=hi from ferry-repo-`));
});

test('a manual job waits; playing it runs it and what needs it', async () => {
  const repo = repoWith(`
build: { script: "true" }
deploy: { needs: [build], when: manual, script: "echo deploying" }
verify: { needs: [deploy], script: "echo verified" }
`);
  const first = await runPipeline(repo);
  assert.equal(first.jobs.deploy, 'manual');
  assert.equal(first.jobs.verify, undefined, 'still waiting on the manual job');
  assert.equal(first.status, 'manual');
  const initial = new Map(first.ctx.plan.jobs.map((j) => [j.id, { status: (first.jobs[j.name] ?? 'created') as never, attempt: j.name === 'build' ? 1 : 0, allowedFailure: false }]));
  const played = await runPipeline(repo, { ctx: first.ctx, initial, play: ['deploy'] });
  assert.equal(played.status, 'success');
  assert.equal(played.jobs.deploy, 'success');
  assert.equal(played.jobs.verify, 'success');
  assert.equal(played.jobs.build, undefined, 'build is not run again');
});

test('JUnit reports named by a job are parsed and reported', async () => {
  const repo = repoWith(`
unit:
  script:
    - printf '%s' '<testsuite name="s" tests="2" failures="1"><testcase classname="c" name="ok" time="0.1"/><testcase classname="c" name="bad"><failure message="expected 1">trace</failure></testcase></testsuite>' > junit.xml
  reports: { junit: junit.xml }
`);
  const r = await runPipeline(repo);
  const rep = r.events.find((e) => e.type === 'job.report');
  assert.ok(rep && rep.type === 'job.report');
  assert.equal(rep.report.tests, 2);
  assert.equal(rep.report.failures, 1);
  assert.equal(rep.report.cases.find((c) => c.status === 'failed')?.message, 'expected 1');
});

test('after_script runs after a failure and cannot change the result', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-after-'));
  const repo = repoWith(`
j:
  script: "exit 2"
  after_script: ["echo status=$CI_JOB_STATUS > ${dir}/after", "exit 9"]
`);
  const r = await runPipeline(repo);
  assert.equal(r.jobs.j, 'failed');
  assert.equal(r.states('j').at(-1)?.exitCode, 2);
  assert.ok(existsSync(join(dir, 'after')));
  assert.equal(readFileSync(join(dir, 'after'), 'utf8').trim(), 'status=failed');
});

test('a deploy job fails plainly while there is no delivery controller, never passes silently', async () => {
  const repo = repoWith(`
build: { script: "true" }
production:
  needs: [build]
  deploy: { environment: production }
environments:
  production: { target: { command: node server.js } }
`);
  const r = await runPipeline(repo);
  assert.equal(r.jobs.build, 'success');
  assert.equal(r.jobs.production, 'failed');
  assert.equal(r.states('production').at(-1)?.reason, 'unmet_prerequisites');
  assert.match(r.log('production'), /delivery controller/);
  assert.equal(r.status, 'failed');
});

test('expired artifacts are not handed on, and are removed by the next run', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  const repo = repoWith(`
make:
  script: echo data > out.txt
  artifacts: { paths: [out.txt], expire_in: 1s }
wait:
  needs: [{ job: make, artifacts: false }]
  script: sleep 1.5
use:
  needs: [make, wait]
  script: test ! -e out.txt
`);
  const r = await runPipeline(repo, { home });
  assert.equal(r.jobs.use, 'success', r.log('use'));
  const dir = join(home, 'artifacts', r.ctx.pipelineId);
  assert.ok(existsSync(dir));
  await runPipeline(repo, { home });
  assert.deepEqual(readdirSync(dir), [], 'pruned by the next run');
});

test('cache policy: pull never saves, push never restores', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  const repo = repoWith(`
stages: [one, two]
seed:
  stage: one
  cache: { key: shared, paths: [c/], policy: push }
  script: [test ! -e c/v, mkdir -p c, echo seeded > c/v]
reader:
  stage: two
  cache: { key: shared, paths: [c/], policy: pull }
  script: [cat c/v, echo changed > c/v]
`);
  const first = await runPipeline(repo, { home });
  assert.equal(first.status, 'success', first.log('seed') + first.log('reader'));
  assert.doesNotMatch(first.log('seed'), /Restored cache/);
  assert.match(first.log('reader'), /seeded/);
  assert.doesNotMatch(first.log('reader'), /Saved cache/);
  // The second pipeline still sees what `seed` pushed, not the reader's change.
  const second = await runPipeline(repo, { home, concurrency: 1 });
  assert.match(second.log('reader'), /seeded/);
});
