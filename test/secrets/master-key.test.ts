import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, statSync, readdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadMasterKey, parseMasterKey, keyFingerprint, SecretError } from '../../src/secrets/crypto.js';
import { siblingScript } from '../helpers/paths.js';

let dir: string;
let n = 0;
const fresh = () => join(dir, `case-${n++}`, 'master.key');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-secrets-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('FERRY_MASTER_KEY', () => {
  const raw = randomBytes(32);
  const accepted: Array<[string, string]> = [
    ['hex', raw.toString('hex')],
    ['upper-case hex', raw.toString('hex').toUpperCase()],
    ['base64', raw.toString('base64')],
    ['base64 without padding', raw.toString('base64').replace(/=$/, '')],
    ['base64url', raw.toString('base64url')],
    ['with a trailing newline', `${raw.toString('hex')}\n`],
  ];
  for (const [name, value] of accepted) {
    test(`accepts ${name}`, async () => {
      const keyFile = fresh();
      const got = await loadMasterKey({ env: { FERRY_MASTER_KEY: value }, keyFile });
      assert.equal(got.source, 'env');
      assert.ok(got.key.equals(raw));
      assert.throws(() => statSync(keyFile), /ENOENT/, 'no key file is created when the variable is set');
    });
  }

  const rejected: Array<[string, string]> = [
    ['empty', ''],
    ['a passphrase', 'my super secret passphrase'],
    ['63 hex digits', raw.toString('hex').slice(1)],
    ['16 bytes of base64', randomBytes(16).toString('base64')],
    ['48 bytes of base64', randomBytes(48).toString('base64')],
  ];
  for (const [name, value] of rejected) {
    test(`rejects ${name}, naming the accepted forms but not the value`, async () => {
      await assert.rejects(loadMasterKey({ env: { FERRY_MASTER_KEY: value }, keyFile: fresh() }), (err: Error) => {
        assert.ok(err instanceof SecretError);
        assert.equal(err.code, 'bad-master-key');
        assert.match(err.message, /FERRY_MASTER_KEY must be 64 hexadecimal characters, or 32 bytes in base64/);
        if (value.length > 0) assert.ok(!err.message.includes(value) && !err.message.includes(value.slice(0, 10)), err.message);
        return true;
      });
    });
  }
});

describe('key file', () => {
  test('created on first start: 32 random bytes as hex, mode 0600; read back afterwards', async () => {
    const keyFile = fresh();
    const first = await loadMasterKey({ env: {}, keyFile });
    assert.equal(first.source, 'created');
    assert.equal(first.key.length, 32);
    assert.equal(readFileSync(keyFile, 'utf8'), `${first.key.toString('hex')}\n`);
    if (process.platform !== 'win32') assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(keyFile, '..')), ['master.key'], 'no temporary file left behind');
    const again = await loadMasterKey({ env: {}, keyFile });
    assert.equal(again.source, 'file');
    assert.ok(again.key.equals(first.key));
  });

  test('a key file readable by others is refused with the fix', { skip: process.platform === 'win32' }, async () => {
    const keyFile = fresh();
    await loadMasterKey({ env: {}, keyFile });
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(keyFile, mode);
      await assert.rejects(loadMasterKey({ env: {}, keyFile }), (err: Error) => {
        assert.ok(err instanceof SecretError && err.code === 'key-file-permissions');
        assert.match(err.message, new RegExp(`mode 0${mode.toString(8)}.*chmod 600 `));
        return true;
      });
    }
    chmodSync(keyFile, 0o400);
    assert.equal((await loadMasterKey({ env: {}, keyFile })).source, 'file');
  });

  test('a key file with something else in it is refused at once', async () => {
    const keyFile = fresh();
    await loadMasterKey({ env: {}, keyFile });
    writeFileSync(keyFile, 'not a key at all\n', { mode: 0o600 });
    const started = Date.now();
    await assert.rejects(loadMasterKey({ env: {}, keyFile }), /master key file .* must be 64 hexadecimal characters/);
    assert.ok(Date.now() - started < 500, 'no retrying when the content cannot be a key being written');
  });

  test('a half-written key file is waited for', async () => {
    const keyFile = fresh();
    await loadMasterKey({ env: {}, keyFile });
    const full = randomBytes(32).toString('hex');
    writeFileSync(keyFile, full.slice(0, 20), { mode: 0o600 });
    setTimeout(() => writeFileSync(keyFile, `${full}\n`), 150);
    const got = await loadMasterKey({ env: {}, keyFile });
    assert.equal(got.key.toString('hex'), full);
  });

  test('an empty key file that never fills is an error after a short wait', async () => {
    const keyFile = fresh();
    await loadMasterKey({ env: {}, keyFile });
    writeFileSync(keyFile, '', { mode: 0o600 });
    await assert.rejects(loadMasterKey({ env: {}, keyFile }), /master key file .* it is empty/);
  });

  test('concurrent starts in one process agree on the key', async () => {
    const keyFile = fresh();
    const all = await Promise.all(Array.from({ length: 8 }, () => loadMasterKey({ env: {}, keyFile })));
    assert.equal(new Set(all.map((k) => k.key.toString('hex'))).size, 1);
    assert.equal(all.filter((k) => k.source === 'created').length, 1);
  });

  test('processes starting at once agree on the key; exactly one creates it', async () => {
    const keyFile = fresh();
    const child = siblingScript(import.meta.url, 'load-key-child');
    const run = () =>
      new Promise<{ fingerprint: string; source: string }>((resolve, reject) => {
        const p = spawn(process.execPath, [...child.execArgv, child.path, keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('error', reject);
        p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}: ${err}`))));
      });
    const results = await Promise.all(Array.from({ length: 4 }, run));
    const key = (await loadMasterKey({ env: {}, keyFile })).key;
    assert.deepEqual(new Set(results.map((r) => r.fingerprint)), new Set([keyFingerprint(key)]));
    assert.equal(results.filter((r) => r.source === 'created').length, 1);
  });
});

test('parseMasterKey names where the bad key came from', () => {
  assert.throws(() => parseMasterKey('nope', 'master key file /etc/ferry/key'), /^SecretError: master key file \/etc\/ferry\/key must be/);
});
