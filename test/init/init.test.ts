// `ferry init` on a sample repository of each stack (test/fixtures/stacks): what it detects, a
// ferry.yml that `ferry validate` accepts with the jobs and environments promised, the Node
// sample's pipeline run for real, and the rules about existing files, --force, --print, --stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { makeRepo, type TempRepo } from '../helpers/repo.js';
import { fixture } from '../helpers/paths.js';
import { ferry } from '../helpers/ferry-cli.js';
import { detect } from '../../src/init/detect.js';

/** A sample copied into a new git repository, committed. */
function sampleRepo(stack: string, opts: { branch?: string } = {}): TempRepo {
  const repo = makeRepo({}, opts);
  cpSync(fixture('stacks', stack), repo.dir, { recursive: true });
  repo.commit('the sample');
  return repo;
}

interface Pipeline {
  stages: string[];
  jobs: Record<string, { needs?: string[]; when?: string; script: string | string[]; reports?: { junit: string }; deploy?: { environment: string }; rules?: { if: string }[] }>;
  environments: Record<string, { target: { type: string; command: string; instances: number }; strategy: unknown; health: unknown; protection?: { approvals: number; branches: string[] } }>;
}

function pipelineOf(dir: string): Pipeline {
  return parse(readFileSync(join(dir, 'ferry.yml'), 'utf8')) as Pipeline;
}

