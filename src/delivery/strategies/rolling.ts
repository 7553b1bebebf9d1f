// Rolling: instances of the old release are replaced by new ones in batches: up to `max_surge`
// new instances start (and must be ready) before old ones stop, and at most `max_unavailable`
// instances are out of service at any time. Traffic follows the instance counts (the router
// splits by the share of new instances), so the new version's figures are measured apart.
import type { RollingSpec } from '../../config/types.js';
import type { ReleaseRun } from '../release-run.js';
import type { Strategy } from './types.js';

function indexOf(id: string): number {
  return Number(/-(\d+)$/.exec(id)?.[1] ?? 0);
}

async function routeBoth(run: ReleaseRun, old: string[], fresh: string[]): Promise<void> {
  const total = old.length + fresh.length;
  // Nothing ready yet (max_unavailable took the last old instance): the route stays as it is.
  if (total === 0) return;
  if (old.length === 0 || !run.stable) return run.setWeight(100, fresh);
  if (fresh.length === 0) return run.route({ stable: { version: run.stable.version, instances: old } });
  await run.setWeight(Math.round((100 * fresh.length) / total), fresh);
}

export const rolling: Strategy = {
  async run(run) {
    const spec = run.env.strategy as RollingSpec;
    if (!run.stable) return run.firstDeploy();
    const n = run.instanceCount;
    const p = run.progress;
    p.instances ??= [];
    p.oldInstances ??= [...run.stable.instances];
    const surge = Math.max(0, spec.maxSurge);
    const unavailable = Math.max(0, spec.maxUnavailable);
    const batch = Math.max(1, surge + unavailable);
    while (p.instances.length < n || p.oldInstances.length > 0) {
      // Between batches, what people asked for: an abort or rollback stops the release here
      // (undo brings the old release back to full strength). A promotion has nothing to skip.
      await run.checkSignals();
      // Stop first what may be unavailable, start what the surge allows, then retire the rest
      // of the batch once the new ones are ready: never fewer than n - max_unavailable serving.
      const toStart = Math.min(batch, n - p.instances.length);
      const early = Math.min(unavailable, p.oldInstances.length, toStart > 0 ? toStart : p.oldInstances.length);
      if (early > 0) {
        const going = p.oldInstances.slice(0, early);
        p.oldInstances = p.oldInstances.slice(early);
        await routeBoth(run, p.oldInstances, p.instances);
        await run.target.retire(going);
      }
      if (toStart > 0) {
        const from = p.instances.reduce((m, id) => Math.max(m, indexOf(id)), 0) + 1;
        p.instances.push(...(await run.launch(toStart, from)));
        await run.save();
      }
      const late = toStart > 0 ? Math.min(p.oldInstances.length, toStart - early) : p.oldInstances.length;
      const going = p.oldInstances.slice(0, Math.max(0, late));
      p.oldInstances = p.oldInstances.slice(going.length);
      await routeBoth(run, p.oldInstances, p.instances);
      if (going.length) await run.target.retire(going);
      await run.advance(run.step + 1, `${p.instances.length}/${n} instances of ${run.version}, ${p.oldInstances.length} of ${run.stable.version} left`);
    }
  },

  async undo(run) {
    const p = run.progress;
    if (run.stable) {
      // Bring the old release back to full strength before taking traffic from the new one.
      const old = [...(p.oldInstances ?? run.stable.instances)];
      const missing = run.instanceCount - old.length;
      if (missing > 0) {
        const from = [...old, ...run.stable.instances].reduce((m, id) => Math.max(m, indexOf(id)), 0) + 1;
        run.log(`restarting ${missing} instance${missing === 1 ? '' : 's'} of ${run.stable.version}`);
        old.push(...(await run.target.launch(run.stable.release, missing, from)));
      }
      await run.target.route({ stable: { version: run.stable.version, instances: old } });
      run.log(`traffic: 100% back to ${run.stable.version}`);
      p.oldInstances = old;
    }
    const mine = [...new Set([...(p.instances ?? []), ...(await run.target.running(run.release))])];
    await run.target.retire(mine);
    p.instances = [];
    p.weight = 0;
    await run.save();
  },
};
