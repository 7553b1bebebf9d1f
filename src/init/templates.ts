// The ferry.yml `ferry init` writes: plain text, so each part carries a comment that says what
// it does and what to change. Scalars that may need quoting go through the yaml library.
import { stringify } from 'yaml';
import type { Detection } from './detect.js';
import type { JobPlan } from './stacks/types.js';

/** A scalar as YAML writes it: plain when it can be, quoted when it must. */
function scalar(s: string): string {
  return stringify(s, { lineWidth: 0 }).trimEnd();
}

function comments(lines: string[], indent: string): string[] {
  return lines.map((l) => `${indent}# ${l}`.trimEnd());
}

/** `key: item` for one item (where a single value is allowed), else a block list. */
function list(key: string, items: string[], indent: string, single = true): string[] {
  if (items.length === 1 && single) return [`${indent}${key}: ${scalar(items[0]!)}`];
  return [`${indent}${key}:`, ...items.map((i) => `${indent}  - ${scalar(i)}`)];
}

interface JobShape {
  stage: string;
  needs?: string[];
  when?: 'manual';
  onlyBranch?: string;
}

function job(name: string, j: JobPlan, shape: JobShape): string[] {
  const out = [...comments(j.comment, '  '), `  ${name}:`, `    stage: ${shape.stage}`];
  if (shape.needs) out.push(`    needs: [${shape.needs.join(', ')}]`);
  if (shape.when) out.push(`    when: ${shape.when}`);
  if (j.variables) out.push('    variables:', ...Object.entries(j.variables).map(([k, v]) => `      ${k}: ${scalar(v)}`));
  out.push(...list('script', j.script, '    '));
  if (j.cache) out.push(`    cache: { key: ${scalar(j.cache.key)}, paths: [${j.cache.paths.map(scalar).join(', ')}] }`);
  if (j.artifacts?.length) out.push('    artifacts:', ...list('paths', j.artifacts, '      ', false), '      expire_in: 1 week');
  if (j.junit) out.push('    reports:', `      junit: ${scalar(j.junit)}`);
  return [...out, ''];
}

function deployJob(name: string, environment: string, needs: string[], branch: string, comment: string[]): string[] {
  return [
    ...comments(comment, '  '),
    `  ${name}:`,
    `    stage: ${environment}`,
    `    needs: [${needs.join(', ')}]`,
    '    rules:',
    `      - if: ${stringify(`$FERRY_BRANCH == "${branch}" && $FERRY_PIPELINE_SOURCE != "local"`, { defaultStringType: 'QUOTE_SINGLE' }).trimEnd()}`,
    `    deploy: { environment: ${environment} }`,
    '',
  ];
}

export function renderFerryYml(d: Detection): string {
  const { plan, defaultBranch: branch } = d;
  const checks = Object.keys(plan.checks ?? {});
  const out: string[] = [
    `# The pipeline of ${plan.name} (${plan.title}), written by \`ferry init\`: build, test and scan every`,
    `# commit; release the commits of ${branch} to staging, then to production.`,
    '# `ferry validate` checks this file, `ferry run` runs it on this machine; committed, a Ferry server',
    "# runs it on every push. Jobs read like GitLab CI's; environments are described in Ferry's",
    '# docs/environments.md.',
    `stages: [build, test, staging, production]`,
    '',
    'jobs:',
    ...job('build', plan.build, { stage: 'build' }),
    ...job('test', plan.test, { stage: 'test', needs: ['build'] }),
  ];
  for (const name of checks) out.push(...job(name, plan.checks![name]!, { stage: 'test', needs: ['build'] }));
  out.push(
    ...job(
      'scan',
      {
        comment: [
          'Secrets committed by mistake (cloud keys, tokens, private keys) fail the pipeline. A false',
          'positive: `ferry-scan:allow` in a comment on its line, or its path in .ferry-scan-ignore.',
        ],
        script: ['ferry scan'],
      },
      { stage: 'test', needs: [] },
    ),
  );
  if (d.imageJob) out.push(...job('docker-build', d.imageJob, { stage: 'build', needs: [], when: 'manual' }));
  const gates = ['build', 'test', ...checks, 'scan'];
  out.push(
    ...deployJob('deploy-staging', 'staging', gates, branch, [
      'A deploy job releases the commit, with the artifacts of the jobs it needs, to an environment',
      "(below). `ferry server` carries releases out (its delivery controller and edge), so the rule",
      'leaves deploy jobs out of a local `ferry run`, which runs the rest; without it, a local run',
      'reports them as failed (never as deployed).',
    ]),
    ...deployJob('deploy-production', 'production', ['build', 'deploy-staging'], branch, ['Production, once staging took the same commit.']),
  );

  const command = scalar(plan.start.command);
  out.push(
    'environments:',
    '  # Each release replaces the instances one by one (rolling).',
    '  staging:',
    '    target:',
    '      type: process',
    ...comments(plan.start.comment, '      '),
    `      command: ${command}`,
    '      instances: 1',
    '    strategy: rolling',
    '    # An instance takes traffic once GET /healthz answers 2xx: serve it, or change the path.',
    '    health: { path: /healthz }',
    '    # port: 8080          # where staging answers (default: a free port the edge picks and keeps)',
    '',
    '  # A canary: a share of the users get the new version while the router compares its errors',
    "  # and latency with the stable version's; a failing metric rolls it back, at any step.",
    '  production:',
    '    target:',
    '      type: process',
    `      command: ${command}`,
    '      instances: 2',
    '    health: { path: /healthz }',
    '    strategy:',
    '      canary:',
    '        steps:',
    '          - weight: 10',
    '          - analysis: 1m',
    '          - weight: 50',
    '          - analysis: 1m',
    '        analysis:',
    '          # Every 10s. An interval with fewer than 20 requests is inconclusive, and more than 5',
    '          # inconclusive measurements fail the release: with little traffic, lengthen the',
    '          # interval or lower min_requests.',
    '          interval: 10s',
    '          metrics:',
    '            - { name: errors, source: router, condition: "error_rate < 0.01" }',
    '            - { name: latency, source: router, condition: "p99_ms < stable_p99_ms * 1.5 + 50" }',
    '    # Someone other than the change\'s author approves each release, and only this branch deploys.',
    '    protection:',
    '      approvals: 1',
    `      branches: [${scalar(branch)}]`,
  );
  return out.join('\n') + '\n';
}
