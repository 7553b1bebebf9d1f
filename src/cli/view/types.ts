// A terminal view of a pipeline run: subscribes to RunEvents and renders them.
import type { RunEvent } from '../../pipeline/events.js';

export interface RunView {
  onEvent(e: RunEvent): void;
  /** Stops timers and leaves the terminal clean (cursor shown). Safe to call more than once. */
  close(): void;
}

export interface ViewOptions {
  out: NodeJS.WritableStream & { columns?: number; rows?: number };
  color: boolean;
  /** Clock for durations of running jobs and redraw throttling; Date.now by default. */
  now?: () => number;
}

export type ViewMode = 'tty' | 'plain' | 'json';
