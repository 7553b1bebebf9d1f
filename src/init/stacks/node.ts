// Node.js: package.json's scripts say how to build, test, lint and start; the lock file says
// which package manager installs.
import { type JobPlan, type RepoFiles, type Stack, slug, todoLine } from './types.js';

interface PackageJson {
  name?: string;
  main?: string;
  packageManager?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

type Manager = 'npm' | 'yarn' | 'pnpm';

/** The flags that make `node --test` print as usual and write junit.xml too. */
const NODE_TEST_JUNIT = '--test-reporter=spec --test-reporter-destination=stdout --test-reporter=junit --test-reporter-destination=junit.xml';

function manager(repo: RepoFiles, pkg: PackageJson): Manager {
  if (repo.has('pnpm-lock.yaml') || pkg.packageManager?.startsWith('pnpm@')) return 'pnpm';
  if (repo.has('yarn.lock') || pkg.packageManager?.startsWith('yarn@')) return 'yarn';
  return 'npm';
}

/** `npm run lint -- --fix` and its equivalents (yarn and pnpm pass extra arguments on as they are). */
function runScript(pm: Manager, script: string, args = ''): string {
  const base = pm === 'npm' ? (script === 'test' || script === 'start' ? `npm ${script}` : `npm run ${script}`) : `${pm} ${script}`;
  if (!args) return base;
  return pm === 'npm' ? `${base} -- ${args}` : `${base} ${args}`;
}

function installLine(repo: RepoFiles, pm: Manager, pkg: PackageJson): string {
  if (pm === 'pnpm') return 'pnpm install --frozen-lockfile --store-dir .pnpm-store';
  if (pm === 'yarn') {
    // Yarn 2+ (berry) renamed --frozen-lockfile.
    const berry = repo.has('.yarnrc.yml') || /^yarn@[2-9]/.test(pkg.packageManager ?? '');
    return berry ? 'yarn install --immutable' : 'yarn install --frozen-lockfile';
  }
  const locked = repo.has('package-lock.json') || repo.has('npm-shrinkwrap.json');
  return `npm ${locked ? 'ci' : 'install'} --cache .npm --prefer-offline --no-audit --no-fund`;
}

/** Where the build writes: Next.js's folder, tsconfig's outDir, the folder of "main", else dist/. */
function buildOutput(repo: RepoFiles, pkg: PackageJson, deps: Set<string>): string {
  if (deps.has('next')) return '.next/';
  const outDir = /"outDir"\s*:\s*"\.?\/?([^"/]+)/.exec(repo.read('tsconfig.json') ?? '')?.[1];
  if (outDir) return `${outDir}/`;
  const top = pkg.main?.replace(/^\.\//, '').split('/')[0];
  return top && ['dist', 'build', 'lib', 'out'].includes(top) ? `${top}/` : 'dist/';
}

function testJob(pm: Manager, scripts: Record<string, string>, deps: Set<string>, notes: string[]): JobPlan {
  const test = scripts.test;
  // `npm init` writes a test script that only fails: that is no test.
  if (!test || /no test specified/.test(test)) {
    notes.push('package.json has no test script: the test job fails until you add one (a `node --test` script gets a JUnit report).');
    return { comment: ['No test script in package.json yet: add one and run it here.'], script: [todoLine('add a test script to package.json and run it here')] };
  }
  const comment = ['The tests, with a JUnit report (failed tests show in `ferry show` and the job).'];
  if (/(^|[\s;&|])node\s+(?:[^;&|]*\s)?--test(\s|$)/.test(test) && !test.includes('--test-reporter')) {
    // Run as written in package.json, with the reporters added, rather than through npm:
    // arguments after `npm test --` would land after the test files, where node does not read them.
    return { comment: [...comment, `package.json's test script (${test}) with a JUnit reporter beside the usual output.`], script: [test.replace(/--test(?=\s|$)/, `--test ${NODE_TEST_JUNIT}`)], junit: 'junit.xml' };
  }
  if (deps.has('jest') || /\bjest\b/.test(test)) {
    if (deps.has('jest-junit')) return { comment, script: [runScript(pm, 'test', '--ci --reporters=default --reporters=jest-junit')], junit: 'junit.xml' };
    notes.push('Jest writes a JUnit report with jest-junit: add it to devDependencies and run `ferry init --force` again (or add `--reporters=default --reporters=jest-junit` yourself).');
    return { comment: ['The tests (add jest-junit to get a JUnit report Ferry shows).'], script: [runScript(pm, 'test', '--ci')] };
  }
  if (deps.has('vitest') || /\bvitest\b/.test(test)) {
    return { comment, script: [runScript(pm, 'test', '--reporter=default --reporter=junit --outputFile.junit=junit.xml')], junit: 'junit.xml' };
  }
  notes.push(`The test job runs \`${runScript(pm, 'test')}\` without a JUnit report: make it write one to junit.xml and Ferry shows the failed tests.`);
  return { comment: ['The tests. Make them write a JUnit report to junit.xml and add `reports: { junit: junit.xml }`.'], script: [runScript(pm, 'test')] };
}

