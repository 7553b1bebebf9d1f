// docs/reference/ferry-yml.md is generated from schema/ferry.schema.json by
// scripts/schema-docs.mjs; this keeps the committed file and the schema from drifting apart.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { fromRoot } from '../helpers/paths.js';

interface SchemaDocs {
  renderSchemaDocs(schema: unknown): string;
  renderFromFile(path?: string): string;
  OUT_OF_DATE: string;
}

const load = async (): Promise<SchemaDocs> => (await import(pathToFileURL(fromRoot('scripts', 'schema-docs.mjs')).href)) as SchemaDocs;

describe('docs/reference/ferry-yml.md', () => {
  it('is what scripts/schema-docs.mjs makes of the schema', async () => {
    const { renderFromFile, OUT_OF_DATE } = await load();
    const expected = renderFromFile(fromRoot('schema', 'ferry.schema.json'));
    let committed = '';
    try {
      committed = readFileSync(fromRoot('docs', 'reference', 'ferry-yml.md'), 'utf8');
    } catch {
      // missing: out of date
    }
    assert.ok(committed === expected, OUT_OF_DATE);
  });

  it('names every key of the schema and links every definition it uses', async () => {
    const { renderFromFile } = await load();
    const text = renderFromFile(fromRoot('schema', 'ferry.schema.json'));
    const schema = JSON.parse(readFileSync(fromRoot('schema', 'ferry.schema.json'), 'utf8')) as { definitions: Record<string, unknown> };
    const keys = new Set<string>();
    const walk = (s: unknown): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as Record<string, unknown>;
      for (const k of Object.keys((o.properties as object | undefined) ?? {})) keys.add(k);
      for (const v of Object.values(o)) walk(v);
    };
    walk(schema);
    for (const k of keys) assert.ok(text.includes(`| \`${k}\` |`), `key ${k} is missing from the reference`);
    const anchors = new Set([...text.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]));
    for (const m of text.matchAll(/\]\(#([^)]+)\)/g)) assert.ok(anchors.has(m[1]!), `link to #${m[1]} has no anchor`);
    for (const name of Object.keys(schema.definitions)) assert.match(text, new RegExp(`^## ${name}$`, 'm'), `definition ${name} has no section`);
  });

  it('is deterministic, and follows $ref, anyOf and defaults', async () => {
    const { renderSchemaDocs } = await load();
    const schema = {
      type: 'object',
      properties: {
        a: { $ref: '#/definitions/thing', description: 'The a.' },
        b: { description: 'A b.', anyOf: [{ type: 'string' }, { type: 'integer', minimum: 1, maximum: 9 }], examples: ['x'] },
        c: { description: 'A c.', enum: ['on', 'off'], default: 'on' },
      },
      required: ['a'],
      additionalProperties: false,
      definitions: { thing: { description: 'A thing.', type: 'object', properties: { d: { type: 'boolean', description: 'A d (default true).' } }, additionalProperties: false } },
    };
    const one = renderSchemaDocs(schema);
    assert.equal(renderSchemaDocs(JSON.parse(JSON.stringify(schema))), one);
    assert.match(one, /\| `a` \| \[thing\]\(#thing\) \| \*\*required\*\* \| The a\. \|/);
    assert.match(one, /\| `b` \| one of: string; integer 1–9 \|  \| A b\. Example: `x`\. \|/);
    assert.match(one, /\| `c` \| one of `on`, `off` \| `on` \| A c\. \|/);
    assert.match(one, /<a id="thing"><\/a>\n\n## thing\n\nA thing\.\n\nUsed by: \[top level\]\(#top-level\) `a`\./);
    assert.match(one, /\| `d` \| boolean \| true \| A d \(default true\)\. \|/);
  });
});
