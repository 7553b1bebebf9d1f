import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Automaton } from '../../src/secrets/aho.js';

/** Length of the longest pattern ending at each position, and how much of the text's end may still grow into one. */
function run(a: Automaton, text: string): { longest: number[]; live: number } {
  let node = 0;
  const longest: number[] = [];
  for (let i = 0; i < text.length; i++) {
    node = a.step(node, text.charCodeAt(i));
    longest.push(a.match[node] < 0 ? 0 : a.depth[a.match[node]]);
  }
  return { longest, live: a.liveDepth[node] };
}

function brute(patterns: string[], text: string): { longest: number[]; live: number } {
  const longest: number[] = new Array(text.length).fill(0);
  for (let end = 1; end <= text.length; end++) {
    for (const p of patterns) if (p.length <= end && text.startsWith(p, end - p.length)) longest[end - 1] = Math.max(longest[end - 1], p.length);
  }
  let live = 0;
  for (let k = 1; k <= text.length; k++) {
    const tail = text.slice(text.length - k);
    if (patterns.some((p) => p.length > k && p.startsWith(tail))) live = k;
  }
  return { longest, live };
}

test('dense rows, sparse nodes and brute force agree', () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const word = (n: number) => Array.from({ length: n }, () => 'abcé🔑'[Math.floor(rand() * 6)] ?? 'a').join('');
  for (let round = 0; round < 200; round++) {
    const patterns = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => word(1 + Math.floor(rand() * 6)));
    const text = word(60);
    const want = brute(patterns, text);
    // A budget of one row leaves every node but the root sparse; the default makes them all dense.
    for (const budget of [1, 1 << 20]) assert.deepEqual(run(new Automaton(patterns, budget), text), want, `${round} ${budget} ${JSON.stringify(patterns)}`);
  }
});
