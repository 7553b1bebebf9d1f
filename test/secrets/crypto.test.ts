import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  encryptSecret,
  decryptSecret,
  keyFingerprint,
  validateSecretName,
  validateSecretValue,
  SecretError,
  MAX_SECRET_VALUE_BYTES,
} from '../../src/secrets/crypto.js';

const key = randomBytes(32);
const otherKey = randomBytes(32);
const AAD = 'shop/production/DATABASE_PASSWORD';
const PLAIN = 'correct horse battery staple';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SecretError, String(err));
    return err.code;
  }
  return undefined;
}

describe('encryptSecret / decryptSecret', () => {
  const values = ['', PLAIN, 'multi\nline\r\nvalue\n', 'пароль 🔑 ünïcödé', 'x'.repeat(MAX_SECRET_VALUE_BYTES), 'v1:a:b:c'];
  for (const value of values) {
    test(`round trip of ${JSON.stringify(value.slice(0, 20))} (${value.length} chars)`, () => {
      const sealed = encryptSecret(key, value, AAD);
      assert.match(sealed, /^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]{22}==:[A-Za-z0-9+/]*={0,2}$/);
      assert.equal(decryptSecret(key, sealed, AAD), value);
    });
  }

  test('a fresh IV for every value: the same plaintext never seals the same way', () => {
    const sealed = new Set(Array.from({ length: 50 }, () => encryptSecret(key, PLAIN, AAD)));
    assert.equal(sealed.size, 50);
    assert.equal(new Set([...sealed].map((s) => s.split(':')[1])).size, 50);
  });

  const sealed = encryptSecret(key, PLAIN, AAD);
  const [v, iv, tag, ct] = sealed.split(':');
  const flip = (b64: string) => {
    const buf = Buffer.from(b64, 'base64');
    buf[0] ^= 1;
    return buf.toString('base64');
  };
  const failures: Array<{ name: string; run: () => unknown; code: string }> = [
    { name: 'another place (row copied)', run: () => decryptSecret(key, sealed, 'shop/staging/DATABASE_PASSWORD'), code: 'decrypt-failed' },
    { name: 'another key', run: () => decryptSecret(otherKey, sealed, AAD), code: 'decrypt-failed' },
    { name: 'altered ciphertext', run: () => decryptSecret(key, [v, iv, tag, flip(ct)].join(':'), AAD), code: 'decrypt-failed' },
    { name: 'altered tag', run: () => decryptSecret(key, [v, iv, flip(tag), ct].join(':'), AAD), code: 'decrypt-failed' },
    { name: 'altered IV', run: () => decryptSecret(key, [v, flip(iv), tag, ct].join(':'), AAD), code: 'decrypt-failed' },
    { name: 'truncated ciphertext', run: () => decryptSecret(key, [v, iv, tag, ct.slice(0, 8)].join(':'), AAD), code: 'decrypt-failed' },
    { name: 'unknown version', run: () => decryptSecret(key, ['v2', iv, tag, ct].join(':'), AAD), code: 'bad-sealed-value' },
    { name: 'missing part', run: () => decryptSecret(key, [v, iv, ct].join(':'), AAD), code: 'bad-sealed-value' },
    { name: 'not base64', run: () => decryptSecret(key, [v, iv, tag, 'no*pe'].join(':'), AAD), code: 'bad-sealed-value' },
    { name: 'short IV', run: () => decryptSecret(key, [v, 'AAAA', tag, ct].join(':'), AAD), code: 'bad-sealed-value' },
    { name: 'plaintext stored by mistake', run: () => decryptSecret(key, PLAIN, AAD), code: 'bad-sealed-value' },
    { name: 'short key', run: () => decryptSecret(key.subarray(0, 16), sealed, AAD), code: 'bad-master-key' },
  ];
  for (const f of failures) {
    test(`fails on ${f.name}, saying neither plaintext nor key`, () => {
      let message = '';
      try {
        f.run();
        assert.fail('decrypted');
      } catch (err) {
        assert.ok(err instanceof SecretError, String(err));
        assert.equal(err.code, f.code);
        message = `${err.message} ${err.stack}`;
      }
      for (const leak of [PLAIN, 'horse', key.toString('hex'), key.toString('base64'), otherKey.toString('hex')]) {
        assert.ok(!message.includes(leak), message);
      }
    });
  }

  test('the decrypt error names the place, for the operator', () => {
    assert.throws(() => decryptSecret(otherKey, sealed, AAD), /shop\/production\/DATABASE_PASSWORD.*master key/);
  });

  test('refuses what it will not store', () => {
    assert.equal(codeOf(() => encryptSecret(key, 'x'.repeat(MAX_SECRET_VALUE_BYTES + 1), AAD)), 'bad-value');
    assert.equal(codeOf(() => encryptSecret(key, 'é'.repeat(MAX_SECRET_VALUE_BYTES / 2 + 1), AAD)), 'bad-value');
    assert.equal(codeOf(() => encryptSecret(key, 'a\0b', AAD)), 'bad-value');
    assert.equal(codeOf(() => encryptSecret(Buffer.alloc(31), PLAIN, AAD)), 'bad-master-key');
  });
});

test('keyFingerprint: first 8 hex digits of the key\'s SHA-256', () => {
  assert.equal(keyFingerprint(key), createHash('sha256').update(key).digest('hex').slice(0, 8));
  assert.match(keyFingerprint(key), /^[0-9a-f]{8}$/);
  assert.notEqual(keyFingerprint(key), keyFingerprint(otherKey));
});

describe('validateSecretName', () => {
  const ok = ['A', '_', 'DATABASE_URL', 'X1', '_PRIVATE', 'A'.repeat(128)];
  const bad: Array<[string, RegExp]> = [
    ['', /needs a name/],
    ['lower', /upper-case letters/],
    ['1ABC', /not starting with a digit/],
    ['WITH-DASH', /upper-case/],
    ['WITH SPACE', /upper-case/],
    ['ÜBER', /upper-case/],
    ['A'.repeat(129), /at most 128/],
    ['FERRY_BRANCH', /reserved/],
  ];
  for (const name of ok) test(`accepts ${name.slice(0, 20)}`, () => validateSecretName(name));
  for (const [name, why] of bad) {
    test(`rejects ${JSON.stringify(name.slice(0, 20))}`, () => {
      assert.equal(codeOf(() => validateSecretName(name)), 'bad-name');
      assert.throws(() => validateSecretName(name), why);
    });
  }
});

test('validateSecretValue: the size limit is in UTF-8 bytes and the message gives the size only', () => {
  validateSecretValue('x'.repeat(MAX_SECRET_VALUE_BYTES));
  const big = 'secretpart'.repeat(7000);
  assert.throws(() => validateSecretValue(big), (err: Error) => /70000 bytes; at most 65536/.test(err.message) && !err.message.includes('secretpart'));
});
