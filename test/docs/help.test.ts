// Every command of the real CLI, and every subcommand under it, prints help with examples: an
// "Examples:" section with at least one line that starts with `ferry <that command>`. The commands
// are read from `ferry --help` (and from each command's own "Commands:" list), so a new command
// is checked without touching this file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

function help(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, ...args, '--help'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1', COLUMNS: '100' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`ferry ${args.join(' ')} --help failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The names in a help text's "Commands:" section (commander prints two spaces, then the name). */
export function commandsOf(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'Commands:');
  if (start < 0) return [];
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    const m = /^ {2}([a-z][\w-]*)/.exec(line);
    if (m && m[1] !== 'help') names.push(m[1]!);
  }
  return names;
}

/** The lines of a help text's "Examples:" section, up to the first blank line. */
export function examplesOf(text: string): string[] | null {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'Examples:');
  if (start < 0) return null;
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    out.push(line.trim());
  }
  return out;
}

async function walk(): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  let level = commandsOf(await help([])).map((c) => [c]);
  while (level.length) {
    const next: string[][] = [];
    // A few at a time: each is a node process.
    for (let i = 0; i < level.length; i += 6) {
      const batch = level.slice(i, i + 6);
      const got = await Promise.all(batch.map((path) => help(path)));
      batch.forEach((path, k) => {
        texts.set(path.join(' '), got[k]!);
        for (const sub of commandsOf(got[k]!)) next.push([...path, sub]);
      });
    }
    level = next;
  }
  return texts;
}

describe('ferry <command> --help', { timeout: 300_000 }, () => {
  it('reads commands and examples the way commander prints them', () => {
    const text = 'Usage: x\n\nCommands:\n  set [options] <name>  Create or replace a secret; the value is read\n                        from standard input.\n  list [options]        The names.\n  help [command]        display help\n\nExamples:\n  ferry secret list --project 1\n  printf x | ferry secret set A\n\nMore.';
    assert.deepEqual(commandsOf(text), ['set', 'list']);
    assert.deepEqual(examplesOf(text), ['ferry secret list --project 1', 'printf x | ferry secret set A']);
    assert.equal(examplesOf('Usage: x'), null);
  });

  it('has an Examples section, with `ferry <command> ...` lines, for every command and subcommand', async () => {
    const texts = await walk();
    // The walk found the commands it should: top-level ones and nested ones.
    for (const c of ['run', 'validate', 'server', 'runner', 'edge', 'status', 'promote', 'secret set', 'audit verify']) assert.ok(texts.has(c), `ferry ${c} was not found in the help`);
    const missing: string[] = [];
    for (const [path, text] of texts) {
      const examples = examplesOf(text);
      if (examples === null) missing.push(`ferry ${path}: no "Examples:" section`);
      else if (!examples.some((l) => l === `ferry ${path}` || l.startsWith(`ferry ${path} `))) missing.push(`ferry ${path}: no example line starting with "ferry ${path}"`);
    }
    assert.deepEqual(missing, []);
  });
});
