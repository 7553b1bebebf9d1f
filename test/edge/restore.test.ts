// `ferry edge` as its own process, killed with SIGKILL: the next one finds the instances the dead
// one left running (from state.json, verified by their environment), stops them, starts them
// again, and serves the same routes on the same ports. SIGTERM stops it cleanly, instances too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeClient } from '../../src/edge/client.js';
import type { EdgeAdminInfo } from '../../src/edge/api.js';
import { fromRoot } from '../helpers/paths.js';
import { processesWith, waitFor } from '../helpers/procs.js';
import { appSpec, request, route, tempHome } from './harness.js';
import { randomUUID } from 'node:crypto';

function startEdgeProcess(home: string): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [fromRoot('dist', 'src', 'cli', 'main.js'), 'edge', '--admin-port', '0', '--home', home], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, stderr: () => err };
}

async function adminOf(home: string, pid: number): Promise<EdgeAdminInfo> {
  const file = join(home, 'edge', 'admin.json');
  await waitFor(() => existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as EdgeAdminInfo).pid === pid, 15_000, `the edge (pid ${pid}) to listen`);
  return JSON.parse(readFileSync(file, 'utf8')) as EdgeAdminInfo;
}

test('an edge killed with SIGKILL is restored from state.json without duplicate processes', async () => {
  const { home, cleanup } = tempHome();
  const marker = `ferry-edge-restore-${randomUUID()}`;
  let edge = startEdgeProcess(home);
  try {
    await adminOf(home, edge.child.pid!);
    const tokenFile = join(home, 'edge', 'token');
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const client = EdgeClient.fromHome(home);
    await client.putInstance('app-v1', appSpec(home, marker, 'v1'));
    await client.waitReady('app-v1', 10_000);
    const r = await client.putRoute('web', route({ version: 'v1', instances: ['app-v1'] }));
    const url = `http://127.0.0.1:${r.port}/`;
    assert.equal((await request(url)).body, 'hello from v1\n');
    const oldPids = processesWith(marker);
    assert.equal(oldPids.length, 1);

    edge.child.kill('SIGKILL');
    await new Promise((res) => edge.child.once('exit', res));
    // The application outlives its edge (orphaned), until the next edge deals with it.
    assert.deepEqual(processesWith(marker), oldPids);

    edge = startEdgeProcess(home);
    const info = await adminOf(home, edge.child.pid!);
    // The client made for the first edge finds the new one (another port) by itself.
    assert.equal((await client.health()).pid, edge.child.pid);
    assert.equal(client.url, info.url);
    await client.waitReady('app-v1', 10_000);
    const pids = processesWith(marker);
    assert.equal(pids.length, 1, `one instance process, not ${pids.length}`);
    assert.notEqual(pids[0], oldPids[0], 'the orphan was stopped and a new process started');
    // The same route on the same port, answering.
    const restored = await client.getRoute('web');
    assert.equal(restored!.port, r.port);
    assert.equal((await request(url)).body, 'hello from v1\n');
    assert.match(edge.stderr(), /1 route\(s\), 1 instance\(s\) restored/);
    // One edge per home: a second one refuses to start, and changes nothing.
    const second = startEdgeProcess(home);
    const secondCode = await new Promise((res) => second.child.once('exit', res));
    assert.notEqual(secondCode, 0);
    assert.match(second.stderr(), new RegExp(`another edge \\(pid ${edge.child.pid}\\) is running`));
    assert.equal(processesWith(marker).length, 1);

    // SIGTERM: the edge stops its instances and exits 0; state.json keeps them for the next start.
    edge.child.kill('SIGTERM');
    const code = await new Promise((res) => edge.child.once('exit', res));
    assert.equal(code, 0, edge.stderr());
    assert.deepEqual(processesWith(marker), []);
    const state = JSON.parse(readFileSync(join(home, 'edge', 'state.json'), 'utf8')) as { instances: { id: string }[]; routes: { name: string; port: number }[] };
    assert.deepEqual(state.instances.map((i) => i.id), ['app-v1']);
    assert.deepEqual(state.routes.map((x) => [x.name, x.port]), [['web', r.port]]);
    assert.equal(existsSync(join(home, 'edge', 'admin.json')), false, 'admin.json goes with a clean stop');
  } finally {
    if (edge.child.exitCode === null) {
      edge.child.kill('SIGKILL');
      await new Promise((res) => edge.child.once('exit', res));
    }
    for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL');
    cleanup();
  }
});
