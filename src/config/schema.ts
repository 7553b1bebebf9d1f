// First validation layer: schema/ferry.schema.json through ajv. ajv reports every failed branch of
// every anyOf; people want one message per mistake, so anyOf failures are collapsed to the branch
// that matches the value's type (or to one "wrong type" message), and unknown keys get a hint.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from 'ajv';
import { keyLoc, selfLoc, valueLoc, type Loc } from './positions.js';
import { didYouMean } from './suggest.js';
import type { Issues } from './issues.js';

type Json = Record<string, unknown>;

export function schemaPath(): string {
  return join(packageRoot(), 'schema', 'ferry.schema.json');
}

let cached: { schema: Json; validate: ValidateFunction } | undefined;
let ajvInstance: AjvClass | undefined;

export const AJV_OPTIONS = { allErrors: true, verbose: true, strictTypes: false, strictTuples: false } as const;

/** Where `npm ci` (scripts/build-validator.mjs) writes the schema's validator, compiled ahead. */
export function precompiledValidatorPath(): string {
  return join(packageRoot(), 'dist', 'schema-validator.cjs');
}

export function loadSchema(): Json {
  return compiled().schema;
}

/** Loaded only when needed: the schema is compiled ahead, and ajv costs ~30 ms to load. */
function ajv(): AjvClass {
  if (!ajvInstance) {
    const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
    ajvInstance = new Ajv(AJV_OPTIONS);
  }
  return ajvInstance;
}

function compiled() {
  if (!cached) {
    const path = schemaPath();
    const schema = JSON.parse(readFileSync(path, 'utf8')) as Json;
    // Compiling the schema costs ~100 ms, a good part of a small `ferry run`; the build compiles
    // it once. A validator older than the schema (someone edited it) is not used.
    const pre = precompiledValidatorPath();
    let validate: ValidateFunction | undefined;
    if (existsSync(pre) && statSync(pre).mtimeMs >= statSync(path).mtimeMs) {
      const mod = createRequire(import.meta.url)(pre) as { default?: ValidateFunction } & ValidateFunction;
      validate = mod.default ?? mod;
    }
    cached = { schema, validate: validate ?? ajv().compile(schema) };
  }
  return cached;
}

export const TOP_LEVEL_KEYS = ['stages', 'variables', 'default', 'workflow', 'environments', 'include', 'jobs', 'image', 'services'];

/** Keys a job may have, read from the schema so the two never drift apart. */
export function jobKeys(): string[] {
  const defs = loadSchema().definitions as Record<string, Json>;
  return Object.keys(defs.job.properties as Json);
}

function decode(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

function segments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map(decode);
}

function at(root: unknown, segs: string[]): { parent: unknown; key: string | number | undefined; value: unknown } {
  let parent: unknown = undefined;
  let key: string | number | undefined = undefined;
  let value: unknown = root;
  for (const s of segs) {
    parent = value;
    key = Array.isArray(value) ? Number(s) : s;
    value = (value as Record<string | number, unknown> | null)?.[key as never];
  }
  return { parent, key, value };
}

function locOf(root: unknown, segs: string[]): Loc | undefined {
  const { parent, key } = at(root, segs);
  return key === undefined ? selfLoc(root) : valueLoc(parent, key);
}

/** "job `build`" and "artifacts.paths[0]" for a path like /jobs/build/artifacts/paths/0. */
export function describePath(root: unknown, segs: string[]): { where: string; label: string } {
  let rest = segs;
  let where = 'the top level';
  if (segs[0] === 'jobs' && segs.length >= 2) {
    where = `job \`${segs[1]}\``;
    rest = segs.slice(2);
  } else if (segs.length >= 1 && !TOP_LEVEL_KEYS.includes(segs[0])) {
    where = `job \`${segs[0]}\``;
    rest = segs.slice(1);
  }
  let label = '';
  for (const s of rest) label += /^\d+$/.test(s) ? `[${s}]` : label === '' ? s : `.${s}`;
  return { where, label };
}

function resolveRef(schema: Json | undefined): Json {
  let s = schema ?? {};
  for (let i = 0; i < 20 && typeof s.$ref === 'string'; i++) {
    const path = (s.$ref as string).replace(/^#\//, '').split('/');
    let t: unknown = compiled().schema;
    for (const p of path) t = (t as Json)[p];
    s = t as Json;
  }
  return s;
}

function jsonType(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v === 'object' ? 'object' : typeof v;
}

function found(v: unknown): string {
  const t = jsonType(v);
  return { null: 'nothing', array: 'a list', object: 'a map', integer: 'a number', number: 'a number', string: 'a string', boolean: 'a boolean' }[t] ?? t;
}

function typeMatches(branch: Json, v: unknown): boolean {
  const s = resolveRef(branch);
  const t = jsonType(v);
  if (Array.isArray(s.enum)) return s.enum.some((e) => jsonType(e) === t || (jsonType(e) === 'integer' && t === 'number'));
  if (s.type === undefined) return Array.isArray(s.anyOf) ? s.anyOf.some((b) => typeMatches(b as Json, v)) : true;
  const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
  return types.some((ty) => ty === t || (ty === 'number' && t === 'integer'));
}

function describeSchema(branch: Json): string {
  const s = resolveRef(branch);
  if (Array.isArray(s.enum)) return `one of ${s.enum.join(', ')}`;
  if (Array.isArray(s.anyOf)) {
    const parts = [...new Set((s.anyOf as Json[]).map(describeSchema))];
    return parts.length <= 2 ? parts.join(' or ') : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
  }
  switch (s.type) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'integer':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a map';
    case 'array': {
      const items = resolveRef(s.items as Json | undefined);
      if (items.type === 'string') return 'a list of strings';
      if (items.type === 'integer') return 'a list of numbers';
      if (items.type === 'object') return 'a list of maps';
      return 'a list';
    }
    default:
      return 'a value';
  }
}

