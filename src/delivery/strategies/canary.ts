// Canary: the new version runs beside stable and gets a growing share of requests, step by step
// (weight, pause, analysis, approval), with the analysis watching its traffic from the first
// request it gets; at the end it becomes stable and the old instances are retired.
//
// Steps in the store: 0 = start the canary's instances; 1..N = the configured steps; N+1 = promote.
import type { CanarySpec } from '../../config/types.js';
import type { ReleaseRun } from '../release-run.js';
import type { Strategy } from './types.js';

export const canary: Strategy = {
  async run(run) {
    const spec = run.env.strategy as CanarySpec;
    if (!run.stable) return run.firstDeploy();
    if (run.step === 0 || !run.progress.instances?.length) {
      run.progress.instances = await run.launch(run.instanceCount);
      await run.advance(1, `canary ${run.version} ready beside ${run.stable.version}`);
    }
    await run.startAnalysis(spec.analysis);
    for (let i = run.step - 1; i < spec.steps.length; i++) {
      const s = spec.steps[i]!;
      // A full promotion skips what is left, except approvals: four eyes cannot be skipped.
      if (run.fullPromote && s.kind !== 'approval') continue;
      if (s.kind === 'weight') {
        // 100 is a step like the others: steps written after it (a last analysis at full
        // traffic) run with all requests on the new version.
        await run.setWeight(s.weight);
      } else if (s.kind === 'pause') {
        run.log(s.durationMs === undefined ? 'paused until promoted (ferry promote)' : `pause ${s.durationMs / 1000}s`);
        await run.hold({ durationMs: s.durationMs });
      } else if (s.kind === 'analysis') {
        run.log(`analysis for ${s.durationMs / 1000}s`);
        await run.hold({ durationMs: s.durationMs });
      } else {
        run.log('waiting for an approval (ferry approve, by someone other than the author)');
        await run.hold({ approvals: 1 });
      }
      await run.advance(i + 2, `step ${i + 2}/${spec.steps.length + 1}`);
    }
    await run.setWeight(100);
    await run.advance(spec.steps.length + 1, `promoted: ${run.version} is stable`);
    await run.target.retire(run.stable.instances);
  },

  async undo(run) {
    await run.revert();
  },
};
