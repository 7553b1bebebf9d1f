// A strategy carries a release out step by step (resuming at `run.step` after a restart) and
// knows how to undo what it did. One file per strategy.
import type { ReleaseRun } from '../release-run.js';

export interface Strategy {
  /** Resolves when the release serves all traffic and the previous one is retired (or scheduled to be). */
  run(run: ReleaseRun): Promise<void>;
  /** Puts traffic back on the previous release and stops this one's instances. */
  undo(run: ReleaseRun): Promise<void>;
}
