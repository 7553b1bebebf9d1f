// Masks secrets in job output as it streams. Every character covered by an occurrence of any
// pattern is masked, overlapping occurrences becoming one mask: masking only the longest match
// at a position would leave the tail of an overlapping second secret in the clear. The result
// equals masking the whole output at once, however it was cut into chunks, and text is held
// back only while it may still turn out to be part of a secret.
import { Automaton } from './aho.js';
import { DEFAULT_MIN_LENGTH, derivePatterns } from './patterns.js';

export interface MaskerOptions {
  /** What replaces each occurrence; default `[MASKED]`. */
  mask?: string;
  /** Values (and derived forms) shorter than this, once trimmed, are not masked; default 4. */
  minLength?: number;
}

interface Compiled {
  automaton: Automaton;
  mask: string;
  patterns: number;
  skipped: number;
}

/**
 * A run of masked text longer than this is cut, so that output made of one secret repeated
 * without end ("aaaa..." for the secret "aaaa") cannot hold back unbounded text; the only cost
 * is an extra mask in the output.
 */
const MAX_HELD_RUN = 1 << 16;

export class SecretMasker {
  /** How many values were too short to mask safely; the values themselves are not kept. */
  readonly skipped: number;
  /** How many distinct strings are masked (values and their encoded forms). */
  readonly patternCount: number;
  private readonly compiled: Compiled;
  private node = 0;
  /** Text read but not yet emitted; starts at the earliest position still undecided. */
  private pending = '';
  /** Masked runs in `pending` that a later occurrence may still extend: sorted, disjoint. */
  private runStart: number[] = [];
  private runEnd: number[] = [];

  constructor(values: readonly string[] | SecretMasker, opts: MaskerOptions = {}) {
    if (values instanceof SecretMasker) {
      this.compiled = values.compiled;
    } else {
      const minLength = opts.minLength ?? DEFAULT_MIN_LENGTH;
      if (!Number.isInteger(minLength) || minLength < 1) throw new RangeError('minLength must be a positive integer');
      const { patterns, skipped } = derivePatterns(values, minLength);
      this.compiled = { automaton: new Automaton(patterns), mask: opts.mask ?? '[MASKED]', patterns: patterns.length, skipped };
    }
    this.skipped = this.compiled.skipped;
    this.patternCount = this.compiled.patterns;
  }

  /** A masker for another stream (stdout and stderr, another job) sharing the compiled patterns. */
  fork(): SecretMasker {
    return new SecretMasker(this);
  }

  /** Everything of `chunk` (and of earlier chunks) that is decided, masked. */
  push(chunk: string): string {
    if (chunk.length === 0) return '';
    return this.scan(this.pending + chunk, this.pending.length, false);
  }

  /** The end of the stream: emits what was held back. The masker can then start a new stream. */
  flush(): string {
    return this.scan(this.pending, this.pending.length, true);
  }

  /** Masks a whole text at once, without touching this stream's state. */
  mask(text: string): string {
    const once = this.fork();
    return once.push(text) + once.flush();
  }

  private scan(buf: string, from: number, final: boolean): string {
    const ac = this.compiled.automaton;
    const { depth, match, liveDepth, fail } = ac;
    const mask = this.compiled.mask;
    const runStart = this.runStart;
    const runEnd = this.runEnd;
    let node = this.node;
    let cursor = 0;
    let out = '';
    for (let j = from; j < buf.length; j++) {
      node = ac.step(node, buf.charCodeAt(j));
      const m = match[node];
      if (m < 0 && runStart.length === 0) continue;
      const end = j + 1;
      // Shorter patterns ending here lie inside the longest one: only it can widen a run.
      if (m >= 0) this.cover(end - depth[m], end);
      // A run is final once nothing that could still match starts inside it.
      const alive = end - liveDepth[node];
      while (runStart.length > 0 && runEnd[0] <= alive) {
        out += buf.slice(cursor, runStart[0]) + mask;
        cursor = runEnd[0];
        runStart.shift();
        runEnd.shift();
      }
    }
    if (final) {
      for (let k = 0; k < runStart.length; k++) {
        out += buf.slice(cursor, runStart[k]) + mask;
        cursor = runEnd[k];
      }
      runStart.length = 0;
      runEnd.length = 0;
      this.node = 0;
      this.pending = '';
      return out + buf.slice(cursor);
    }
    let emit = buf.length - liveDepth[node];
    if (runStart.length > 0) {
      if (emit - runStart[0] > MAX_HELD_RUN) {
        out += buf.slice(cursor, runStart[0]) + mask;
        cursor = runStart[0] = emit;
      }
      emit = Math.min(emit, runStart[0]);
    }
    // Half of a surrogate pair would turn into U+FFFD wherever this piece is encoded alone.
    if (emit > cursor && isHighSurrogate(buf.charCodeAt(emit - 1))) emit--;
    out += buf.slice(cursor, emit);
    this.pending = buf.slice(emit);
    for (let k = 0; k < runStart.length; k++) {
      runStart[k] -= emit;
      runEnd[k] -= emit;
    }
    while (depth[node] > this.pending.length) node = fail[node];
    this.node = node;
    return out;
  }

  /** Adds [start, end) to the runs; `end` is never before an existing run's end. */
  private cover(start: number, end: number): void {
    const runStart = this.runStart;
    const runEnd = this.runEnd;
    while (runStart.length > 0 && runEnd[runEnd.length - 1] > start) {
      start = Math.min(start, runStart.pop()!);
      runEnd.pop();
    }
    runStart.push(start);
    runEnd.push(end);
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
