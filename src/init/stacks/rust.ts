// Rust: a release build with cargo; the releases run its binary.
import { type Stack, slug } from './types.js';

export const rust: Stack = {
  name: 'rust',
  evidence: (repo) => (repo.has('Cargo.toml') ? ['Cargo.toml', 'Cargo.lock'].filter((f) => repo.has(f)) : []),
  plan(repo) {
    const cargo = repo.read('Cargo.toml') ?? '';
    const pkg = cargo.split(/\n(?=\[)/).find((s) => /^\s*\[package\]/.test(s)) ?? '';
    const name = /^name\s*=\s*"([^"]+)"/m.exec(pkg)?.[1] ?? repo.dirName;
    const locked = repo.has('Cargo.lock') ? ' --locked' : '';
    return {
      name: slug(name),
      title: 'Rust',
      build: {
        comment: ['A release build; the releases run its binary.'],
        script: [`cargo build --release${locked}`],
        artifacts: [`target/release/${name}`],
      },
      test: {
        comment: ['The tests. cargo test writes no JUnit report on stable Rust; cargo-nextest does', '(`cargo nextest run` with a junit path in .config/nextest.toml, then `reports: { junit: ... }`).'],
        script: [`cargo test${locked}`],
      },
      start: { command: `./target/release/${name}`, comment: ['The binary the build job made; it must listen on $PORT.'] },
      notes: ['cargo test writes no JUnit report: with cargo-nextest the test job can give Ferry one.'],
    };
  },
};
