// The YAML AST turned into plain JS values that remember where each key and value stood, so every
// later stage (schema, extends, semantic checks) can point at the right line after anchors, merge
// keys and templates have moved things around.

import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';

export interface Loc {
  line: number;
  col: number;
  /** Offset in the file; lets expression errors point inside a quoted value. */
  offset: number;
  /** For scalars: the YAML style and the raw source text, to map offsets inside the value. */
  scalar?: { type: string; raw: string };
}

export interface Meta {
  /** Where the collection itself starts. */
  self: Loc;
  keys: Map<string, Loc>;
  values: Map<string | number, Loc>;
}

const metas = new WeakMap<object, Meta>();

export function metaOf(o: unknown): Meta | undefined {
  return typeof o === 'object' && o !== null ? metas.get(o) : undefined;
}

export function setMeta(o: object, meta: Meta): void {
  metas.set(o, meta);
}

export function keyLoc(parent: unknown, key: string): Loc | undefined {
  return metaOf(parent)?.keys.get(key);
}

/** Where parent[key] is written; falls back to the key, then the parent. */
export function valueLoc(parent: unknown, key: string | number): Loc | undefined {
  const m = metaOf(parent);
  if (!m) return undefined;
  return m.values.get(key) ?? (typeof key === 'string' ? m.keys.get(key) : undefined) ?? m.self;
}

export function selfLoc(o: unknown): Loc | undefined {
  return metaOf(o)?.self;
}

/** Limits how much alias expansion may grow the tree ("billion laughs"). */
const MAX_NODES = 200_000;

export class TooLargeError extends Error {}

export function toPlain(doc: Document, text: string, lc: LineCounter): unknown {
  let count = 0;
  const loc = (node: Node | Pair['key'] | null | undefined, fallback: Loc): Loc => {
    const range = (node as Node | null)?.range;
    if (!range) return fallback;
    const { line, col } = lc.linePos(range[0]);
    const l: Loc = { line, col, offset: range[0] };
    if (isScalar(node)) l.scalar = { type: String(node.type ?? 'PLAIN'), raw: text.slice(range[0], range[1]) };
    return l;
  };
  const origin: Loc = { line: 1, col: 1, offset: 0 };

  const convert = (node: unknown, here: Loc, depth: number): unknown => {
    if (++count > MAX_NODES || depth > 200) throw new TooLargeError('the YAML document expands to too many nodes');
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      return target ? convert(target, loc(target, here), depth + 1) : null;
    }
    if (isScalar(node)) {
      const v = node.value;
      // !!binary, !!timestamp and the like: a CI file wants their text, never a Buffer or Date.
      if (typeof v === 'object' && v !== null) return text.slice(node.range?.[0] ?? 0, node.range?.[1] ?? 0);
      return typeof v === 'bigint' ? Number(v) : v;
    }
    if (isSeq(node)) {
      const out: unknown[] = [];
      const meta: Meta = { self: here, keys: new Map(), values: new Map() };
      node.items.forEach((item, i) => {
        const l = loc(item as Node, here);
        meta.values.set(i, l);
        out.push(convert(item, l, depth + 1));
      });
      metas.set(out, meta);
      return out;
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const meta: Meta = { self: here, keys: new Map(), values: new Map() };
      const merges: unknown[] = [];
      for (const pair of node.items) {
        const k = pair.key;
        if (isScalar(k) && typeof k.value === 'symbol') {
          // `<<: *a` or `<<: [*a, *b]`: applied after the explicit keys, which always win.
          merges.push(pair.value);
          continue;
        }
        const name = isScalar(k) ? String(k.value ?? '') : String(k ?? '');
        const kl = loc(k as Node, here);
        meta.keys.set(name, kl);
        // `key:` with nothing after it: point at the key, not at the empty space after the colon.
        const empty = !pair.value || (isScalar(pair.value) && pair.value.value === null && (pair.value.source ?? '') === '');
        const vl = empty ? kl : loc(pair.value as Node, kl);
        meta.values.set(name, vl);
        out[name] = convert(pair.value, vl, depth + 1);
      }
      for (const m of merges) {
        const sources = isSeq(m) ? m.items : [m];
        for (const s of sources) {
          const src = convert(s, loc(s as Node, here), depth + 1);
          const sm = metaOf(src);
          if (typeof src !== 'object' || src === null || Array.isArray(src)) continue;
          for (const [k, v] of Object.entries(src)) {
            if (k in out) continue;
            out[k] = v;
            const kl = sm?.keys.get(k);
            const vl = sm?.values.get(k);
            if (kl) meta.keys.set(k, kl);
            if (vl) meta.values.set(k, vl);
          }
        }
      }
      metas.set(out, meta);
      return out;
    }
    return null;
  };
  const root = doc.contents;
  return convert(root, root ? loc(root as Node, origin) : origin, 0);
}

/** Position of a 0-based offset inside a scalar's value, accounting for quotes and escapes. */
export function locInsideScalar(l: Loc, valueOffset: number, lc: LineCounter): Loc {
  const s = l.scalar;
  let rawOffset = valueOffset;
  if (s && (s.type === 'QUOTE_SINGLE' || s.type === 'QUOTE_DOUBLE')) {
    let r = 1;
    for (let v = 0; v < valueOffset && r < s.raw.length; v++) {
      if (s.type === 'QUOTE_SINGLE') r += s.raw[r] === "'" ? 2 : 1;
      else if (s.raw[r] === '\\') {
        const e = s.raw[r + 1];
        r += e === 'x' ? 4 : e === 'u' ? 6 : e === 'U' ? 10 : 2;
      } else r += 1;
    }
    rawOffset = r;
  } else if (s && (s.type === 'BLOCK_LITERAL' || s.type === 'BLOCK_FOLDED')) {
    return l;
  }
  const offset = l.offset + rawOffset;
  const { line, col } = lc.linePos(offset);
  return { line, col, offset };
}
