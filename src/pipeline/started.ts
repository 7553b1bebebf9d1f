// The pipeline.started event of a planned pipeline, the same whether `ferry run` or the server
// starts it: what the store records and every view shows first.
import type { PipelineStarted } from './events.js';
import type { CommitInfo } from './git.js';
import type { Plan } from './plan.js';

export function pipelineStartedEvent(p: {
  pipelineId: string;
  project: string;
  commit: Pick<CommitInfo, 'sha' | 'branch' | 'tag'>;
  source: string;
  configText: string;
  variables: Record<string, string>;
  plan: Plan;
  number?: number;
}): PipelineStarted {
  return {
    type: 'pipeline.started',
    at: Date.now(),
    pipelineId: p.pipelineId,
    number: p.number,
    project: p.project,
    sha: p.commit.sha,
    branch: p.commit.branch,
    tag: p.commit.tag,
    source: p.source,
    configText: p.configText,
    variables: p.variables,
    jobs: p.plan.jobs.map((j) => ({
      jobId: j.id,
      name: j.name,
      stage: j.stage,
      needs: j.needs.map((n) => n.name),
      when: j.when,
      allowFailure: j.allowFailure !== false,
      spec: j,
    })),
  };
}
