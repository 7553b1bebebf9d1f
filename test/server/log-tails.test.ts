// The log tail's hand-over, made to happen on purpose: on the real store (PGlite, and
// PostgreSQL when FERRY_TEST_DATABASE_URL is set), a second viewer's catch-up read is held back
// (its result, not the query: the store really answered) while the tail reads a new chunk for
// the first viewer. Once let go, the second viewer must still get that chunk, exactly once, and
// both must end; then the tail is gone. The server-level test (log-follow.test.ts) shows the
// same with real jobs, where this moment is rare.
import assert from 'node:assert/strict';
import { EventBus } from '../../src/events/bus.js';
import type { RunEvent } from '../../src/pipeline/events.js';
import type { ServerContext } from '../../src/server/context.js';
import { LogTails, type LogViewer } from '../../src/server/log-tails.js';
import type { Db } from '../../src/store/db.js';
import { RunRecorder } from '../../src/store/recorder.js';
import { waitFor } from '../helpers/procs.js';
import { runFixture } from '../store/fixtures.js';
import { forEachDb } from '../store/helpers.js';

class Viewer implements LogViewer {
  text = '';
  ended: string | null = null;
  write(t: string): void {
    const data = /^data: (.*)$/m.exec(t)?.[1];
    if (t.startsWith('event: log')) this.text += JSON.parse(data!).text;
    if (t.startsWith('event: end')) this.ended = JSON.parse(data!).status;
  }
  close(): void {}
}

forEachDb('a viewer catching up while the tail reads for others still gets that chunk, once', async (ctx) => {
  const f = runFixture('/src/tails');
  const started = f.events.find((e) => e.type === 'pipeline.started')!;
  const jobId = (started as { jobs: { jobId: string }[] }).jobs[0]!.jobId;
  const pipelineId = started.pipelineId;
  const rec = new RunRecorder(ctx.db);
  const bus = new EventBus<RunEvent>();
  const record = async (events: RunEvent[]) => {
    await rec.apply(events);
    for (const e of events) bus.emit(e);
  };
  const log = (text: string): RunEvent => ({ type: 'job.log', at: Date.now(), pipelineId, jobId, attempt: 1, stream: 'stdout', text });
  await record([started, { type: 'job.state', at: Date.now(), pipelineId, jobId, status: 'running', attempt: 1 }, log('line 1\n')]);

  // The store, but the answer to the next read of log chunks can be held back.
  let holdNext = false;
  let release: () => void = () => undefined;
  let held = false;
  const gate = new Promise<void>((r) => (release = r));
  const db = new Proxy(ctx.db, {
    get(target, key) {
      if (key !== 'query') return Reflect.get(target, key, target);
      return async (sql: string, params?: unknown[]) => {
        const rows = await target.query(sql, params);
        if (holdNext && sql.includes('FROM job_logs')) {
          holdNext = false;
          held = true;
          await gate;
        }
        return rows;
      };
    },
  }) as Db;
  const tails = new LogTails({ db, bus, home: '/nonexistent', leaseMs: 30_000 } satisfies ServerContext);

  const a = new Viewer();
  tails.follow(jobId, 1, a);
  await waitFor(() => a.text === 'line 1\n', 10_000, 'the first viewer to catch up');
  holdNext = true;
  const b = new Viewer();
  tails.follow(jobId, 1, b);
  await waitFor(() => held, 10_000, "the second viewer's catch-up read");
  await record([log('line 2\n')]);
  await waitFor(() => a.text === 'line 1\nline 2\n', 10_000, 'the tail to read line 2 for the first viewer');
  assert.equal(b.text, '', 'the second viewer is still catching up');
  release();
  await waitFor(() => b.text.length >= 14, 10_000, 'the second viewer to read on');
  await record([log('line 3\n'), { type: 'job.state', at: Date.now(), pipelineId, jobId, status: 'success', attempt: 1, exitCode: 0 }]);
  await waitFor(() => a.ended !== null && b.ended !== null, 10_000, 'both to end');
  assert.equal(a.text, 'line 1\nline 2\nline 3\n');
  assert.equal(b.text, 'line 1\nline 2\nline 3\n', 'every line once, in order');
  assert.deepEqual([a.ended, b.ended], ['success', 'success']);
  assert.equal(tails.size, 0, 'the tail closed with its last viewer');
});
