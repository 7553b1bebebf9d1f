// `ferry scan` on real repositories: one planted secret of each rule, the false positives it must
// pass over, the allow comment, the ignore file, binary and large files, JSON, exit codes, and a
// job calling it. The fake secrets are put together at run time (prefix + random characters),
// so no line of this file looks like a secret to a scan of Ferry's own repository.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RE2JS } from 're2js';
import { makeRepo } from '../helpers/repo.js';
import { ferry } from '../helpers/ferry-cli.js';
import { RULES, shannonEntropy } from '../../src/scan/rules.js';
import { globToRegExp, parseIgnore } from '../../src/scan/ignore.js';
import { scanDirectory, scanText } from '../../src/scan/scan.js';

const ALNUM = 'ABCDEFGHJKLMNPQRSTUVWZabcdefghijkmnopqrstuvwz0123456789';
const UPPER32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B64 = ALNUM + '+/';

/** Random-looking but the same at every run (a tiny LCG), so failures can be reproduced. */
function chars(n: number, alphabet = ALNUM, seed = n): string {
  let x = seed * 7919 + 17;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += alphabet[Math.floor((x / 2147483648) * alphabet.length)];
  }
  return s;
}

/** One secret of each rule, in the file and shape where people leave them. */
const PLANTED = {
  'aws-access-key-id': 'AK' + 'IA' + chars(16, UPPER32),
  'aws-secret-access-key': chars(40, B64, 3),
  'private-key': 'MIIE' + chars(60, B64, 5),
  'github-token': 'gh' + 'p_' + chars(36),
  'github-fine-grained': 'github' + '_pat_' + chars(22, ALNUM, 1) + '_' + chars(59, ALNUM, 2),
  'gitlab-token': 'glp' + 'at-' + chars(20, ALNUM, 4),
  'slack-token': 'xo' + 'xb-' + '73920158463-' + '2840193756102-' + chars(24, ALNUM, 6),
  'slack-webhook': 'T0' + chars(8, UPPER32, 7) + '/B0' + chars(8, UPPER32, 8) + '/' + chars(24, ALNUM, 9),
  'stripe-live-key': 'sk' + '_live_' + chars(24, ALNUM, 10),
  'google-api-key': 'AI' + 'za' + chars(35, ALNUM, 11),
  'npm-token': 'np' + 'm_' + chars(36, ALNUM, 12),
  'generic-secret': chars(18, ALNUM, 13),
  'env-secret': chars(24, ALNUM, 14),
};

const PLANTED_FILES: Record<string, string> = {
  'config/aws.ts': `export const accessKeyId = "${PLANTED['aws-access-key-id']}";\n`,
  'config/credentials': `[default]\naws_secret_access_key = ${PLANTED['aws-secret-access-key']}\n`,
  'deploy/id_rsa': `-----BEGIN ${'RSA PRIVATE'} KEY-----\n${PLANTED['private-key']}\n${chars(64, B64, 15)}\n-----END RSA ${'PRIVATE'} KEY-----\n`,
  'scripts/release.sh': `#!/bin/sh\ncurl -H "Authorization: token ${PLANTED['github-token']}" https://api.github.com/user\n`,
  'scripts/fine.sh': `GH=${PLANTED['github-fine-grained']} gh api /user\n`,
  '.gitlab-ci.yml': `variables:\n  PUSH_TOKEN_VALUE: "${PLANTED['gitlab-token']}"\n`,
  'notify.py': `import os\n\nclient = WebClient(os.environ.get("SLACK", "${PLANTED['slack-token']}"))\n`,
  'notify.json': `{ "url": "https://hooks.slack.com/services/${PLANTED['slack-webhook']}" }\n`,
  'billing.rb': `Stripe.api_key = '${PLANTED['stripe-live-key']}'\n`,
  'web/maps.html': `<script src="https://maps.googleapis.com/maps/api/js?key=${PLANTED['google-api-key']}"></script>\n`,
  '.npmrc': `//registry.npmjs.org/:_authToken=${PLANTED['npm-token']}\n`,
  'src/db.js': `const pool = new Pool({\n  host: 'db',\n  password: "${PLANTED['generic-secret']}",\n});\n`,
};

/** Where each rule must find its secret: file, line, column. */
const EXPECTED: [string, string, number, number][] = [
  ['aws-access-key-id', 'config/aws.ts', 1, 29],
  ['aws-secret-access-key', 'config/credentials', 2, 1],
  ['private-key', 'deploy/id_rsa', 1, 1],
  ['github-token', 'scripts/release.sh', 2, 31],
  ['github-token', 'scripts/fine.sh', 1, 4],
  ['gitlab-token', '.gitlab-ci.yml', 2, 22],
  ['slack-token', 'notify.py', 3, 45],
  ['slack-webhook', 'notify.json', 1, 19],
  ['stripe-live-key', 'billing.rb', 1, 19],
  ['google-api-key', 'web/maps.html', 1, 58],
  ['npm-token', '.npmrc', 1, 34],
  ['generic-secret', 'src/db.js', 3, 3],
  ['env-secret', '.env', 1, 1],
];