const LIST_KEYS = new Set(['needs', 'tags', 'dependencies', 'stages', 'paths', 'exclude', 'rules', 'matrix', 'options']);

function wrongTypeHint(key: string | undefined, value: unknown): string | undefined {
  if (key && LIST_KEYS.has(key) && (typeof value === 'string' || typeof value === 'number')) {
    return `${key} takes a list: ${key}: [${String(value)}]`;
  }
  if (key === 'rules' && jsonType(value) === 'object') return 'rules takes a list of maps: rules: [{ if: ... }]';
  return undefined;
}

const RANGE_HINTS: Record<string, string> = {
  retry: 'GitLab allows up to 2 retries; Ferry allows up to 10',
  max: 'GitLab allows up to 2 retries; Ferry allows up to 10',
  parallel: 'parallel takes a count from 1 to 200',
};

/** Validates the raw (pre-extends) file and reports schema problems with positions. */
export function validateSchema(root: unknown, issues: Issues): void {
  const { validate } = compiled();
  if (validate(root)) return;
  report(root, '', (validate.errors ?? []) as ErrorObject[], issues);
}

const branchValidators = new WeakMap<Json, ValidateFunction>();

/** ajv reports schemaPath relative to the $ref target, so a branch is compiled on its own. */
function branchValidator(branch: Json): ValidateFunction {
  let v = branchValidators.get(branch);
  if (!v) {
    const { schema } = compiled();
    v = ajv().compile({ ...branch, definitions: schema.definitions });
    branchValidators.set(branch, v);
  }
  return v;
}

function report(root: unknown, base: string, errors: ErrorObject[], issues: Issues): void {
  // Errors an anyOf produced for its branches come right before it, on the same or deeper paths.
  const pending: { path: string; run: () => void }[] = [];
  for (const e of errors) {
    const path = base + e.instancePath;
    if (e.keyword !== 'anyOf') {
      pending.push({ path, run: () => one(root, e, path, issues) });
      continue;
    }
    while (pending.length > 0) {
      const last = pending[pending.length - 1].path;
      if (last === path || last.startsWith(path + '/')) pending.pop();
      else break;
    }
    const branches = e.schema as Json[];
    const idx = branches.findIndex((b) => typeMatches(b, e.data));
    if (idx >= 0) {
      const sub = branchValidator(branches[idx]);
      if (!sub(e.data)) {
        const subErrors = (sub.errors ?? []) as ErrorObject[];
        pending.push({ path, run: () => report(root, path, subErrors, issues) });
      }
      continue;
    }
    pending.push({ path, run: () => one(root, e, path, issues) });
  }
  for (const p of pending) p.run();
}

function one(root: unknown, e: ErrorObject, path: string, issues: Issues): void {
  const segs = segments(path);
  const { where, label } = describePath(root, segs);
  const { value } = at(root, segs);
  const lastKey = [...segs].reverse().find((s) => !/^\d+$/.test(s));
  const ownKey = segs.length > 0 && segs[segs.length - 1] === lastKey ? lastKey : undefined;
  const name = label === '' ? where : where === 'the top level' ? `\`${label}\`` : `\`${label}\` in ${where}`;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const props = Object.keys(((e.parentSchema as Json | undefined)?.properties as Json | undefined) ?? {});
      const inWhat = label === '' ? (where === 'the top level' ? 'at the top level' : where) : where === 'the top level' ? `\`${label}\`` : `\`${label}\` of ${where}`;
      issues.add('unknown-key', keyLoc(value, key), `unknown key \`${key}\` ${inWhat.startsWith('at ') ? inWhat : `in ${inWhat}`}`, didYouMean(key, props) ?? (props.length ? `allowed keys: ${props.join(', ')}` : undefined));
      return;
    }
    case 'type':
    case 'anyOf': {
      const expected = e.keyword === 'anyOf' ? describeSchema({ anyOf: e.schema } as Json) : describeSchema(e.parentSchema as Json);
      if (label === '' && where.startsWith('job')) {
        issues.add('wrong-type', locOf(root, segs), `${where} must be a map of job keys, not ${found(value)}`, `write the job's keys indented below its name, for example \`script: make\``);
        return;
      }
      issues.add('wrong-type', locOf(root, segs), `${name} must be ${expected}, not ${found(value)}`, wrongTypeHint(ownKey, value));
      return;
    }
    case 'enum': {
      // `delayed` is in the schema only so that it gets a "not supported" message of its own.
      const allowed = (e.schema as unknown[]).map(String).filter((x) => x !== 'delayed');
      issues.add('bad-value', locOf(root, segs), `\`${String(value)}\` is not a valid value for ${name}`, `use one of: ${allowed.join(', ')}`);
      return;
    }
    case 'minimum':
    case 'maximum': {
      const limit = (e.params as { limit: number }).limit;
      const bound = e.keyword === 'minimum' ? `at least ${limit}` : `at most ${limit}`;
      issues.add('bad-value', locOf(root, segs), `${name} must be ${bound}, not ${String(value)}`, lastKey ? RANGE_HINTS[lastKey] : undefined);
      return;
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      issues.add('missing-key', locOf(root, segs), `${name} needs \`${missing}\``, `add \`${missing}:\``);
      return;
    }
    default:
      issues.add('schema', locOf(root, segs), `${name} ${e.message ?? 'is invalid'}`);
  }
}
