// Go: one binary built into bin/, `go test` for the tests (a JUnit report through
// go-junit-report when the project or this machine has it).
import { type JobPlan, type RepoFiles, type Stack, slug } from './types.js';

/** The main package to build: the root's, or one under cmd/ (the module's name first). */
function mainPackage(repo: RepoFiles, name: string): { pkg: string; bin: string } {
  const isMain = (dir: string) => repo.list(dir).some((f) => f.endsWith('.go') && !f.endsWith('_test.go') && /^package main\b/m.test(repo.read(dir === '.' ? f : `${dir}/${f}`) ?? ''));
  if (isMain('.')) return { pkg: '.', bin: name };
  const cmds = repo.list('cmd').filter((d) => isMain(`cmd/${d}`));
  const cmd = cmds.includes(name) ? name : cmds[0];
  return cmd ? { pkg: `./cmd/${cmd}`, bin: cmd } : { pkg: '.', bin: name };
}

function testJob(repo: RepoFiles, gomod: string, notes: string[]): JobPlan {
  // Go 1.24 tools (`tool` lines in go.mod) run with `go tool`; else the command on this machine.
  const asTool = /^\s*tool\s+github\.com\/jstemmer\/go-junit-report/m.test(gomod) || (/^tool\s*\(/m.test(gomod) && gomod.includes('github.com/jstemmer/go-junit-report'));
  if (!asTool && !repo.onPath('go-junit-report')) {
    notes.push('No go-junit-report here: the test job runs plain `go test`. With it (go install github.com/jstemmer/go-junit-report/v2@latest), `ferry init --force` adds a JUnit report.');
    return { comment: ['The tests (go-junit-report, once installed, would give Ferry a JUnit report of them).'], script: ['go test ./...'] };
  }
  const report = asTool ? 'go tool go-junit-report' : 'go-junit-report';
  return {
    comment: ['The tests, their output turned into a JUnit report by go-junit-report; the job fails', 'when they do, after the report is written.'],
    script: ['go test -v ./... 2>&1 | tee go-test.out || status=$?', `${report} < go-test.out > junit.xml`, 'exit ${status:-0}'],
    junit: 'junit.xml',
  };
}

export const go: Stack = {
  name: 'go',
  evidence: (repo) => (repo.has('go.mod') ? ['go.mod', 'go.sum'].filter((f) => repo.has(f)) : []),
  plan(repo) {
    const gomod = repo.read('go.mod') ?? '';
    // The module path's last element, without a major version suffix (example.com/shop/v2 -> shop).
    const module = /^module\s+(\S+)/m.exec(gomod)?.[1] ?? repo.dirName;
    const name = slug(module.split('/').filter((p) => !/^v\d+$/.test(p)).pop() ?? repo.dirName);
    const { pkg, bin } = mainPackage(repo, name);
    const notes: string[] = [];
    return {
      name,
      title: 'Go',
      build: { comment: ['Builds the service into bin/; the releases run that binary.'], script: [`go build -o bin/${bin} ${pkg}`], artifacts: ['bin/'] },
      test: testJob(repo, gomod, notes),
      start: { command: `./bin/${bin}`, comment: ['The binary the build job made; it must listen on $PORT.'] },
      notes,
    };
  },
};
