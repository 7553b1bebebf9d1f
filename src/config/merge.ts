// `extends:` and `default:` as GitLab does them: maps merge deeply, anything else is replaced.
// Positions travel with the values so an error in a template points into the template.

import { metaOf, setMeta, type Meta } from './positions.js';

export type Json = Record<string, unknown>;

export function isMap(v: unknown): v is Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function emptyMeta(from: Meta | undefined): Meta {
  return { self: from?.self ?? { line: 1, col: 1, offset: 0 }, keys: new Map(), values: new Map() };
}

/** `over` wins; both inputs are left untouched. */
export function deepMerge(base: Json, over: Json): Json {
  const out: Json = {};
  const bm = metaOf(base);
  const om = metaOf(over);
  const meta = emptyMeta(om ?? bm);
  for (const [k, v] of Object.entries(base)) {
    out[k] = v;
    copyLoc(meta, bm, k);
  }
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isMap(prev) && isMap(v) ? deepMerge(prev, v) : v;
    copyLoc(meta, om, k);
  }
  setMeta(out, meta);
  return out;
}

/** Copies keys of `defaults` that `target` lacks (shallow: a job's own `cache` replaces the default). */
export function fillDefaults(target: Json, defaults: Json, keys: readonly string[]): Json {
  const out: Json = { ...target };
  const tm = metaOf(target);
  const meta: Meta = { self: emptyMeta(tm).self, keys: new Map(tm?.keys), values: new Map(tm?.values) };
  const dm = metaOf(defaults);
  for (const k of keys) {
    if (k in out || !(k in defaults)) continue;
    out[k] = defaults[k];
    copyLoc(meta, dm, k);
  }
  setMeta(out, meta);
  return out;
}

function copyLoc(meta: Meta, from: Meta | undefined, k: string): void {
  const kl = from?.keys.get(k);
  const vl = from?.values.get(k);
  if (kl) meta.keys.set(k, kl);
  if (vl) meta.values.set(k, vl);
}

export function withoutKey(o: Json, key: string): Json {
  const out: Json = { ...o };
  delete out[key];
  const m = metaOf(o);
  if (m) setMeta(out, m);
  return out;
}
