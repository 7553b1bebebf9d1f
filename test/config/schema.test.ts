import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixture, fromRoot } from '../helpers/paths.js';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { jobKeys, loadSchema, schemaPath } from '../../src/config/schema.js';

type Json = Record<string, unknown>;

describe('schema/ferry.schema.json', () => {
  it('is the file the loader uses', () => {
    assert.equal(schemaPath(), fromRoot('schema', 'ferry.schema.json'));
  });

  it('describes every property, for editors and generated docs', () => {
    const schema = loadSchema();
    const defs = schema.definitions as Record<string, Json>;
    const described = (s: Json): boolean => {
      if (typeof s.description === 'string' && s.description.length > 0) return true;
      if (typeof s.$ref === 'string') return described(defs[s.$ref.replace('#/definitions/', '')]);
      return false;
    };
    const missing: string[] = [];
    const walk = (s: unknown, path: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as Json;
      for (const key of ['properties', 'patternProperties'] as const) {
        for (const [name, sub] of Object.entries((o[key] as Record<string, Json> | undefined) ?? {})) {
          if (!described(sub)) missing.push(`${path}/${name}`);
        }
      }
      for (const [k, v] of Object.entries(o)) walk(v, `${path}/${k}`);
    };
    walk(schema, '#');
    assert.deepEqual(missing, []);
  });

  it('closes every known object with additionalProperties: false', () => {
    const open: string[] = [];
    const walk = (s: unknown, path: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as Json;
      if (o.properties && o.additionalProperties !== false) open.push(path);
      for (const [k, v] of Object.entries(o)) walk(v, `${path}/${k}`);
    };
    walk(loadSchema(), '#');
    assert.deepEqual(open, []);
  });

  it('accepts the DESIGN example as is, with a plain ajv', () => {
    const ajv = new Ajv({ allErrors: true, strictTypes: false });
    const validate = ajv.compile(JSON.parse(readFileSync(schemaPath(), 'utf8')));
    const doc = parse(readFileSync(fixture('config', 'design-example.yml'), 'utf8'));
    assert.equal(validate(doc), true, JSON.stringify(validate.errors));
    assert.equal(validate({ build: { scirpt: 'x' } }), false);
  });

  it('lists the job keys the loader knows', () => {
    for (const k of ['script', 'needs', 'rules', 'deploy', 'parallel', 'extends']) assert.ok(jobKeys().includes(k), k);
  });
});
