// kill -9 of the server in the middle of a canary: the edge is its own process, so production
// keeps answering (zero failed requests) while the server is gone, and the restarted server's
// controller takes the release back at its persisted step and finishes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRepo } from '../helpers/repo.js';
import { fixture } from '../helpers/paths.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { startLoad } from '../helpers/load.js';
import { pipelineYaml, type EnvStatusBody } from './harness.js';

const MAIN = fileURLToPath(new URL('../../ferry.js', import.meta.url));

function serverProcess(home: string, port: number): ChildProcess {
  return spawn(process.execPath, [MAIN, 'server', '--home', home, '--listen', `127.0.0.1:${port}`, '-j', '1', '--edge-admin-port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function started(child: ChildProcess): Promise<string> {
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await waitFor(() => /Ferry server on/.test(err), 60_000, 'the server to start');
  return /fry_[A-Za-z0-9_-]+/.exec(err)?.[0] ?? '';
}


const ENV = `
target: { type: process, command: node app.mjs, instances: 2 }
health: { readiness: { path: /healthz, interval: 100ms } }
strategy:
  canary:
    steps: [{ weight: 30 }, { pause: 4s }, { weight: 60 }, { pause: 1s }]
    analysis:
      interval: 500ms
      metrics:
        - { name: errors, source: router, condition: "error_rate < 0.05", min_requests: 5 }
`;

test('kill -9 of the server mid-canary: production keeps answering and the restarted controller finishes the release, or rolls it back when told to', { timeout: 240_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ferry-delivery-crash-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child = serverProcess(home, port);
  const token = await started(child);
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return (await res.json()) as T;
  };
  const repo = makeRepo({ 'app.mjs': readFileSync(fixture('apps', 'sample-app.mjs'), 'utf8') });
  try {
    const project = await call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
    const status = () => call<EnvStatusBody>('GET', `/api/projects/${project.id}/environments/production`);
    const pipelineOf = (id: string) => call<{ status: string }>('GET', `/api/pipelines/${id}`);

    repo.write('ferry.yml', pipelineYaml(ENV, { VERSION: 'v1' }));
    repo.commit('v1');
    const first = await call<{ pipelineId: string }>('POST', `/api/projects/${project.id}/pipelines`, {});
    await waitFor(async () => (await pipelineOf(first.pipelineId)).status === 'success', 60_000, 'v1 to be released');
    const url = (await status()).url!;

    repo.write('ferry.yml', pipelineYaml(ENV, { VERSION: 'v2' }));
    repo.commit('v2');
    const second = await call<{ pipelineId: string }>('POST', `/api/projects/${project.id}/pipelines`, {});
    await waitFor(async () => (await status()).active?.weight === 30, 60_000, 'the canary at 30%');
    const load = startLoad({ url, rps: 100, concurrency: 8 });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    // The server is gone: production is served by the edge alone.
    await new Promise((r) => setTimeout(r, 1500));
    const meanwhile = load.snapshot();
    assert.ok(meanwhile.ok > 50, `the edge kept serving: ${JSON.stringify(meanwhile)}`);

    child = serverProcess(home, port);
    await started(child);
    await waitFor(async () => (await pipelineOf(second.pipelineId)).status === 'success', 90_000, 'the release to finish after the restart');
    const r = await load.stop();
    assert.equal(r.failed, 0, `failed requests: ${JSON.stringify(r.errors)} ${JSON.stringify(r.failures.slice(0, 5))}`);
    const s = await status();
    assert.equal(s.stable?.number, 2);
    assert.equal((await (await fetch(url)).text()).trim(), 'hello from v2');
    assert.equal(s.instances.filter((i) => i.release !== s.stable!.id).length, 0, 'the old instances were retired');

    // The same again with on_restart: rollback: the restarted controller puts traffic back on v2.
    repo.write('ferry.yml', pipelineYaml(`${ENV}\non_restart: rollback`, { VERSION: 'v3' }));
    repo.commit('v3');
    const third = await call<{ pipelineId: string }>('POST', `/api/projects/${project.id}/pipelines`, {});
    await waitFor(async () => (await status()).active?.weight === 30, 60_000, 'the v3 canary at 30%');
    const load3 = startLoad({ url, rps: 100, concurrency: 8 });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    child = serverProcess(home, port);
    await started(child);
    await waitFor(async () => (await pipelineOf(third.pipelineId)).status === 'failed', 90_000, 'the v3 release to be rolled back after the restart');
    const r3 = await load3.stop();
    assert.equal(r3.failed, 0, `failed requests: ${JSON.stringify(r3.errors)}`);
    const s3 = await status();
    assert.equal(s3.stable?.number, 2);
    const v3 = s3.releases.find((x) => x.number === 3)!;
    assert.equal(v3.status, 'rolled_back');
    assert.match(v3.reason ?? '', /on_restart: rollback/);
    assert.equal((await (await fetch(url)).text()).trim(), 'hello from v2');
  } finally {
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('close', () => resolve());
      child.kill('SIGTERM');
    });
    try {
      const { pid } = JSON.parse(readFileSync(join(home, 'edge', 'admin.json'), 'utf8')) as { pid: number };
      process.kill(pid, 'SIGTERM');
      await waitFor(() => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      }, 15_000, 'the edge to stop');
    } catch {
      // no edge
    }
  }
});
