// `.ferry-scan-ignore`: paths `ferry scan` passes over (test fixtures with fake keys, vendored
// files), one glob a line, read like a .gitignore: `#` comments, `!` to take a path back, a
// pattern without a `/` matches at any depth, one with a `/` (or starting with one) from the
// scanned folder, a trailing `/` only folders, and a folder's pattern everything under it.
// `*` and `?` stay within a path segment, `**` crosses them. Matched here rather than with a glob
// library: picomatch only comes in through tinyglobby, and these few rules are all we need.

export const IGNORE_FILE = '.ferry-scan-ignore';

interface IgnoreRule {
  negate: boolean;
  re: RegExp;
}

/** A glob as a regular expression over a `/`-separated path relative to the scanned folder. */
export function globToRegExp(glob: string): RegExp {
  let g = glob;
  const dirOnly = g.endsWith('/');
  g = g.replace(/\/+$/, '');
  const anchored = g.includes('/');
  g = g.replace(/^\/+/, '');
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*' && g[i + 1] === '*') {
      i++;
      if (g[i + 1] === '/') {
        re += '(?:.*/)?';
        i++;
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${anchored ? '^' : '^(?:.*/)?'}${re}${dirOnly ? '/.*' : '(?:/.*)?'}$`);
}

/** The ignore file's text as a test of a relative path; the last pattern that matches decides. */
export function parseIgnore(text: string): (path: string) => boolean {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    rules.push({ negate, re: globToRegExp(negate ? line.slice(1) : line) });
  }
  return (path) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(path)) ignored = !r.negate;
    return ignored;
  };
}
