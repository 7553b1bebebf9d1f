import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigIssue, JobConfig, PipelineConfig } from '../../src/config/types.js';

/** Parses text that must be valid; fails the test with the issues otherwise. */
export function ok(text: string): PipelineConfig {
  const { config, issues } = parseConfig(text, 'ferry.yml');
  assert.deepEqual(issues.map((i) => `${i.pos.line}:${i.pos.col} ${i.code} ${i.message}`), []);
  assert.ok(config);
  return config;
}

export function job(config: PipelineConfig, name: string): JobConfig {
  const j = config.jobs.find((x) => x.name === name);
  assert.ok(j, `job ${name} not found`);
  return j;
}

/** Parses text that must fail; returns its issues. */
export function bad(text: string): ConfigIssue[] {
  const { config, issues } = parseConfig(text, 'ferry.yml');
  assert.equal(config, null);
  assert.ok(issues.length > 0);
  return issues;
}

/** Strips common indentation so YAML can be written inline, indented with the test code. */
export function yml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = String.raw({ raw: strings.raw }, ...values).replace(/^\n/, '');
  const lines = raw.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** Asserts exactly one issue with this code, at line:col; returns it. */
export function one(issues: ConfigIssue[], code: string, line: number, col: number): ConfigIssue {
  const got = issues.map((i) => `${i.code}@${i.pos.line}:${i.pos.col}: ${i.message}`);
  const matching = issues.filter((i) => i.code === code);
  assert.equal(matching.length, 1, `expected one ${code}, got:\n${got.join('\n')}`);
  assert.equal(`${matching[0].pos.line}:${matching[0].pos.col}`, `${line}:${col}`, got.join('\n'));
  return matching[0];
}
