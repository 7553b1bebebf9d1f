// Terminal views of a pipeline run: pick one for the output stream, then feed it RunEvents.
//
//   const view = createView(pickViewMode({ json: opts.json, stream: process.stdout }),
//                           { out: process.stdout, color: useColor(process.stdout, process.env) });
//   const off = bus.subscribe((e) => view.onEvent(e));
//   ...; off(); view.close();
import { JsonView } from './json.js';
import { PlainView } from './plain.js';
import { TtyView } from './tty.js';
import type { RunView, ViewMode, ViewOptions } from './types.js';

export type { RunView, ViewMode, ViewOptions } from './types.js';
export type { RunSummary } from './json.js';
export { JsonView, PlainView, TtyView };

export function createView(mode: ViewMode, opts: ViewOptions): RunView {
  switch (mode) {
    case 'tty':
      return new TtyView(opts);
    case 'plain':
      return new PlainView(opts);
    case 'json':
      return new JsonView(opts);
  }
}

/** --json -> json; an interactive terminal (not TERM=dumb) -> tty; anything else -> plain. */
export function pickViewMode(o: { json: boolean; stream: { isTTY?: boolean }; env?: NodeJS.ProcessEnv }): ViewMode {
  if (o.json) return 'json';
  const env = o.env ?? process.env;
  if (o.stream.isTTY === true && env.TERM !== 'dumb') return 'tty';
  return 'plain';
}

/**
 * NO_COLOR (set and non-empty, https://no-color.org) -> no color; FORCE_COLOR -> color (unless
 * it is "0" or "false", as in Node and chalk); else color on a TTY.
 */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR.toLowerCase() !== 'false';
  return stream.isTTY === true;
}
