// Which strings give a secret away. A job rarely prints a secret verbatim by accident; it prints
// it inside a JSON document, a URL, an Authorization header, `echo $S | base64`, or one line of a
// PEM key. Each of those forms becomes a pattern of its own.

export const DEFAULT_MIN_LENGTH = 4;

export interface DerivedPatterns {
  patterns: string[];
  /** How many values were too short to mask (the values themselves are not kept). */
  skipped: number;
}

/**
 * Values whose trimmed length is below `minLength` are skipped: masking "a" or "1" would
 * destroy every log. Derived forms below `minLength` are dropped for the same reason.
 */
export function derivePatterns(values: readonly string[], minLength = DEFAULT_MIN_LENGTH): DerivedPatterns {
  const found = new Set<string>();
  const add = (p: string | undefined) => {
    if (p !== undefined && p.trim().length >= minLength) found.add(p);
  };
  let skipped = 0;
  for (const value of values) {
    if (value.trim().length < minLength) {
      skipped++;
      continue;
    }
    for (const form of textForms(value)) add(form);
    for (const line of value.split(/\r?\n/)) {
      add(line);
      add(line.trim());
    }
    for (const form of base64Forms(value)) add(form);
  }
  return { patterns: [...found], skipped };
}

function textForms(value: string): Array<string | undefined> {
  const json = JSON.stringify(value).slice(1, -1);
  return [
    value,
    // Output through a pseudo-terminal turns every \n into \r\n.
    value.replace(/\r?\n/g, '\r\n'),
    json,
    // Python's json.dumps escapes everything outside ASCII by default.
    json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    uriComponent(value),
    uriComponent(value)?.replace(/%20/g, '+'),
    // application/x-www-form-urlencoded also escapes !'()~, unlike encodeURIComponent.
    new URLSearchParams({ v: value }).toString().slice(2),
  ];
}

function uriComponent(value: string): string | undefined {
  try {
    return encodeURIComponent(value);
  } catch {
    return undefined; // a lone surrogate cannot be URL-encoded, so no tool prints it that way
  }
}

function base64Forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms: string[] = [];
  // `echo "$S" | base64` encodes the trailing newline too.
  for (const b of [bytes, Buffer.concat([bytes, Buffer.from('\n')])]) {
    const std = b.toString('base64');
    const url = b.toString('base64url');
    forms.push(std, std.replace(/=+$/, ''), url, url + '='.repeat(std.length - url.length));
    // base64(1) wraps at 76 columns, openssl at 64: each line is a pattern, and the whole.
    for (const width of [64, 76]) {
      if (std.length <= width) continue;
      const lines = std.match(new RegExp(`.{1,${width}}`, 'g')) ?? [];
      forms.push(lines.join('\n'), ...lines);
    }
  }
  // Inside a larger encoded blob (Basic auth "user:password", a base64 JSON config) the value's
  // characters depend on its byte offset modulo 3; only the characters made of its own bits are
  // stable, so those are the patterns, one per offset.
  for (const shift of [0, 1, 2]) {
    const shifted = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64').replace(/=+$/, '');
    const from = Math.ceil((8 * shift) / 6);
    const to = Math.floor((8 * (shift + bytes.length)) / 6);
    const core = shifted.slice(from, to);
    forms.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return forms;
}
