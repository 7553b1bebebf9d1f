// A rollback's redeploy of an earlier release: its instances start beside the current ones and
// take all traffic at once when ready, then the current ones are retired. No smoke checks, no
// analysis, no steps: the release already proved itself, and recovering should be quick.
import type { Strategy } from './types.js';

export const redeploy: Strategy = {
  async run(run) {
    if (!run.stable) return run.firstDeploy();
    if (!run.progress.instances?.length) {
      run.progress.instances = await run.launch(run.instanceCount);
      await run.save();
    }
    await run.setWeight(100);
    await run.advance(1, `${run.version} serves again; retiring ${run.stable.version}`);
    await run.target.retire(run.stable.instances);
  },

  async undo(run) {
    await run.revert();
  },
};