/** What a scan must pass over: placeholders, templates, references, documentation's keys. */
const NOT_SECRETS = `
password = "changeme"
PASSWORD="\${DB_PASSWORD}"
api_key: "<your api key>"
token: "{{ .Values.apiToken }}"
secret = "xxxxxxxxxxxxxxxxxxxx"
aws_access_key_id = ${'AKIA'}IOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY${'EXAMPLE'}KEY
token_url = "https://auth.example.com/oauth2/v1/token"
password_hash = "$2b$12$${chars(22, ALNUM, 20)}"
const cancelToken = source.token;
withXSRFToken: defaultToConfig2,
TOKEN=\${{ secrets.TOKEN }}
apiKey: process.env.API_KEY_V2
export const PEM_HEADER = '-----BEGIN ${'PRIVATE'} KEY-----';
secret: "correct horse battery staple 42"
authToken = "short1"
`;

test('every rule compiles with RE2 (linear time), has a unique id and a prefilter', () => {
  const ids = new Set<string>();
  for (const r of RULES) {
    assert.ok(!ids.has(r.id), `duplicate rule id ${r.id}`);
    ids.add(r.id);
    assert.doesNotThrow(() => RE2JS.compile(r.pattern.source, r.pattern.flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0), r.id);
    assert.ok(r.keywords.length > 0 && r.keywords.every((k) => k === k.toLowerCase()), `${r.id}: lowercase keywords`);
  }
  assert.ok(shannonEntropy('aaaaaaaa') === 0);
  assert.ok(shannonEntropy(PLANTED['generic-secret']) > 3.5);
});

test('each kind of secret is found where it is, redacted; the CLI exits 1 and never prints one', async () => {
  const repo = makeRepo({ ...PLANTED_FILES, 'README.md': '# shop\n' });
  repo.write('.env', `API_TOKEN=${PLANTED['env-secret']}\n`); // untracked, not ignored: scanned
  const result = await scanDirectory(repo.dir);
  assert.equal(result.source, 'git');
  const got = result.findings.map((f) => [f.rule, f.file, f.line, f.column]);
  assert.deepEqual(
    [...got].sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    [...EXPECTED].sort((a, b) => a[1].localeCompare(b[1])),
  );
  for (const f of result.findings) assert.match(f.excerpt, /^.{4}…$/u);

  const cli = await ferry(['scan'], repo.dir);
  assert.equal(cli.code, 1, cli.out);
  assert.match(cli.stdout, new RegExp(`^config/aws\\.ts:1:29  aws-access-key-id  AWS access key ID  \\(AKIA…\\)$`, 'm'));
  assert.match(cli.stdout, /^\.npmrc:1:34  npm-token  npm access token  \(npm_…\)$/m);
  assert.match(cli.stdout, /13 secrets found in 13 files \(14 files scanned\)/);
  const json = await ferry(['scan', '--json'], repo.dir);
  assert.equal(json.code, 1);
  for (const [name, secret] of Object.entries(PLANTED)) {
    for (const out of [cli.out, json.out]) {
      assert.ok(!out.includes(secret.slice(4, 12)), `${name}: part of the secret printed`);
    }
  }
  // From elsewhere, paths are shown as the person would open them.
  const fromParent = await ferry(['scan', repo.dir.split('/').pop()!], join(repo.dir, '..'));
  assert.match(fromParent.stdout, new RegExp(`^${repo.dir.split('/').pop()}/config/aws\\.ts:1:29 `, 'm'));
});

test('a clean repository, and placeholders, templates and documentation keys, exit 0', async () => {
  const repo = makeRepo({ 'app.conf': NOT_SECRETS, 'src/index.js': 'console.log("hello")\n' });
  const found = scanText(NOT_SECRETS, 'app.conf').findings;
  assert.deepEqual(found, [], JSON.stringify(found));
  const cli = await ferry(['scan'], repo.dir);
  assert.equal(cli.code, 0, cli.out);
  assert.equal(cli.stdout, 'No secrets found (2 files scanned).\n');
});

test('ferry-scan:allow on the line passes a finding over; other findings still count', async () => {
  const key = PLANTED['github-token'];
  const text = `a = "${key}"  # ferry-scan:allow (a revoked token in a test)\nb = "${key}"\n`;
  const { findings, allowed } = scanText(text, 'x.py');
  assert.equal(allowed, 1);
  assert.deepEqual(findings.map((f) => f.line), [2]);
  // A key in a string, its line breaks escaped (a service account's JSON, a test's constant).
  const inline = `const KEY = "-----BEGIN ${'EC PRIVATE'} KEY-----\\n${PLANTED['private-key']}\\n-----END EC ${'PRIVATE'} KEY-----";`;
  assert.deepEqual(scanText(inline, 'k.js').findings.map((f) => [f.rule, f.column]), [['private-key', 14]]);
  assert.deepEqual(scanText(`${inline} // ferry-scan:allow`, 'k.js'), { findings: [], allowed: 1 });
});

