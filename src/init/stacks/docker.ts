// A Dockerfile: beside a language, an extra job that builds the image by hand; alone, the build.
// Ferry does not deploy containers yet, so nothing here pretends to: the environments' command
// stays for the person to write.
import { type JobPlan, type RepoFiles, type Stack, slug, todoLine } from './types.js';

const FILES = ['Dockerfile', 'Containerfile'];

export function dockerfile(repo: RepoFiles): string | undefined {
  return FILES.find((f) => repo.has(f));
}

/** `docker build` of the commit, tagged with its short sha. */
function dockerBuild(file: string, image: string, comment: string[]): JobPlan {
  return { comment, script: [`docker build${file === 'Dockerfile' ? '' : ` -f ${file}`} -t ${image}:$FERRY_COMMIT_SHORT_SHA .`] };
}

/** Beside a language stack: the image, built by hand (a manual job). */
export function imageJob(file: string, image: string): JobPlan {
  return dockerBuild(file, image, [
    `The container image of ${file}, built when you ask: \`ferry play docker-build\`. Ferry does not`,
    'deploy containers yet: the environments below run the service as a process.',
  ]);
}

export const docker: Stack = {
  name: 'docker',
  evidence: (repo) => FILES.filter((f) => repo.has(f)),
  plan(repo) {
    const name = slug(repo.dirName);
    return {
      name,
      title: 'Docker',
      build: dockerBuild(dockerfile(repo) ?? 'Dockerfile', name, ['Builds the image. Ferry does not deploy containers yet: the image stays on this machine.']),
      test: { comment: ['Your tests: found no language to know how to run them.'], script: [todoLine('write the commands that run your tests in the test job')] },
      start: {
        command: todoLine('write the command that starts your service on $PORT (Ferry does not deploy containers yet)'),
        comment: ['Ferry runs processes, not containers (yet): the command that starts one instance on $PORT.'],
      },
      notes: ['Only a Dockerfile: the build job builds the image; write the test commands and the start command of the environments yourself.'],
    };
  },
};