function startCommand(repo: RepoFiles, pm: Manager, pkg: PackageJson, built: boolean): { command: string; comment: string[] } {
  if (pkg.scripts?.start) return { command: runScript(pm, 'start'), comment: [`package.json's start script (${pkg.scripts.start}).`] };
  const main = pkg.main?.replace(/^\.\//, '');
  // "main" may name a file the build writes.
  if (main && (repo.has(main) || built)) return { command: `node ${main}`, comment: ['package.json\'s "main" (no start script).'] };
  const found = ['server.js', 'index.js', 'app.js', 'src/server.js', 'src/index.js', 'src/app.js', 'server.mjs', 'index.mjs'].find((f) => repo.has(f));
  if (found) return { command: `node ${found}`, comment: [`No start script: ${found} looks like the entry point; check it.`] };
  return { command: 'node index.js', comment: ['Found no entry point: put the command that starts your server here (or a start script in package.json).'] };
}

export const node: Stack = {
  name: 'node',
  evidence: (repo) => (repo.has('package.json') ? ['package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml'].filter((f) => repo.has(f)) : []),
  plan(repo) {
    const pkg = (repo.json('package.json') ?? {}) as PackageJson;
    const pm = manager(repo, pkg);
    const scripts = pkg.scripts ?? {};
    const deps = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]);
    const notes: string[] = [];
    const hasBuild = typeof scripts.build === 'string';
    const out = buildOutput(repo, pkg, deps);

    const script: string[] = [];
    const buildComment = ['Installs the dependencies and builds. What it keeps (artifacts) reaches the jobs that', 'need it, and the releases: they run the commit with these files added.'];
    if (deps.size > 0) script.push(installLine(repo, pm, pkg));
    else buildComment.push('No dependencies in package.json, so nothing to install: add the install line when you add some.');
    if (hasBuild) script.push(runScript(pm, 'build'));
    else if (pm !== 'yarn') {
      script.push(`${pm} run build --if-present`);
      buildComment.push(`No build script yet: \`--if-present\` runs it once package.json has one (writing to ${out}).`);
    }
    if (script.length === 0) script.push('node --version');
    const artifacts = [...(hasBuild || deps.size === 0 ? [out] : []), ...(deps.size > 0 ? ['node_modules/'] : [])];
    const build: JobPlan = {
      comment: buildComment,
      script,
      artifacts,
      cache: deps.size > 0 && pm !== 'yarn' ? { key: pm, paths: [pm === 'npm' ? '.npm/' : '.pnpm-store/'] } : undefined,
    };
    const checks: Record<string, JobPlan> = {};
    if (scripts.lint) checks.lint = { comment: ["package.json's lint script."], script: [runScript(pm, 'lint')] };

    const title = `Node.js (${pm})`;
    return { name: slug(pkg.name ?? repo.dirName), title, build, test: testJob(pm, scripts, deps, notes), checks, start: startCommand(repo, pm, pkg, hasBuild), notes };
  },
};
