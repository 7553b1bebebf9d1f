// Pipeline schedules, the server's side: what a schedule may say (its cron and time zone are
// checked by the same functions as ferry.yml's freeze windows), and the loop that fires the due
// ones. Every replica runs the loop; the store decides which one fires a slot
// (src/store/schedules.ts takeSlot), in the transaction that records the pipeline, so a slot
// makes one pipeline however many replicas see it due. A replica that loses the race has only
// read the commit and planned for nothing.
//
// A slot missed while no server ran is fired once when one starts again, and the next time is
// counted from then: a server down for a night makes one pipeline, not one per missed slot.
import { Cron } from 'croner';
import { canonicalTimeZone, cronProblem } from '../config/environments.js';
import { ConfigError } from '../config/types.js';
import type { PipelineStarted } from '../pipeline/events.js';
import { NoPipelineError } from '../pipeline/plan.js';
import { getProject } from '../store/pipelines.js';
import { dueSchedules, msUntilNextDue, noteScheduledPipeline, takeSlot, type Schedule } from '../store/schedules.js';
import type { ServerContext } from './context.js';
import { BackgroundLoop } from './loop.js';
import { planPipeline, recordClaimed } from './trigger.js';

/** A schedule the API refuses (400), with a message that says how to write it. */
export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

const CRON_HINT = 'five fields (minute hour day-of-month month day-of-week), or six with seconds first, like "0 3 * * *" for 03:00 every day';

/** The server's own time zone: what a schedule without one is read in (stored by name, so a
 * schedule keeps its times when the server moves). */
export function serverTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Checks a schedule's cron and time zone; returns the canonical time zone and the first run. */
export function checkSchedule(cron: string, timezone?: string): { timezone: string; nextRunAt: Date } {
  const tz = timezone === undefined ? serverTimeZone() : canonicalTimeZone(timezone);
  if (!tz) throw new ScheduleError(`\`${timezone}\` is not a time zone: use an IANA name, like Europe/Paris, America/New_York or UTC`);
  const problem = cronProblem(cron, tz);
  if (problem) throw new ScheduleError(`bad cron \`${cron}\`: ${problem}; ${CRON_HINT}`);
  return { timezone: tz, nextRunAt: nextRun(cron, tz, new Date())! };
}

/** The first time after `after` that the cron matches in `timezone`; null when none will. */
export function nextRun(cron: string, timezone: string, after: Date): Date | null {
  const c = new Cron(cron, { paused: true, mode: '5-or-6-parts', timezone });
  try {
    return c.nextRun(after);
  } finally {
    c.stop();
  }
}

/** Where a schedule whose cron matches no later date is parked (it never fires again). */
const NEVER = new Date('9999-12-31T00:00:00Z');

/** Why a slot made no pipeline, in one line for `ferry schedule list`. */
function whyNoPipeline(err: unknown): string {
  if (err instanceof ConfigError) {
    const [first] = err.issues;
    const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more)` : '';
    return first ? `invalid ${first.pos.file}:${first.pos.line}:${first.pos.col}: ${first.message}${more}` : 'invalid ferry.yml';
  }
  if (err instanceof NoPipelineError) return `no pipeline: ${err.message}`;
  return (err as Error).message;
}

/**
 * Fires one slot of a due schedule: plans its pipeline, then, in one transaction, takes the
 * slot and records the pipeline. Returns the pipeline's id; null when another replica had the
 * slot, the schedule is gone, or the commit made no pipeline (the reason is kept in last_error).
 */
export async function fireSchedule(ctx: ServerContext, s: Schedule): Promise<string | null> {
  const seen = s.nextRunAt;
  // Counted from now rather than from the slot: missed slots make one run, not one each.
  const next = nextRun(s.cron, s.timezone, new Date(Math.max(Date.now(), seen.getTime()))) ?? NEVER;
  const project = await getProject(ctx.db, s.projectId);
  if (!project) return null; // deleted, and its schedules with it
  let started: PipelineStarted | null = null;
  let error: string | null = null;
  try {
    // Like GitLab's, a scheduled pipeline runs as the schedule's owner: trusted, in their name.
    started = await planPipeline(ctx, project, { rev: s.branch ?? undefined, source: 'schedule', variables: s.variables, trusted: true, triggeredBy: s.createdBy, scheduledAt: seen });
  } catch (err) {
    error = whyNoPipeline(err);
  }
  return recordClaimed(
    ctx,
    project,
    started,
    (tx) => takeSlot(tx, s.id, seen, next, error),
    (tx, pipelineId) => noteScheduledPipeline(tx, s.id, pipelineId),
  );
}

export interface ScheduleLoopOptions {
  /** The longest the loop sleeps: how soon a schedule made on another replica is seen (default 1 s). */
  maxSleepMs?: number;
  onError?: (err: Error) => void;
}

/** Sleeps until the next schedule is due (at most maxSleepMs), fires what is due, again. */
export class ScheduleLoop extends BackgroundLoop {
  private readonly maxSleepMs: number;

  constructor(
    private readonly ctx: ServerContext,
    private readonly opts: ScheduleLoopOptions = {},
  ) {
    super();
    this.maxSleepMs = opts.maxSleepMs ?? 1000;
  }

  /** Fires what is due; returns how long to sleep. */
  protected async turn(): Promise<number> {
    try {
      let failed = false;
      for (const s of await dueSchedules(this.ctx.db)) {
        if (this.stopped) return 0;
        await fireSchedule(this.ctx, s).catch((err: Error) => {
          failed = true;
          this.opts.onError?.(err);
        });
      }
      // A slot that could not be recorded stays due: try again later, not in a tight loop.
      if (failed) return this.maxSleepMs;
      const ms = await msUntilNextDue(this.ctx.db);
      return Math.min(ms ?? this.maxSleepMs, this.maxSleepMs);
    } catch (err) {
      // The store is briefly unavailable: the next tick tries again.
      this.opts.onError?.(err as Error);
      return this.maxSleepMs;
    }
  }
}
