// The binary wire form of a runner's log batch: text round-trips exactly (multi-byte characters
// at any cut), long chunks come out in pieces under V8's large-string size, and every malformed
// body is refused with a message that says what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeLogBatch, encodeLogBatch, LOG_BATCH_BODY_LIMIT, LogBatchError, PIECE_BYTES } from '../../src/runner/log-batch.js';
import { LogSender } from '../../src/runner/log-sender.js';
import type { LogChunkWire } from '../../src/runner/protocol.js';

test('a batch round-trips: streams, times, numbers, truncation, multi-byte text cut into pieces between characters', () => {
  // 3- and 4-byte characters throughout, so that PIECE_BYTES falls inside one more than once.
  const long = 'é€😀a'.repeat(Math.ceil((PIECE_BYTES * 3) / 10));
  const chunks: LogChunkWire[] = [
    { stream: 'stdout', at: 1, text: 'hello\n' },
    { stream: 'stderr', at: 2, text: long },
    { stream: 'system', at: 3, text: '' },
    { stream: 'stdout', at: 4, text: 'cut here\n', truncated: true },
  ];
  const out = decodeLogBatch(encodeLogBatch({ attempt: 2, batch: 7, chunks }));
  assert.equal(out.attempt, 2);
  assert.equal(out.batch, 7);
  const longPieces = out.chunks.filter((c) => c.stream === 'stderr');
  assert.ok(longPieces.length >= 3, `${longPieces.length} pieces`);
  for (const p of longPieces) {
    assert.ok(Buffer.byteLength(p.text) <= PIECE_BYTES);
    assert.equal(p.at, 2);
    assert.ok(!p.text.includes('\uFFFD'), 'no character was cut in two');
  }
  assert.equal(longPieces.map((p) => p.text).join(''), long);
  assert.deepEqual(out.chunks.filter((c) => c.stream !== 'stderr'), [chunks[0], chunks[2], chunks[3]]);
  assert.equal(decodeLogBatch(encodeLogBatch({ attempt: 1, chunks: [] })).batch, undefined);
});

test('malformed batches are refused, saying what is wrong', () => {
  const good = encodeLogBatch({ attempt: 1, chunks: [{ stream: 'stdout', at: 1, text: 'abc' }] });
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('no newline'), /no header line/],
    [Buffer.from('{nope\n'), /not JSON/],
    [Buffer.from('{"attempt":0,"chunks":[]}\n'), /attempt/],
    [Buffer.from('{"attempt":1,"batch":-1,"chunks":[]}\n'), /batch/],
    [Buffer.from('{"attempt":1,"chunks":[{"stream":"stdin","at":1,"bytes":0}]}\n'), /chunk 0: needs stream/],
    [Buffer.from('{"attempt":1,"chunks":[{"stream":"stdout","at":1,"bytes":9}]}\nabc'), /chunk 0 says 9 bytes but the body ends 3 bytes on/],
    [Buffer.concat([good, Buffer.from('extra')]), /5 bytes after the last chunk/],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => decodeLogBatch(body), (err: Error) => err instanceof LogBatchError && message.test(err.message) && /log batch/.test(err.message), String(message));
  }
});

test('the largest batch a runner sends fits the logs route\'s body limit, whatever the text', async () => {
  // Three UTF-8 bytes per UTF-16 code unit is the most there is (CJK); the sender counts code units.
  const sent: Buffer[] = [];
  const sender = new LogSender({ send: async (chunks, batch) => (sent.push(encodeLogBatch({ attempt: 1, batch, chunks })), { accepted: 1 }), onError: (e) => assert.fail(e as Error), gatherMs: 1, maxInFlight: 1 });
  const cjk = '日本語のログ'.repeat(11_000); // 66,000 code units, about a pipe read
  for (let i = 0; i < 150; i++) sender.push({ stream: 'stdout', at: 1, text: cjk });
  await sender.flush();
  assert.ok(sent.length >= 2, `${sent.length} batches`);
  const largest = Math.max(...sent.map((b) => b.length));
  assert.ok(largest > 8 * 1024 * 1024, `a full batch of CJK is large: ${largest} bytes`);
  assert.ok(largest < LOG_BATCH_BODY_LIMIT, `${largest} bytes < ${LOG_BATCH_BODY_LIMIT}`);
});