const SAMPLES: { stack: string; detected: RegExp; start: RegExp; junit?: string }[] = [
  { stack: 'node', detected: /^Detected Node\.js \(npm\) from package\.json\.$/m, start: /^node src\/index\.js$/, junit: 'junit.xml' },
  { stack: 'python', detected: /^Detected Python from pyproject\.toml\.$/m, start: /^\.venv\/bin\/python -m inventory$/, junit: 'junit.xml' },
  { stack: 'go', detected: /^Detected Go from go\.mod\.$/m, start: /^\.\/bin\/pricing$/ },
  { stack: 'maven', detected: /^Detected Java \(Maven\) from pom\.xml\.$/m, start: /^java -jar target\/\*\.jar$/, junit: 'target/surefire-reports/*.xml' },
  { stack: 'rust', detected: /^Detected Rust from Cargo\.toml\.$/m, start: /^\.\/target\/release\/ledger$/ },
  { stack: 'docker', detected: /^Detected Docker from Dockerfile\.$/m, start: /^echo "ferry\.yml: write the command that starts your service/ },
];

for (const sample of SAMPLES) {
  test(`init on the ${sample.stack} sample: detected, valid, with the jobs and environments promised`, async () => {
    const repo = sampleRepo(sample.stack);
    const init = await ferry(['init'], repo.dir);
    assert.equal(init.code, 0, init.out);
    assert.match(init.stdout, sample.detected);
    assert.match(init.stdout, /^Wrote ferry\.yml: jobs build, test, scan, deploy-staging, deploy-production; environments staging \(rolling\) and production \(canary\)\.$/m);
    assert.match(init.stdout, /^ {2}ferry run +run the pipeline on this machine/m);
    const validate = await ferry(['validate'], repo.dir);
    assert.equal(validate.code, 0, validate.out);

    const p = pipelineOf(repo.dir);
    assert.deepEqual(Object.keys(p.jobs), ['build', 'test', 'scan', 'deploy-staging', 'deploy-production']);
    assert.deepEqual(p.jobs.scan!.script, 'ferry scan');
    assert.equal(p.jobs.test!.reports?.junit, sample.junit);
    assert.deepEqual(p.jobs['deploy-staging']!.deploy, { environment: 'staging' });
    assert.deepEqual(p.jobs['deploy-production']!.deploy, { environment: 'production' });
    assert.ok(p.jobs['deploy-production']!.needs!.includes('deploy-staging'));
    assert.deepEqual(p.jobs['deploy-production']!.rules, [{ if: '$FERRY_BRANCH == "main" && $FERRY_PIPELINE_SOURCE != "local"' }]);

    const { staging, production } = p.environments;
    assert.equal(staging!.target.type, 'process');
    assert.match(staging!.target.command, sample.start);
    assert.equal(production!.target.command, staging!.target.command);
    assert.equal(staging!.strategy, 'rolling');
    assert.deepEqual((production!.strategy as { canary: { steps: unknown[] } }).canary.steps, [{ weight: 10 }, { analysis: '1m' }, { weight: 50 }, { analysis: '1m' }]);
    const metrics = (production!.strategy as { canary: { analysis: { metrics: { name: string; source: string; condition: string }[] } } }).canary.analysis.metrics;
    assert.deepEqual(metrics.map((m) => [m.name, m.source]), [['errors', 'router'], ['latency', 'router']]);
    assert.equal(metrics[0]!.condition, 'error_rate < 0.01');
    assert.deepEqual(production!.protection, { approvals: 1, branches: ['main'] });
  });
}

test('the Node sample: `ferry run` passes; its deploy jobs are left to the server', async () => {
  const repo = sampleRepo('node');
  assert.equal((await ferry(['init'], repo.dir)).code, 0);
  repo.commit('ferry.yml from ferry init');

  // A local run has no delivery controller: the generated rules leave the deploy jobs out of it
  // (FERRY_PIPELINE_SOURCE is "local"), and everything else runs and passes.
  const all = await ferry(['run'], repo.dir);
  assert.equal(all.code, 0, all.out);
  assert.match(all.stdout, /^ {2}✓ build\s+passed/m);
  assert.match(all.stdout, /^ {2}✓ test\s+passed/m);
  assert.match(all.stdout, /^ {2}✓ scan\s+passed/m);
  assert.match(all.stdout, /✓ junit junit\.xml: 2 passed/);
  assert.match(all.stdout, /\[scan\] No secrets found/);
  assert.match(all.stdout, /3 jobs: 3 passed/);
  assert.doesNotMatch(all.stdout, /deploy-staging/);
});

test('Node with a Dockerfile: Node is the stack, the image a manual job that a run leaves alone', async () => {
  const repo = sampleRepo('node');
  repo.write('Dockerfile', 'FROM node:20-alpine\nCOPY . /app\nCMD ["node", "/app/src/index.js"]\n');
  repo.commit('a Dockerfile');
  const init = await ferry(['init'], repo.dir);
  assert.equal(init.code, 0, init.out);
  assert.match(init.stdout, /^Detected Node\.js \(npm\) from package\.json\.$/m);
  assert.match(init.stdout, /^Also found: Dockerfile: a manual docker-build job \(Ferry does not deploy containers yet\)\.$/m);
  const p = pipelineOf(repo.dir);
  assert.deepEqual(p.jobs['docker-build'], { stage: 'build', needs: [], when: 'manual', script: 'docker build -t greeter:$FERRY_COMMIT_SHORT_SHA .' });
  assert.match(p.environments.staging!.target.command, /^node /, 'releases run the service as a process');
  assert.equal((await ferry(['validate'], repo.dir)).code, 0);
});

test('an existing ferry.yml is kept (exit 3) unless --force; --print writes nothing and keeps stdout for the file', async () => {
  const repo = sampleRepo('node');
  repo.write('ferry.yml', 'mine:\n  script: echo mine\n');
  const refused = await ferry(['init'], repo.dir);
  assert.equal(refused.code, 3, refused.out);
  assert.match(refused.stderr, /ferry\.yml already exists; nothing written\. `ferry init --print` shows what init would write, `--force` replaces it\./);
  assert.equal(readFileSync(join(repo.dir, 'ferry.yml'), 'utf8'), 'mine:\n  script: echo mine\n');

  const printed = await ferry(['init', '--print'], repo.dir);
  assert.equal(printed.code, 0, printed.out);
  assert.match(printed.stdout, /^# The pipeline of greeter \(Node\.js \(npm\)\)/);
  assert.ok(parse(printed.stdout).environments.production, 'stdout is the file alone');
  assert.match(printed.stderr, /^Detected Node\.js/m);
  assert.match(printed.stderr, /^Printed ferry\.yml: jobs/m);
  assert.equal(readFileSync(join(repo.dir, 'ferry.yml'), 'utf8'), 'mine:\n  script: echo mine\n');

  const forced = await ferry(['init', '--force'], repo.dir);
  assert.equal(forced.code, 0, forced.out);
  assert.equal(readFileSync(join(repo.dir, 'ferry.yml'), 'utf8'), printed.stdout);
});

test('--stack overrides detection; an unknown one is a usage error; nothing known gives a generic file that fails until written', async () => {
  const repo = sampleRepo('node');
  const forced = await ferry(['init', '--stack', 'go'], repo.dir);
  assert.equal(forced.code, 0, forced.out);
  assert.match(forced.stdout, /^Stack: Go \(--stack go; none of its files are here\)\.$/m);
  assert.match(forced.stdout, /^Also found: node \(package\.json\); `ferry init --force --stack node` to use it instead\.$/m);
  assert.equal(pipelineOf(repo.dir).jobs.build!.script, `go build -o bin/${repo.dir.split('/').pop()!.toLowerCase()} .`);

  const unknown = await ferry(['init', '--stack', 'cobol', '--force'], repo.dir);
  assert.equal(unknown.code, 64);
  assert.match(unknown.stderr, /--stack cobol: unknown stack; one of node, python, go, maven, rust, docker, generic/);

  const empty = makeRepo({ 'README.md': '# notes\n' });
  const generic = await ferry(['init'], empty.dir);
  assert.equal(generic.code, 0, generic.out);
  assert.match(generic.stdout, /^Found no known stack \(looked for package\.json, .*\): a generic pipeline\.$/m);
  assert.equal((await ferry(['validate'], empty.dir)).code, 0);
  empty.commit('ferry.yml');
  const run = await ferry(['run', 'build'], empty.dir);
  assert.equal(run.code, 1, run.out);
  assert.match(run.stdout, /ferry\.yml: write the commands that build your project in the build job/);
});

test('the default branch is the repository\'s; a folder that is no repository is said so; a missing one exits 3', async () => {
  const repo = sampleRepo('rust', { branch: 'trunk' });
  assert.equal((await ferry(['init'], repo.dir)).code, 0);
  let p = pipelineOf(repo.dir);
  assert.deepEqual(p.environments.production!.protection!.branches, ['trunk']);
  assert.deepEqual(p.jobs['deploy-staging']!.rules, [{ if: '$FERRY_BRANCH == "trunk" && $FERRY_PIPELINE_SOURCE != "local"' }]);
  // On a feature branch of a clone, origin's HEAD names the default branch.
  repo.git('checkout', '--quiet', '-b', 'feature/x');
  repo.git('remote', 'add', 'origin', 'https://git.example.test/ledger.git');
  repo.git('symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/release');
  assert.equal((await ferry(['init', '--force'], repo.dir)).code, 0);
  p = pipelineOf(repo.dir);
  assert.deepEqual(p.environments.production!.protection!.branches, ['release']);

  const plain = mkdtempSync(join(tmpdir(), 'ferry-init-'));
  cpSync(fixture('stacks', 'go'), plain, { recursive: true });
  const init = await ferry(['init', plain], tmpdir());
  assert.equal(init.code, 0, init.out);
  assert.match(init.stdout, /git init && git add -A && git commit -m init\s+`ferry run` needs a repository with a commit/);
  assert.ok(existsSync(join(plain, 'ferry.yml')));

  const missing = await ferry(['init', join(plain, 'nope')], tmpdir());
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /nope: no such folder/);
  const help = await ferry(['init', '--help'], tmpdir());
  assert.match(help.stdout, /Examples:\n {2}ferry init /);
});

/** detect() on a folder of files (no git needed: the default branch falls back to main). */
async function planOf(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-detect-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return detect(dir);
}

test('Node details: lock files pick the package manager; scripts give build, lint, start; Jest and Vitest get JUnit reporters', async () => {
  const pkg = (o: object) => JSON.stringify({ name: '@acme/Shop', ...o });
  const yarn = await planOf({
    'package.json': pkg({ scripts: { build: 'tsc', test: 'jest', lint: 'eslint .', start: 'node dist/main.js' }, devDependencies: { jest: '29', 'jest-junit': '16' } }),
    'yarn.lock': '',
    'tsconfig.json': '{ "compilerOptions": { "outDir": "./out" } }',
  });
  assert.equal(yarn.plan.title, 'Node.js (yarn)');
  assert.equal(yarn.plan.name, 'shop');
  assert.deepEqual(yarn.plan.build.script, ['yarn install --frozen-lockfile', 'yarn build']);
  assert.deepEqual(yarn.plan.build.artifacts, ['out/', 'node_modules/']);
  assert.deepEqual(yarn.plan.test.script, ['yarn test --ci --reporters=default --reporters=jest-junit']);
  assert.equal(yarn.plan.test.junit, 'junit.xml');
  assert.deepEqual(yarn.plan.checks?.lint?.script, ['yarn lint']);
  assert.equal(yarn.plan.start.command, 'yarn start');

  const npm = await planOf({ 'package.json': pkg({ scripts: { test: 'vitest' }, dependencies: { fastify: '5' } }), 'package-lock.json': '{}', 'server.js': '' });
  assert.deepEqual(npm.plan.build.script, ['npm ci --cache .npm --prefer-offline --no-audit --no-fund', 'npm run build --if-present']);
  assert.deepEqual(npm.plan.build.cache, { key: 'npm', paths: ['.npm/'] });
  assert.deepEqual(npm.plan.test.script, ['npm test -- --reporter=default --reporter=junit --outputFile.junit=junit.xml']);
  assert.equal(npm.plan.start.command, 'node server.js');

  const none = await planOf({ 'package.json': pkg({ scripts: { test: 'echo "Error: no test specified" && exit 1' } }), 'pnpm-lock.yaml': '' });
  assert.equal(none.plan.title, 'Node.js (pnpm)');
  assert.match(String(none.plan.test.script), /^echo "ferry\.yml: add a test script/);
  assert.ok(none.plan.notes.some((n) => /no test script/.test(n)));
});

test('Python, Go and Maven details: where pytest comes from, the main package under cmd/, Spring Boot\'s port', async () => {
  const reqs = await planOf({ 'requirements.txt': 'flask==3.0\n', 'requirements-dev.txt': 'pytest==8\n', 'app.py': '' });
  assert.deepEqual(reqs.plan.build.script, ['python3 -m venv --copies .venv', '.venv/bin/python -m pip install -r requirements.txt']);
  assert.deepEqual(reqs.plan.test.script, ['.venv/bin/python -m pip install -r requirements-dev.txt', '.venv/bin/python -m pytest --junitxml=junit.xml']);
  assert.equal(reqs.plan.start.command, '.venv/bin/python app.py');
  const bare = await planOf({ 'setup.py': 'setup(name="billing")\n' });
  assert.equal(bare.plan.test.script[0], '.venv/bin/python -m pip install pytest');
  assert.equal(bare.plan.start.command, '.venv/bin/python -m billing');

  const go = await planOf({ 'go.mod': 'module github.com/acme/api/v2\n\ngo 1.22\n', 'cmd/api/main.go': 'package main\n', 'cmd/tool/main.go': 'package main\n', 'internal/x.go': 'package internal\n' });
  assert.equal(go.plan.name, 'api');
  assert.deepEqual(go.plan.build.script, ['go build -o bin/api ./cmd/api']);
  assert.equal(go.plan.start.command, './bin/api');
  assert.deepEqual(go.plan.test.script, ['go test ./...'], 'no go-junit-report: plain go test');
  const tool = await planOf({ 'go.mod': 'module example.com/pay\n\ngo 1.24\n\ntool github.com/jstemmer/go-junit-report/v2\n', 'main.go': 'package main\n' });
  assert.deepEqual(tool.plan.test.script, ['go test -v ./... 2>&1 | tee go-test.out || status=$?', 'go tool go-junit-report < go-test.out > junit.xml', 'exit ${status:-0}']);
  assert.equal(tool.plan.test.junit, 'junit.xml');
  assert.deepEqual(tool.plan.build.script, ['go build -o bin/pay .']);

  const spring = await planOf({ 'pom.xml': '<project><parent><artifactId>spring-boot-starter-parent</artifactId></parent><artifactId>shop</artifactId></project>', mvnw: '' });
  assert.equal(spring.plan.name, 'shop');
  assert.equal(spring.plan.title, 'Java (Maven, Spring Boot)');
  assert.deepEqual(spring.plan.build.script, ['./mvnw -B package -DskipTests']);
  assert.equal(spring.plan.start.command, 'java -jar target/*.jar --server.port=$PORT');

  // Several stacks: the first language wins, the others are listed.
  const both = await planOf({ 'package.json': '{}', 'pyproject.toml': '[project]\nname = "x"\n' });
  assert.equal(both.stack.name, 'node');
  assert.deepEqual(both.others, [{ name: 'python', evidence: ['pyproject.toml'] }]);
});
