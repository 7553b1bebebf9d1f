// The spawner (src/process/run.ts) with real processes: commands sent to it give what they give
// when run here (output, input, failures with their code and stderr); stopping it ends its
// process; and when it dies, commands in flight and later ones run here instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandError, runCommand, runHere, startSpawner } from '../../src/process/run.js';

test('commands through the spawner give what they give here', async () => {
  const stop = await startSpawner();
  try {
    const here = await runHere('sh', ['-c', 'echo out; echo err >&2']);
    const there = await runCommand('sh', ['-c', 'echo out; echo err >&2']);
    assert.deepEqual([there.stdout.toString(), there.stderr.toString()], [here.stdout.toString(), here.stderr.toString()]);
    // The command did run elsewhere: its parent is not this process.
    const ppid = Number((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.toString().trim());
    assert.notEqual(ppid, process.pid);
    const piped = await runCommand('tr', ['a-z', 'A-Z'], { input: 'shout\n' });
    assert.equal(piped.stdout.toString(), 'SHOUT\n');
    const binary = Buffer.from([0, 1, 2, 255, 254]);
    assert.deepEqual((await runCommand('cat', [], { input: binary })).stdout, binary, 'bytes travel as they are');
    assert.equal((await runCommand('pwd', [], { cwd: '/tmp' })).stdout.toString().trim(), '/tmp');
    await assert.rejects(runCommand('sh', ['-c', 'echo partial; echo broken >&2; exit 3']), (err: Error) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, 3);
      assert.equal(err.stdout.toString(), 'partial\n');
      assert.match(err.message, /failed \(3\): broken/);
      return true;
    });
    await assert.rejects(runCommand('/no/such/command', []), /ENOENT/);
  } finally {
    await stop();
  }
});

test('a dead spawner: what was in flight and what comes later runs here', async () => {
  const stop = await startSpawner();
  try {
    const pid = Number((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.toString().trim());
    const inFlight = runCommand('sh', ['-c', 'sleep 0.5; echo done']);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(pid, 'SIGKILL');
    assert.equal((await inFlight).stdout.toString(), 'done\n', 'run again here');
    const later = Number((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.toString().trim());
    assert.equal(later, process.pid, 'later commands run in this process');
  } finally {
    await stop();
  }
});

test('stopping the spawner ends its process', async () => {
  const stop = await startSpawner();
  const pid = Number((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.toString().trim());
  await stop();
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the spawner is gone');
  assert.equal(Number((await runCommand('sh', ['-c', 'echo $PPID'])).stdout.toString().trim()), process.pid);
});
