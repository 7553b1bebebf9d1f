// The four DORA figures of an environment's release history: how often changes reach it, how
// long a change takes from commit to serving, how many releases fail, and how long a failure
// lasts. Computed from release records alone (plus each commit's time), so any caller with the
// history (the demo's summary today; an API and the web page later) gets the same answers.
//
// Definitions, as DORA's "Accelerate State of DevOps" reports use them, mapped onto releases:
// - deployment frequency: releases that succeeded, per day of the window;
// - lead time for changes: commit time -> the release serving all traffic (finished), median;
// - change failure rate: releases that failed or were rolled back / releases that finished
//   (aborted ones are a person's decision, not a failure, and count in neither);
// - time to restore service: from a failed release starting to the stable version serving
//   everything again (its finish: Ferry's rollback is part of the release), median.
import type { ReleaseStatus } from '../store/releases.js';

export interface DoraRelease {
  sha: string;
  status: ReleaseStatus;
  startedAt: Date | string | null;
  finishedAt: Date | string | null;
}

export interface DoraFigures {
  /** Releases that succeeded. */
  deployments: number;
  /** Succeeded releases per day over the window (first release start to `now`), at least one hour long. */
  deploymentsPerDay: number;
  /** Median commit -> succeeded, null without a succeeded release whose commit time is known. */
  leadTimeMs: number | null;
  /** Failed or rolled back / finished (succeeded, failed, rolled back); null when none finished. */
  changeFailureRate: number | null;
  failures: number;
  /** Median start -> end of the failed releases, null without one. */
  timeToRestoreMs: number | null;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const ms = (d: Date | string | null): number | null => (d === null ? null : new Date(d).getTime());

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `commitTimes`: each release's commit time by sha (FERRY_COMMIT_TIMESTAMP, or git). */
export function doraFigures(releases: readonly DoraRelease[], commitTimes: ReadonlyMap<string, Date | string>, now: Date = new Date()): DoraFigures {
  const succeeded = releases.filter((r) => r.status === 'succeeded');
  const failed = releases.filter((r) => r.status === 'failed' || r.status === 'rolled_back');
  const starts = releases.map((r) => ms(r.startedAt)).filter((t): t is number => t !== null);
  // A window shorter than an hour would turn three releases in a minute into thousands a day.
  const windowMs = Math.max(HOUR, starts.length ? now.getTime() - Math.min(...starts) : 0);
  const leads = succeeded
    .map((r) => {
      const commit = commitTimes.get(r.sha);
      const end = ms(r.finishedAt);
      return commit === undefined || end === null ? null : end - new Date(commit).getTime();
    })
    .filter((x): x is number => x !== null && x >= 0);
  const restores = failed
    .map((r) => {
      const a = ms(r.startedAt);
      const b = ms(r.finishedAt);
      return a === null || b === null ? null : b - a;
    })
    .filter((x): x is number => x !== null && x >= 0);
  const finished = succeeded.length + failed.length;
  return {
    deployments: succeeded.length,
    deploymentsPerDay: (succeeded.length * DAY) / windowMs,
    leadTimeMs: median(leads),
    changeFailureRate: finished ? failed.length / finished : null,
    failures: failed.length,
    timeToRestoreMs: median(restores),
  };
}
