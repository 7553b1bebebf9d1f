// The runner's log sender on its own: what is written while nothing is in flight goes at once
// (after a few ms), what is written while a request is in flight goes in the next one, in
// order, no request over the byte cap, and a full log stops sending. The server side of the
// same path runs with real runners in test/server (logs, log-follow, runners).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogSender } from '../../src/runner/log-sender.js';
import type { LogChunkWire, LogsAnswerWire } from '../../src/runner/protocol.js';

const chunk = (text: string): LogChunkWire => ({ stream: 'stdout', at: Date.now(), text });

/** A server that answers each request when the test says so. */
function server() {
  const batches: string[][] = [];
  const answers: ((a: LogsAnswerWire) => void)[] = [];
  const send = (batch: LogChunkWire[]) => {
    batches.push(batch.map((c) => c.text));
    return new Promise<LogsAnswerWire>((resolve) => answers.push(resolve));
  };
  return { batches, send, answer: (a: LogsAnswerWire = { accepted: 1 }) => answers.shift()!(a) };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

test('one request at a time; what comes meanwhile goes in the next, in order', async () => {
  const s = server();
  const sender = new LogSender({ send: s.send, onError: (e) => assert.fail(e as Error), gatherMs: 5 });
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
  const sender = new LogSender({ send: s.send, onError: (e) => assert.fail(e as Error), gatherMs: 1, maxBatchBytes: 10 });
  for (const t of ['12345', '67890', 'abc', 'a-chunk-over-the-cap', 'z']) sender.push(chunk(t));
  const flushed = sender.flush();
  for (let i = 0; i < 4; i++) {
    await tick(5);
    s.answer();
  }
  await flushed;
  assert.deepEqual(s.batches, [['12345', '67890'], ['abc'], ['a-chunk-over-the-cap'], ['z']]);
});

test('a full log (the server says truncated) stops sending; a failed request loses only its batch', async () => {
  const s = server();
  const errors: unknown[] = [];
  const sender = new LogSender({
    send: (b) => (b[0]!.text === 'boom' ? Promise.reject(new Error('connection reset')) : s.send(b)),
    onError: (e) => errors.push(e),
    gatherMs: 1,
  });
  sender.push(chunk('boom'));
  await tick();
  assert.equal((errors[0] as Error).message, 'connection reset');
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
