// The build: the service's files into dist/, with build.json saying which version and commit.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
mkdirSync('dist', { recursive: true });
cpSync('src', 'dist', { recursive: true });
const build = { version, commit: process.env.FERRY_COMMIT_SHORT_SHA ?? null };
writeFileSync('dist/build.json', JSON.stringify(build) + '\n');
console.log(`built sample-service ${version} (${build.commit ?? 'no commit'}) into dist/`);
