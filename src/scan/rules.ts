// What `ferry scan` looks for: credentials whose shape is known (a provider's prefix and length),
// and `password = "..."` style assignments whose value looks random. Precision first: a scan
// that cries wolf gets switched off, so every rule is narrow and values that are plainly
// placeholders or templates are passed over.
//
// The patterns are JavaScript regular expressions kept within RE2's syntax (no lookaround, no
// backreferences) and without nested quantifiers, so no input makes them backtrack for long; a
// test compiles each one with re2js to keep it that way. They run over a whole file (the `g` and
// `d` flags are added by the scanner), so a key block can span lines. The first capture group
// that took part in a match (a rule may have alternatives) is the secret itself: what is checked
// and redacted.

export interface Rule {
  id: string;
  description: string;
  pattern: RegExp;
  /** Lowercase strings one of which the file must contain before the pattern runs (cheap prefilter). */
  keywords: string[];
  /** A last look at a candidate; false passes it over. `before`: the matched text before the secret (its key). */
  accept?(secret: string, before: string): boolean;
}

/** Shannon entropy of a string, in bits per character: ~4-6 for random tokens, ~2-3 for words. */
export function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  const n = [...s].length;
  for (const c of counts.values()) {
    const p = c / n;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** Documentation's sample keys say so, and a run of one character is nobody's real token. */
function looksFake(secret: string): boolean {
  return /example|x{4}|(.)\1{5}/i.test(secret);
}

// Values of a generic assignment that are not secrets: templates and references that are filled
// in elsewhere (${VAR}, {{ .Values.x }}, <your token>, %(name)s, $VAR), and the words people
// write where the secret will go.
const PLACEHOLDER = /\$\{|\{\{|<[^>]*>|%\(|^\$[A-Za-z_]|^\*+$|\.\.\.|…|changeme|change_me|change-me|example|xxx|placeholder|your|dummy|redacted|replace|todo|fixme|sample|fake|test|secret|password|token/i;

/** Key names that hold something about a secret rather than the secret (token_url = "..."). */
const NOT_A_VALUE_KEY = /(?:url|uri|file|path|name|header|type|endpoint|field|prefix|length|len|hash|id)["'\s:=>]*$/i;

/** What a generic assignment's key must contain (the prefilter of the two generic rules). */
const SECRET_KEYWORDS = ['password', 'passwd', 'secret', 'token', 'api_key', 'api-key', 'apikey', 'access_key', 'access-key', 'accesskey'];

/** The threshold the generic rule's values must reach: below it, words and identifiers. */
const GENERIC_MIN_ENTROPY = 3.0;

function randomLooking(value: string): boolean {
  // Real secrets mix letters and digits (a random 16-character base62 string has a digit 94% of
  // the time); identifiers, header names and prose mostly do not.
  if (!/[0-9]/.test(value) || !/[A-Za-z]/.test(value)) return false;
  // A URL or a file path is configuration, not a credential.
  if (/^(?:[a-z][a-z0-9+.-]*:\/\/|(?:urn|mailto|file|data):|\.{0,2}\/|~\/)/i.test(value)) return false;
  // bcrypt and other password hashes are meant to be stored.
  if (/^\$[0-9a-z]{1,3}\$/.test(value)) return false;
  return shannonEntropy(value) >= GENERIC_MIN_ENTROPY;
}

export const RULES: Rule[] = [
  {
    id: 'aws-access-key-id',
    description: 'AWS access key ID',
    pattern: /\b((?:AKIA|ASIA)[A-Z2-7]{16})(?:[^A-Za-z0-9]|$)/,
    keywords: ['akia', 'asia'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'aws-secret-access-key',
    description: 'AWS secret access key',
    pattern: /(?:aws[_.-]?secret[_.-]?(?:access[_.-]?)?key|secret[_.-]?access[_.-]?key)["']?\s{0,5}(?:=|:|=>|:=)\s{0,5}["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)/i,
    keywords: ['secret'],
    accept: (s) => !looksFake(s) && shannonEntropy(s) >= 3.5,
  },
  {
    // The key's body (after the header and any Proc-Type/DEK-Info lines) is what is secret; a
    // header alone (a PEM parser's constant, documentation) is not a key.
    id: 'private-key',
    description: 'Private key',
    pattern: /-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:\s|\\r|\\n){1,8}(?:[A-Za-z-]{1,30}: [^\n]{0,200}(?:\s|\\r|\\n){1,8}){0,4}([A-Za-z0-9+/=]{40,})/,
    keywords: ['private key'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'github-token',
    description: 'GitHub token',
    pattern: /\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?:[^A-Za-z0-9_]|$)/,
    keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'gitlab-token',
    description: 'GitLab token',
    pattern: /\b((?:glpat|glptt|gldt|glrt)-[A-Za-z0-9_-]{20,})/,
    keywords: ['glpat-', 'glptt-', 'gldt-', 'glrt-'],
    accept: (s) => !looksFake(s),
  },
  {
    // Bot and user tokens start with the workspace's numeric id.
    id: 'slack-token',
    description: 'Slack token',
    pattern: /\b(xox[baprs]-[0-9]{6,}-[0-9A-Za-z-]{10,})/,
    keywords: ['xoxb-', 'xoxa-', 'xoxp-', 'xoxr-', 'xoxs-'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'slack-webhook',
    description: 'Slack webhook URL',
    pattern: /hooks\.slack\.com\/(?:services|workflows|triggers)\/([A-Za-z0-9+/_-]{30,})/,
    keywords: ['hooks.slack.com'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'stripe-live-key',
    description: 'Stripe live secret key',
    pattern: /\b((?:sk|rk)_live_[0-9A-Za-z]{24,})/,
    keywords: ['_live_'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'google-api-key',
    description: 'Google API key',
    pattern: /\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)/,
    keywords: ['aiza'],
    accept: (s) => !looksFake(s),
  },
  {
    id: 'npm-token',
    description: 'npm access token',
    pattern: /\b(npm_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)/,
    keywords: ['npm_'],
    accept: (s) => !looksFake(s) && shannonEntropy(s) >= 3.5,
  },
  {
    // Last, so a known token assigned to `token = "..."` is reported under its own rule. A quoted
    // value without spaces (prose is not a key), 12 characters or more: shorter ones are mostly
    // documentation's examples.
    id: 'generic-secret',
    description: 'Hard-coded secret in an assignment',
    pattern: /(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_-]{0,20}["']?\s{0,5}(?:=|:|=>|:=)\s{0,5}["']([^"'\s]{12,200})["']/i,
    keywords: SECRET_KEYWORDS,
    accept: (s, key) => !NOT_A_VALUE_KEY.test(key) && !PLACEHOLDER.test(s) && randomLooking(s),
  },
  {
    // Unquoted values only on a line that is nothing but `KEY=value` or `key: value` (.env,
    // properties, YAML): in code, an unquoted value is an identifier or an expression.
    id: 'env-secret',
    description: 'Secret in a KEY=value line',
    pattern: /(?:^|\n)[ \t]*(?:export[ \t]+)?[A-Za-z0-9_.-]{0,40}(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_.-]{0,20}[ \t]*[=:][ \t]*([A-Za-z0-9/+_=-]{16,200})[ \t]*(?:#[^\n]*)?(?:\r?\n|$)/i,
    keywords: SECRET_KEYWORDS,
    accept: (s, key) => !NOT_A_VALUE_KEY.test(key) && !PLACEHOLDER.test(s) && randomLooking(s),
  },
];
