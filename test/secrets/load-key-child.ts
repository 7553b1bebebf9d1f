// Started several times at once by master-key.test.ts: each process loads (or creates) the key.
import { loadMasterKey, keyFingerprint } from '../../src/secrets/crypto.js';

const { key, source } = await loadMasterKey({ env: {}, keyFile: process.argv[2] });
process.stdout.write(JSON.stringify({ fingerprint: keyFingerprint(key), source }));
