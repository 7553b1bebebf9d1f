// Nothing recognised: a pipeline of the right shape whose build and test jobs fail with a
// message until the person writes them, rather than passing without checking anything.
import { type Stack, todoLine } from './types.js';

export const generic: Stack = {
  name: 'generic',
  evidence: () => [],
  plan(repo) {
    return {
      name: repo.dirName,
      title: 'generic (no known stack)',
      build: { comment: ['Write your build here; list what it makes under artifacts.'], script: [todoLine('write the commands that build your project in the build job')], artifacts: ['dist/'] },
      test: { comment: ['Write your tests here; a JUnit report (reports: { junit: ... }) shows failed tests.'], script: [todoLine('write the commands that run your tests in the test job')] },
      start: { command: todoLine('write the command that starts your service on $PORT'), comment: ['The command that starts one instance of your service, listening on $PORT.'] },
      notes: ['The build and test jobs, and the start command of the environments, fail with a message until you write them.'],
    };
  },
};
