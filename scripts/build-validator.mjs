#!/usr/bin/env node
// Compiles schema/ferry.schema.json into dist/schema-validator.cjs with ajv's standalone code,
// so `ferry run` and `ferry validate` skip ~100 ms of schema compilation at every start.
// Run after tsc (in `prepare`). Without it Ferry compiles the schema at run time: same result.
import { writeFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const root = new URL('..', import.meta.url);
const { AJV_OPTIONS, schemaPath, precompiledValidatorPath } = await import(new URL('dist/src/config/schema.js', root).href);
const { readFileSync } = await import('node:fs');
const schema = JSON.parse(readFileSync(schemaPath(), 'utf8'));
const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
const validate = ajv.compile(schema);
writeFileSync(precompiledValidatorPath(), standaloneCode.default ? standaloneCode.default(ajv, validate) : standaloneCode(ajv, validate));
console.log(`ferry: schema validator compiled to ${precompiledValidatorPath()}`);
