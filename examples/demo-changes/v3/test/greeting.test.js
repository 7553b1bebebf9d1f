import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greeting } from '../src/greeting.js';

test('greets the world by default', () => assert.equal(greeting(), 'Hello, world!'));
test('greets by name, trimmed', () => assert.equal(greeting('  Ada '), 'Hello, Ada!'));
test('speaks German', () => assert.equal(greeting('Ada', 'de'), 'Hallo, Ada!'));
test('speaks Spanish', () => assert.equal(greeting(null, 'es'), 'Hola, mundo!'));
test('falls back to English for languages it does not speak', () => assert.equal(greeting('Ada', 'pt'), 'Hello, Ada!'));