test('.ferry-scan-ignore: globs like .gitignore, with ! to take a path back', async () => {
  const token = `token = "${PLANTED['generic-secret']}"\n`;
  const repo = makeRepo({
    '.ferry-scan-ignore': '# fixtures hold fake keys\ntest/fixtures/\n*.pem\n!keep.pem\n/top.txt\n',
    'test/fixtures/a/creds.txt': token,
    'certs/server.pem': token,
    'certs/keep.pem': token,
    'top.txt': token,
    'sub/top.txt': token,
  });
  const r = await scanDirectory(repo.dir);
  assert.deepEqual(r.findings.map((f) => f.file).sort(), ['certs/keep.pem', 'sub/top.txt']);
  assert.equal(r.skipped.ignored, 3);
  const cli = await ferry(['scan'], repo.dir);
  assert.match(cli.stdout, /2 secrets found in 2 files \(3 files scanned; skipped 3 in \.ferry-scan-ignore\)/);

  const match = (glob: string, path: string) => globToRegExp(glob).test(path);
  assert.ok(match('*.log', 'a/b/c.log') && !match('*.log', 'a/b/c.log.txt'));
  assert.ok(match('docs/*.md', 'docs/a.md') && !match('docs/*.md', 'x/docs/a.md') && !match('docs/*.md', 'docs/a/b.md'));
  assert.ok(match('docs/**/*.md', 'docs/a/b/c.md') && match('docs/**/*.md', 'docs/c.md'));
  assert.ok(match('vendor', 'vendor/x.js') && match('vendor', 'a/vendor/x.js') && match('vendor', 'vendor'));
  assert.ok(match('build/', 'build/x') && !match('build/', 'build'));
  assert.ok(match('fil?.txt', 'file.txt') && !match('fil?.txt', 'fil/.txt') && !match('a.b', 'aXb'));
  assert.equal(parseIgnore('')('anything'), false);
});

test('binary files and files over 1 MiB are skipped; git-ignored files are not read', async () => {
  const token = `password = "${PLANTED['generic-secret']}"\n`;
  const repo = makeRepo({ '.gitignore': 'secrets.local\n', 'ok.txt': 'fine\n' });
  writeFileSync(join(repo.dir, 'image.bin'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0]), Buffer.from(token)]));
  writeFileSync(join(repo.dir, 'big.sql'), token + 'x'.repeat(1024 * 1024));
  writeFileSync(join(repo.dir, 'secrets.local'), token);
  repo.commit('binary and big');
  const r = await scanDirectory(repo.dir);
  assert.deepEqual(r.findings, []);
  assert.deepEqual(r.skipped, { binary: 1, large: 1, ignored: 0, unreadable: 0 });
  assert.equal(r.scanned, 2, 'ok.txt and .gitignore');
});

test('outside git: every file but .git, node_modules and .ferry; --json; a missing folder exits 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-scan-'));
  const token = `API_KEY=${PLANTED['env-secret']}\n`;
  for (const sub of ['node_modules/lib', '.ferry/work', 'app']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'node_modules/lib/x.env'), token);
  writeFileSync(join(dir, '.ferry/work/x.env'), token);
  writeFileSync(join(dir, 'app/.env'), token);
  const r = await ferry(['scan', '--json', dir], tmpdir());
  assert.equal(r.code, 1, r.out);
  const json = JSON.parse(r.stdout);
  assert.equal(json.source, 'walk');
  assert.equal(json.scanned, 1);
  assert.deepEqual(json.findings, [{ file: 'app/.env', line: 1, column: 1, rule: 'env-secret', description: 'Secret in a KEY=value line', excerpt: PLANTED['env-secret'].slice(0, 4) + '…' }]);

  const missing = await ferry(['scan', join(dir, 'nope')], tmpdir());
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /nope: no such folder/);
  const help = await ferry(['scan', '--help'], tmpdir());
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n {2}ferry scan /);
});

test('a job runs `ferry scan` from its PATH: the pipeline fails on a secret and passes once it is gone', async () => {
  const repo = makeRepo({
    'ferry.yml': 'scan:\n  script: [command -v ferry, ferry scan]\n',
    'src/config.js': `module.exports = { apiKey: "${PLANTED['google-api-key']}" };\n`,
  });
  const failed = await ferry(['run'], repo.dir);
  assert.equal(failed.code, 1, failed.out);
  assert.match(failed.stdout, /\/bin\/ferry/, 'the launcher of this Ferry');
  assert.match(failed.stdout, /src\/config\.js:1:29 {2}google-api-key {2}Google API key {2}\(AIza…\)/);
  assert.ok(!failed.out.includes(PLANTED['google-api-key'].slice(4, 14)), 'the secret is not in the log');
  repo.write('src/config.js', 'module.exports = { apiKey: process.env.MAPS_KEY };\n');
  repo.commit('read the key from the environment');
  const passed = await ferry(['run'], repo.dir);
  assert.equal(passed.code, 0, passed.out);
  assert.match(passed.stdout, /No secrets found \(2 files scanned\)/);
});
