#!/usr/bin/env node
// Writes docs/reference/ferry-yml.md from schema/ferry.schema.json, so the reference of ferry.yml
// never drifts from the schema editors and `ferry validate` use. Every key with its type, allowed
// values, default and description; each definition (and each map nested inside one) is a section
// with an anchor; $ref links to its section; anyOf/oneOf read as "one of". The output depends on
// the schema alone, so it is the same on every machine.
//
//   node scripts/schema-docs.mjs           write docs/reference/ferry-yml.md
//   node scripts/schema-docs.mjs --check   exit 1 when the committed file is out of date
//
// test/docs/reference.test.ts imports renderSchemaDocs and compares.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SCHEMA_PATH = join(ROOT, 'schema', 'ferry.schema.json');
export const OUTPUT_PATH = join(ROOT, 'docs', 'reference', 'ferry-yml.md');
export const OUT_OF_DATE = 'docs/reference/ferry-yml.md is out of date: run node scripts/schema-docs.mjs';

const REF = '#/definitions/';
/** Definitions whose sections (and what they lead to) come first, after the top level: what a
 * reader looks up most. The rest follow in the order the schema reaches them. */
const READING_ORDER = ['job', 'environment'];

/** The text a schema gives about itself: markdownDescription wins, as in VS Code. */
function describe(s) {
  const text = s?.markdownDescription ?? s?.description ?? '';
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function cell(text) {
  return String(text).replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function code(v) {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

function anchorOf(name) {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

const hasKeys = (o) => !!o && typeof o === 'object' && Object.keys(o).length > 0;
const isObjectLike = (s) => !!s && typeof s === 'object' && (hasKeys(s.properties) || hasKeys(s.patternProperties));

/** Renders the whole reference. `schema` is the parsed schema/ferry.schema.json. */
export function renderSchemaDocs(schema) {
  const defs = schema.definitions ?? {};
  const defName = (ref) => (typeof ref === 'string' && ref.startsWith(REF) ? ref.slice(REF.length) : null);

  // ---- sections: the top level, then each definition in the order a reader meets it ---------
  /** name -> { id, title, schema, usedBy: Set<string> } */
  const sections = new Map();
  const order = [];
  const top = { id: 'top-level', title: 'Top level', schema, usedBy: new Set(), def: null };
  sections.set('#', top);
  order.push(top);

  const addDef = (name) => {
    if (sections.has(name)) return sections.get(name);
    if (!defs[name]) throw new Error(`$ref to a missing definition: ${name}`);
    const sec = { id: anchorOf(name), title: name, schema: defs[name], usedBy: new Set(), def: name };
    sections.set(name, sec);
    order.push(sec);
    visit(defs[name], sec, '');
    return sec;
  };

  /** Walks a schema in document order, registering each $ref it meets (depth first). */
  function visit(s, sec, path) {
    if (!s || typeof s !== 'object') return;
    const name = defName(s.$ref);
    if (name) {
      const target = addDef(name);
      target.usedBy.add(JSON.stringify([sec.def ?? '#', path]));
    }
    for (const [k, sub] of Object.entries(s.properties ?? {})) visit(sub, sec, path ? `${path}.${k}` : k);
    for (const [p, sub] of Object.entries(s.patternProperties ?? {})) visit(sub, sec, path ? `${path}.${patternLabel(p, sec)}` : patternLabel(p, sec));
    if (s.additionalProperties && typeof s.additionalProperties === 'object') visit(s.additionalProperties, sec, path ? `${path}.<name>` : '<name>');
    if (s.items) for (const it of [s.items].flat()) visit(it, sec, `${path}[]`);
    for (const k of ['anyOf', 'oneOf', 'allOf']) for (const b of s[k] ?? []) visit(b, sec, path);
  }
  for (const name of READING_ORDER) if (defs[name]) addDef(name);
  visit(schema, top, '');

  // Sections of definitions that nothing references still belong in the reference.
  for (const name of Object.keys(defs)) addDef(name);

  // ---- rendering -------------------------------------------------------------------------------
  const link = (name) => `[${name}](#${sections.get(name).id})`;

  /** Type and allowed values of a schema, in a few words; inline maps are queued as subsections. */
  function typeOf(s, ctx) {
    if (s === true || s === undefined || (typeof s === 'object' && Object.keys(s).length === 0)) return 'any';
    const name = defName(s.$ref);
    if (name) return link(name);
    if (s.enum) return s.enum.length === 1 ? code(s.enum[0]) : `one of ${s.enum.map(code).join(', ')}`;
    if ('const' in s) return code(s.const);
    for (const k of ['anyOf', 'oneOf']) {
      if (s[k]) {
        const parts = [...new Set(s[k].map((b) => typeOf(b, ctx)))];
        return parts.length === 1 ? parts[0] : `one of: ${parts.join('; ')}`;
      }
    }
    if (isObjectLike(s)) return `map ([keys](#${ctx.nested(s)}))`;
    const t = [s.type].flat().filter(Boolean);
    if (t.length === 0) return 'any';
    return t.map((one) => typeWord(one, s, ctx)).join(' or ');
  }

  function typeWord(t, s, ctx) {
    switch (t) {
      case 'array':
        return s.items ? `list of ${typeOf(s.items, ctx)}` : 'list';
      case 'object':
        if (s.properties && !hasKeys(s.properties) && s.additionalProperties === false) return '`{}` (an empty map)';
        if (s.additionalProperties && typeof s.additionalProperties === 'object') return `map of name → ${typeOf(s.additionalProperties, ctx)}`;
        return 'map';
      case 'integer':
      case 'number':
        return `${t}${range(s)}`;
      case 'string':
        return s.minLength ? 'non-empty string' : 'string';
      default:
        return t;
    }
  }

  function range(s) {
    const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `>${s.exclusiveMinimum}` : undefined);
    const hi = s.maximum;
    if (lo !== undefined && hi !== undefined) return ` ${lo}–${hi}`;
    if (lo !== undefined) return typeof lo === 'number' ? ` ≥ ${lo}` : ` ${lo}`;
    if (hi !== undefined) return ` ≤ ${hi}`;
    return '';
  }

  /** The default of a key: the schema's `default`, else what its description says. */
  function defaultOf(s, parent, key) {
    if (parent?.required?.includes(key)) return '**required**';
    const own = s?.default !== undefined ? s.default : undefined;
    const ref = defName(s?.$ref);
    const inherited = ref && defs[ref].default !== undefined ? defs[ref].default : undefined;
    const d = own ?? inherited;
    if (d !== undefined) return code(d);
    const text = describe(s) || (ref ? describe(defs[ref]) : '');
    if (/^Required\b/.test(text)) return '**required**';
    const m = /\(default:? ([^)]+)\)/.exec(text) ?? /\bDefault: (.+?)\.(?:\s|$)/.exec(text);
    return m ? m[1] : '';
  }

  function descriptionOf(s) {
    const own = describe(s);
    if (own) return own;
    const ref = defName(s?.$ref);
    return ref ? describe(defs[ref]) : '';
  }

  function examplesOf(s) {
    const ex = s?.examples;
    return Array.isArray(ex) && ex.length ? ` Example${ex.length > 1 ? 's' : ''}: ${ex.map(code).join(', ')}.` : '';
  }

  const out = [];
  out.push('# ferry.yml reference');
  out.push('');
  out.push('<!-- Generated from schema/ferry.schema.json by scripts/schema-docs.mjs. Do not edit: change the schema and run `node scripts/schema-docs.mjs`. -->');
  out.push('');
  out.push(
    'Every key of `ferry.yml`, generated from [schema/ferry.schema.json](../../schema/ferry.schema.json), the file editors use for completion and `ferry validate` checks against. ' +
      'Each section is one kind of value; a type in a table links to its section. "One of" means any of the forms listed. ' +
      'Defaults in code come from the schema; the others are quoted from the key\'s description. ' +
      '`ferry validate` checks more than the schema can say (which keys go with which target or metric source, conditions, durations): ' +
      'see [environments.md](../environments.md) for those rules.',
  );
  out.push('');
  out.push('Contents:');
  out.push('');
  for (const sec of order) out.push(`- [${sec.title}](#${sec.id})`);
  out.push('');

  for (const sec of order) {
    const nestedQueue = [];
    const ctx = {
      key: '',
      nested(s) {
        const found = nestedQueue.find((n) => n.schema === s);
        if (found) return found.id;
        const base = `${sec.id}-${ctx.key ? anchorOf(ctx.key) : 'map'}`;
        let id = base;
        for (let n = 2; nestedQueue.some((q) => q.id === id); n++) id = `${base}-${n}`;
        nestedQueue.push({ id, schema: s, key: ctx.key });
        return id;
      },
    };
    out.push(`<a id="${sec.id}"></a>`);
    out.push('');
    out.push(`## ${sec.title}`);
    out.push('');
    const desc = describe(sec.schema);
    if (desc) {
      out.push(desc + examplesOf(sec.schema));
      out.push('');
    }
    if (sec.usedBy.size) {
      const uses = [...sec.usedBy].map((u) => JSON.parse(u)).map(([owner, path]) => {
        const where = owner === '#' ? `[top level](#top-level)` : link(owner);
        return path ? `${where} \`${path}\`` : where;
      });
      out.push(`Used by: ${uses.join(', ')}.`);
      out.push('');
    }
    renderBody(sec.schema, ctx, out);
    // Maps nested inside this section (not definitions of their own), each with an anchor.
    for (let i = 0; i < nestedQueue.length; i++) {
      const n = nestedQueue[i];
      out.push(`<a id="${n.id}"></a>`);
      out.push('');
      out.push(`### ${sec.title}${n.key ? ` \`${n.key}\`` : ''} as a map`);
      out.push('');
      const d = describe(n.schema);
      if (d) {
        out.push(d);
        out.push('');
      }
      ctx.key = n.key;
      renderTable(n.schema, ctx, out);
    }
  }

  function renderBody(s, ctx, lines) {
    if (isObjectLike(s)) {
      renderTable(s, ctx, lines);
      return;
    }
    for (const k of ['anyOf', 'oneOf']) {
      if (s[k]) {
        lines.push('One of:');
        lines.push('');
        for (const b of s[k]) {
          const d = describe(b);
          lines.push(`- ${typeOf(b, ctx)}${d ? `: ${d}` : ''}`);
        }
        lines.push('');
        return;
      }
    }
    const t = typeOf(s, ctx);
    lines.push(`Type: ${t}.${s.default !== undefined ? ` Default: ${code(s.default)}.` : ''}`);
    lines.push('');
  }

  function renderTable(s, ctx, lines) {
    lines.push('| key | type | default | description |');
    lines.push('| --- | --- | --- | --- |');
    const prefix = ctx.key;
    for (const [key, sub] of Object.entries(s.properties ?? {})) {
      ctx.key = prefix ? `${prefix}.${key}` : key;
      lines.push(`| ${code(key)} | ${cell(typeOf(sub, ctx))} | ${cell(defaultOf(sub, s, key))} | ${cell(descriptionOf(sub) + examplesOf(sub))} |`);
    }
    ctx.key = prefix;
    for (const [pattern, sub] of Object.entries(s.patternProperties ?? {})) {
      lines.push(`| ${cell(patternKey(pattern))} | ${cell(typeOf(sub, ctx))} | | ${cell(describe(sub) || patternMeaning(pattern) || descriptionOf(sub))} |`);
    }
    if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      lines.push(`| any other name | ${cell(typeOf(s.additionalProperties, ctx))} | | ${cell(descriptionOf(s.additionalProperties))} |`);
    }
    lines.push('');
    if (s.additionalProperties === false) {
      lines.push(s.patternProperties ? 'No other keys are allowed.' : 'No other keys are allowed.');
      lines.push('');
    }
  }

  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

/** How a patternProperties key reads in a path. */
function patternLabel(pattern) {
  if (pattern === '^\\.') return '<.template>';
  return '<job>';
}

function patternKey(pattern) {
  if (pattern === '^\\.') return 'a name starting with `.`';
  if (pattern === '^[^.]') return 'any other name';
  if (pattern.startsWith('^(?!')) return 'any other name';
  return `a name matching ${code(pattern)}`;
}

function patternMeaning(pattern) {
  if (pattern.startsWith('^(?!')) return 'A job, written at the top level like GitLab CI (any name that is not a keyword above).';
  return '';
}

export function renderFromFile(path = SCHEMA_PATH) {
  return renderSchemaDocs(JSON.parse(readFileSync(path, 'utf8')));
}

const invoked = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invoked) {
  const text = renderFromFile();
  if (process.argv.includes('--check')) {
    let current = null;
    try {
      current = readFileSync(OUTPUT_PATH, 'utf8');
    } catch {
      // missing: out of date
    }
    if (current !== text) {
      process.stderr.write(`${OUT_OF_DATE}\n`);
      process.exit(1);
    }
    process.stdout.write('docs/reference/ferry-yml.md is up to date\n');
  } else {
    mkdirSync(dirname(OUTPUT_PATH), { recursive: true });
    writeFileSync(OUTPUT_PATH, text);
    process.stdout.write(`wrote docs/reference/ferry-yml.md (${text.split('\n').length} lines)\n`);
  }
}
