import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;

const good: [string | number, number][] = [
  ['30s', 30 * S],
  ['10m', 10 * M],
  ['1h30m', 90 * M],
  ['2h30m', 150 * M],
  ['1h 30m', 90 * M],
  ['90s', 90 * S],
  ['1 hour', H],
  ['2 hours 5 minutes', 2 * H + 5 * M],
  ['1 hour and 30 minutes', 90 * M],
  ['1 hour, 30 minutes', 90 * M],
  ['3 mins', 3 * M],
  ['1 min', M],
  ['1d', 24 * H],
  ['1 week', 7 * 24 * H],
  ['2 days', 48 * H],
  ['1.5h', 90 * M],
  ['500ms', 500],
  ['90', 90 * S],
  [' 10M ', 10 * M],
  [90, 90 * S],
  [0, 0],
  ['64h', 64 * H],
];

const badInputs: (string | number)[] = ['', 'never', '10 minuts', 'soon', '10 m x', 'h', '-5s', -1, Number.NaN, '1h30', 'm10'];

describe('parseDuration', () => {
  for (const [input, ms] of good) {
    it(`${JSON.stringify(input)} = ${ms}ms`, () => assert.equal(parseDuration(input), ms));
  }
  for (const input of badInputs) {
    it(`${JSON.stringify(input)} is not a duration`, () => assert.equal(parseDuration(input), null));
  }
});

describe('formatDuration', () => {
  it('prints compact forms', () => {
    assert.equal(formatDuration(90 * M), '1h30m');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(24 * H + 1500), '1d1s500ms');
  });
});
