// The runner's log sender on its own: what is written while a slot is free goes at once (after
// a few ms), what is written while every slot is busy goes in the next batch, batches are
// numbered in order, no request over the byte cap, failed requests are tried again with their
// number, and a full log stops sending. The server side of the
// same path runs with real runners in test/server (logs, log-follow, runners).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogSender } from '../../src/runner/log-sender.js';
import type { LogChunkWire, LogsAnswerWire } from '../../src/runner/protocol.js';

const chunk = (text: string): LogChunkWire => ({ stream: 'stdout', at: Date.now(), text });

/** A server that answers each request when the test says so. */
function server() {
  const batches: string[][] = [];
  const numbers: number[] = [];
  const answers: ((a: LogsAnswerWire) => void)[] = [];
  const send = (batch: LogChunkWire[], number: number) => {
    batches.push(batch.map((c) => c.text));
    numbers.push(number);
    return new Promise<LogsAnswerWire>((resolve) => answers.push(resolve));
  };
  return { batches, numbers, send, answer: (a: LogsAnswerWire = { accepted: 1 }) => answers.shift()!(a) };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

test('with one slot: one request at a time; what comes meanwhile goes in the next, in order', async () => {
  const s = server();
  const sender = new LogSender({ send: s.send, onError: (e) => assert.fail(e as Error), gatherMs: 5, maxInFlight: 1 });
  sender.push(chunk('a'));
  sender.push(chunk('b'));
  await tick();
  assert.deepEqual(s.batches, [['a', 'b']], 'a burst goes together, without waiting for more');
  sender.push(chunk('c'));
  sender.push(chunk('d'));
  await tick();
  assert.equal(s.batches.length, 1, 'nothing more while the first request is in flight');
  s.answer();
  await tick();
  assert.deepEqual(s.batches, [['a', 'b'], ['c', 'd']]);
  const flushed = sender.flush();
  s.answer();
  await flushed;
  assert.equal(s.batches.length, 2);
});

test('no request carries more than maxBatchBytes (but always at least one chunk)', async () => {
  const s = server();
  const sender = new LogSender({ send: s.send, onError: (e) => assert.fail(e as Error), gatherMs: 1, maxBatchBytes: 10, maxInFlight: 1 });
  for (const t of ['12345', '67890', 'abc', 'a-chunk-over-the-cap', 'z']) sender.push(chunk(t));
  const flushed = sender.flush();
  for (let i = 0; i < 4; i++) {
    await tick(5);
    s.answer();
  }
  await flushed;
  assert.deepEqual(s.batches, [['12345', '67890'], ['abc'], ['a-chunk-over-the-cap'], ['z']]);
});

test('two batches in flight by default, numbered in the order they were written; a third waits for a slot', async () => {
  const s = server();
  const sender = new LogSender({ send: s.send, onError: (e) => assert.fail(e as Error), gatherMs: 1 });
  sender.push(chunk('a'));
  await tick();
  sender.push(chunk('b'));
  await tick();
  sender.push(chunk('c'));
  sender.push(chunk('d'));
  await tick();
  assert.deepEqual(s.batches, [['a'], ['b']], 'two requests out, none answered');
  s.answer();
  await tick();
  assert.deepEqual(s.batches, [['a'], ['b'], ['c', 'd']], 'a freed slot takes everything written meanwhile');
  assert.deepEqual(s.numbers, [1, 2, 3]);
  const flushed = sender.flush();
  s.answer();
  s.answer();
  await flushed;
});

test('a failed request is sent again with its number; a fatal error or the last failed try gives the batch up', async () => {
  const s = server();
  const errors: unknown[] = [];
  const fails = new Map<string, number>([['flaky', 1], ['down', 99]]);
  const tried: [string, number][] = [];
  const sender = new LogSender({
    send: (b, n) => {
      const text = b[0]!.text;
      tried.push([text, n]);
      if (text === 'lost') return Promise.reject(new Error('lease lost'));
      const left = fails.get(text) ?? 0;
      if (left > 0) {
        fails.set(text, left - 1);
        return Promise.reject(new Error('connection reset'));
      }
      return s.send(b, n);
    },
    isFatal: (e) => (e as Error).message === 'lease lost',
    onError: (e) => errors.push(e),
    gatherMs: 1,
    maxInFlight: 1,
    tries: 3,
    retryDelayMs: 1,
  });
  sender.push(chunk('flaky'));
  await tick();
  s.answer();
  await sender.flush();
  assert.deepEqual(tried, [['flaky', 1], ['flaky', 1]], 'sent again under the same number');
  sender.push(chunk('down'));
  await sender.flush();
  assert.deepEqual(tried.slice(2), [['down', 2], ['down', 2], ['down', 2]], 'three tries, then given up');
  sender.push(chunk('lost'));
  await sender.flush();
  assert.deepEqual(tried.slice(5), [['lost', 3]], 'a fatal error is not tried again');
  assert.deepEqual(errors.map((e) => (e as Error).message), ['connection reset', 'lease lost']);
});

test('a full log (the server says truncated) stops sending', async () => {
  const s = server();
  const sender = new LogSender({ send: s.send, onError: (e) => assert.fail(e as Error), gatherMs: 1, maxInFlight: 1 });
  sender.push(chunk('kept'));
  await tick();
  sender.push(chunk('late'));
  s.answer({ accepted: 1, truncated: true });
  await sender.flush();
  assert.equal(sender.cut, true);
  sender.push(chunk('after the cut'));
  await sender.flush();
  assert.deepEqual(s.batches, [['kept']], 'nothing after the server cut the log');
});
