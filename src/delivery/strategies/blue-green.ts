// Blue-green: green (the new version) starts beside blue with no traffic, answers smoke checks
// on a preview port, then takes all traffic at once. Blue stays running for `keep_warm` so a
// rollback is a switch back, not a redeploy; with `analysis`, green's traffic is watched that
// long and a failure switches back.
//
// Steps: 0 = start green; 1 = smoke checks on the preview; 2 = switch; 3 = watch (analysis).
import type { BlueGreenSpec } from '../../config/types.js';
import { measureWeb, webCheckVerdict } from '../analysis/web.js';
import { ReleaseFailed, type ReleaseRun } from '../release-run.js';
import type { Strategy } from './types.js';

export const blueGreen: Strategy = {
  async run(run) {
    const spec = run.env.strategy as BlueGreenSpec;
    if (!run.stable) return run.firstDeploy();
    if (run.step === 0 || !run.progress.instances?.length) {
      run.progress.instances = await run.launch(run.instanceCount);
      await run.advance(1, `green ${run.version} ready beside blue ${run.stable.version}`);
    }
    if (run.step <= 1) {
      // A target without a preview (script) leaves green where its own system puts it: smoke
      // checks then need full URLs (the config refuses paths there), and a path fails clearly.
      const url = await run.target.preview(run.version, run.progress.instances);
      run.log(url ? `preview of ${run.version} at ${url}` : `no preview of ${run.version} on this target${spec.smoke.length ? ': smoke checks use their full URLs' : ''}`);
      for (const check of spec.smoke) {
        const m = await measureWeb(check, { environment: run.env.name, version: run.version, intervalMs: 0, newVersionUrl: url ?? undefined });
        const verdict = webCheckVerdict(check, m);
        if (!verdict.ok) {
          await run.target.closePreview();
          throw new ReleaseFailed(`smoke check ${check.method} ${check.url} failed: ${verdict.reason}`, { values: m.values });
        }
        run.log(`smoke check ${check.method} ${check.url}: ${m.values.status}`);
      }
      await run.target.closePreview();
      await run.advance(2, 'smoke checks passed');
    }
    if (run.step <= 2) {
      // The last moment an abort keeps users off green altogether.
      await run.checkSignals();
      await run.setWeight(100);
      run.progress.retireAt = Date.now() + spec.keepWarmMs;
      await run.advance(3, `switched: ${run.version} takes all traffic; ${run.stable.version} kept warm for ${spec.keepWarmMs / 1000}s`);
    }
    if (spec.analysis) {
      await run.startAnalysis(spec.analysis);
      await run.hold({ durationMs: spec.keepWarmMs });
      await run.target.retire(run.stable.instances);
    }
    // Without analysis the release is done now; the controller retires blue at retireAt.
  },

  async undo(run) {
    await run.revert();
  },
};
