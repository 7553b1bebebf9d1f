// The freeze gate: `protection.freeze` windows, each opening at the times of a cron expression
// (croner: 5 or 6 fields, in the window's IANA time zone or the server's) and lasting
// `durationMs` of elapsed time. A window is active at `now` when its most recent opening at or
// before `now` ends after `now`. Durations are real elapsed time: a 64h weekend freeze that
// opens at Friday 17:00 in Europe/Berlin and crosses the autumn DST change ends at Monday 08:00
// local time, not 09:00.
import { Cron } from 'croner';
import type { FreezeWindow } from '../../config/types.js';

export interface ActiveFreeze {
  /** The active window that ends last. */
  window: FreezeWindow;
  /** When deploys are allowed again: the end of this window, or later when other windows
   * overlap or follow it without a gap. */
  endsAt: Date;
}

const crons = new Map<string, Cron>();

function cronOf(w: Pick<FreezeWindow, 'cron' | 'timezone'>): Cron {
  const key = `${w.timezone ?? ''}\u0000${w.cron}`;
  let c = crons.get(key);
  if (!c) {
    // No callback: a pattern to compute with, never a scheduled timer.
    c = new Cron(w.cron, { timezone: w.timezone, mode: '5-or-6-parts' });
    if (crons.size > 200) crons.clear();
    crons.set(key, c);
  }
  return c;
}

/** Why a window's cron or time zone is unusable, or null: for the configuration's checks. */
export function freezeWindowError(w: Pick<FreezeWindow, 'cron' | 'timezone'>): string | null {
  try {
    const c = cronOf(w);
    if (!c.nextRun(new Date(0))) return `freeze cron \`${w.cron}\` never opens`;
    return null;
  } catch (err) {
    return `freeze cron \`${w.cron}\`${w.timezone ? ` (time zone ${w.timezone})` : ''}: ${(err as Error).message}`;
  }
}

/** The end of the opening of `w` that covers `t` (start <= t < end), or null. */
function coveringEnd(w: FreezeWindow, t: number): number | null {
  if (!(w.durationMs > 0)) return null;
  // previousRuns is strictly before its reference: 1 ms later makes an opening exactly at t count.
  const [start] = cronOf(w).previousRuns(1, new Date(t + 1));
  if (!start) return null;
  const end = start.getTime() + w.durationMs;
  return end > t ? end : null;
}

/**
 * The freeze in force at `now`, or null. Throws when a window's cron or time zone is invalid
 * (the configuration's checks should have refused it: see freezeWindowError).
 */
export function activeFreeze(windows: readonly FreezeWindow[], now: Date): ActiveFreeze | null {
  const t = now.getTime();
  let best: { window: FreezeWindow; end: number } | null = null;
  for (const w of windows) {
    const end = coveringEnd(w, t);
    if (end !== null && (!best || end > best.end)) best = { window: w, end };
  }
  if (!best) return null;
  // Windows that overlap or touch extend the freeze: follow them (a few dozen links at most, so a
  // window that is always active, like "0 0 * * *" for 25h, gives a far end rather than a loop).
  let end = best.end;
  for (let i = 0; i < 50; i++) {
    let next = end;
    for (const w of windows) {
      const e = coveringEnd(w, end);
      if (e !== null && e > next) next = e;
    }
    if (next === end) break;
    end = next;
  }
  return { window: best.window, endsAt: new Date(end) };
}
