// The `script` target end to end: the server's delivery controller runs the environment's own
// deploy / set_weight / promote / rollback commands (no edge, no router), with Ferry's variables,
// and narrates their output in the deploy job's log. The commands append what they were asked to
// do to a file, so the test sees the exact sequence of moves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import type { Release } from '../../src/store/releases.js';
import { DeployError } from '../../src/delivery/targets/process.js';
import { ScriptTarget } from '../../src/delivery/targets/script.js';
import type { TargetContext } from '../../src/delivery/targets/types.js';
import { deliveryRig, type DeliveryRig, type PipelineResult, type ReleaseDetail } from './harness.js';

const SECRET = 'hunter2-very-secret-token';

function scriptEnv(steps: string, deploy: string[] = []): string {
  const lines = [
    'echo "deploy $FERRY_VERSION $FERRY_COMMIT_SHA" >> "$ACTIONS"',
    'echo "$FERRY_VERSION action=$FERRY_ACTION release=$FERRY_RELEASE_NUMBER id=$FERRY_RELEASE env=$FERRY_ENVIRONMENT stable=${FERRY_STABLE_VERSION:-none} secret_len=${#DEPLOY_TOKEN} files=$(test -f README.md && echo yes)" >> "$ACTIONS.details"',
    'echo "hello from the deploy of $FERRY_VERSION"',
    'echo "token is $DEPLOY_TOKEN"',
    ...deploy,
  ];
  return `
target:
  type: script
  deploy:
${lines.map((l) => `    - '${l.replace(/'/g, "''")}'`).join('\n')}
  set_weight: 'echo "weight $FERRY_CANARY_WEIGHT" >> "$ACTIONS"'
  promote: 'echo "promote $FERRY_VERSION" >> "$ACTIONS"'
  rollback: 'echo "rollback $FERRY_ROLLBACK_TO" >> "$ACTIONS"'
strategy:
  canary:
    steps: ${steps}
`;
}

interface EnvSummary {
  name: string;
  stable: { id: string; number: number; status: string } | null;
  active: { id: string; number: number; status: string; step: number; weight: number } | null;
}

describe('the script target', { timeout: 300_000 }, () => {
  let rig: DeliveryRig;
  let dir: string;
  let actions: string;
  const shas: string[] = [];

  const app = (version: string) => ({ VERSION: version, ACTIONS: actions });
  const moves = () => (existsSync(actions) ? readFileSync(actions, 'utf8').trim().split('\n') : []);
  const jobLog = async (p: PipelineResult) => (await rig.server.call<string>('GET', `/api/jobs/${p.jobs[0]!.id}/log`)).body;
  const releaseOf = async (log: string): Promise<ReleaseDetail & { reason: string | null }> => {
    const id = /release production#\d+ \(([A-Za-z0-9_-]+)\) of \w+ created/.exec(log)?.[1];
    assert.ok(id, `the log names the release:\n${log}`);
    return rig.releaseDetail(id);
  };
  // The environments list does not ask the edge (a script environment never starts one).
  const production = async () => (await rig.server.call<EnvSummary[]>('GET', `/api/projects/${rig.projectId}/environments`)).body.find((e) => e.name === 'production');
  const release = async (yaml: string, version: string) => {
    const r = await rig.release(yaml, app(version));
    shas.push(rig.repo.git('rev-parse', 'HEAD').trim());
    return r.pipeline!;
  };

  before(async () => {
    rig = await deliveryRig();
    dir = mkdtempSync(join(tmpdir(), 'ferry-script-target-'));
    actions = join(dir, 'actions.log');
    const put = await rig.server.call('PUT', `/api/projects/${rig.projectId}/secrets/DEPLOY_TOKEN`, { value: SECRET, environment: 'production' });
    assert.ok(put.status === 200 || put.status === 201, JSON.stringify(put.body));
  });
  after(async () => {
    await rig?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a first release, then a canary: deploy, each weight, promote, with the variables and secrets', async () => {
    const env = scriptEnv('[{ weight: 20 }, { weight: 50 }]');
    const p1 = await release(env, 'v1');
    assert.equal(p1.status, 'success', JSON.stringify(p1));
    const p2 = await release(env, 'v2');
    assert.equal(p2.status, 'success', JSON.stringify(p2));

    assert.deepEqual(moves(), [`deploy production#1 ${shas[0]}`, 'promote production#1', `deploy production#2 ${shas[1]}`, 'weight 20', 'weight 50', 'promote production#2']);

    const log = await jobLog(p2);
    const rel = await releaseOf(log);
    assert.equal(rel.status, 'succeeded');
    assert.equal(rel.number, 2);
    assert.equal((await production())?.stable?.id, rel.id);
    const details = readFileSync(`${actions}.details`, 'utf8').trim().split('\n');
    assert.deepEqual(details, [
      `production#1 action=deploy release=1 id=${(await releaseOf(await jobLog(p1))).id} env=production stable=none secret_len=${SECRET.length} files=yes`,
      `production#2 action=deploy release=2 id=${rel.id} env=production stable=production#1 secret_len=${SECRET.length} files=yes`,
    ]);
    assert.match(log, /\[deploy\] hello from the deploy of production#2/);
    assert.match(log, /\[deploy\] \$ echo "hello from the deploy/, 'each command is shown before it runs');
    assert.match(log, /\[set-weight\]/);
    assert.match(log, /\[promote\]/);
    assert.ok(!log.includes(SECRET), 'the secret never reaches the log');
    assert.match(log, /\[deploy\] token is \[MASKED\]/);
    assert.ok(existsSync(join(rig.server.home, 'releases', rel.id, 'script-deployed')), 'the deployed release is marked');
    assert.ok(!existsSync(join(rig.server.home, 'edge', 'admin.json')), 'a script environment starts no edge');
  });

  test('a deploy command that fails fails the release and its job, with the exit code', async () => {
    const before = moves().length;
    const p = await release(scriptEnv('[{ weight: 20 }]', ['echo "about to fail" >&2', 'exit 3', 'echo never']), 'v3');
    assert.equal(p.status, 'failed');
    assert.equal(p.jobs[0]!.status, 'failed');
    assert.equal(p.jobs[0]!.failureReason, 'deployment_failure');
    const log = await jobLog(p);
    const rel = await releaseOf(log);
    assert.equal(rel.status, 'failed');
    assert.match(rel.reason ?? '', /exit code 3/);
    assert.match(rel.reason ?? '', /about to fail/, 'the reason carries the last lines of output');
    assert.match(log, /exit code 3/);
    assert.match(log, /\[deploy\] about to fail/);
    assert.ok(!log.includes('never'));
    // The failed deploy may have changed things half-way: the rollback command puts #2 back.
    assert.deepEqual(moves().slice(before), [`deploy production#3 ${shas[2]}`, 'rollback production#2']);
    assert.equal((await production())?.stable?.number, 2);
    assert.ok(!existsSync(join(rig.server.home, 'releases', rel.id, 'script-deployed')));
  });

  test('an aborted canary runs the rollback commands with the previous version', async () => {
    const before = moves().length;
    const { pipelineId } = await rig.release(scriptEnv('[{ weight: 20 }, { pause: {} }]'), app('v4'), { wait: false });
    shas.push(rig.repo.git('rev-parse', 'HEAD').trim());
    const end = Date.now() + 60_000;
    let active: EnvSummary['active'] = null;
    while (Date.now() < end) {
      active = (await production())?.active ?? null;
      if (active?.number === 4 && active.step === 2 && active.weight === 20) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(active?.number === 4 && active.step === 2, `the canary pauses at 20%: ${JSON.stringify(active)}`);
    const abort = await rig.server.call('POST', `/api/releases/${active.id}/abort`, { reason: 'not today' });
    assert.equal(abort.status, 200, JSON.stringify(abort.body));
    const p = (await rig.server.waitPipeline(pipelineId, 60_000)) as PipelineResult;
    assert.equal(p.status, 'failed');
    const rel = await rig.releaseDetail(active.id);
    assert.equal(rel.status, 'aborted');
    assert.deepEqual(moves().slice(before), [`deploy production#4 ${shas[3]}`, 'weight 20', 'rollback production#2']);
    const log = await jobLog(p);
    assert.match(log, /\[rollback\]/);
    assert.equal((await production())?.stable?.number, 2);
    assert.ok(!existsSync(join(rig.server.home, 'releases', rel.id, 'script-deployed')), 'the rolled back release is no longer marked deployed');
    assert.ok(existsSync(join(rig.server.home, 'releases', (await production())!.stable!.id, 'script-deployed')));
  });
});

// The target alone, without a server: what a restarted controller (a new target object, no
// memory) derives from the markers, and a deploy that runs past its time.
describe('the script target across controller restarts', () => {
  let home: string;
  let out: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'ferry-script-home-'));
    out = join(home, 'moves.log');
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  const config = (extra = '') => {
    const { config, issues } = parseConfig(
      `jobs:
  d:
    deploy: { environment: prod }
environments:
  prod:
    target:
      type: script
      deploy: 'echo "deploy $FERRY_VERSION stable=\${FERRY_STABLE_VERSION:-none}" >> "$OUT"'
      set_weight: 'echo "weight $FERRY_VERSION $FERRY_CANARY_WEIGHT" >> "$OUT"'
      promote: 'echo "promote $FERRY_VERSION" >> "$OUT"'
      rollback: 'echo "rollback $FERRY_VERSION to $FERRY_ROLLBACK_TO" >> "$OUT"'
    strategy: { canary: { steps: [{ weight: 10 }] } }
${extra}`,
      'ferry.yml',
    );
    assert.deepEqual(issues, []);
    return config!.environments.prod!;
  };
  const target = (lines: string[] = []) => {
    const env = config();
    const ctx: TargetContext = { home, env, projectId: 7, variables: async () => ({ OUT: out }), log: (l) => lines.push(l) };
    return new ScriptTarget(ctx);
  };
  const release = (n: number): Release => {
    const id = `rel_test${n}`;
    const filesDir = join(home, 'releases', id, 'files');
    mkdirSync(filesDir, { recursive: true });
    return { id, projectId: 7, environment: 'prod', number: n, sha: `sha${n}`, filesDir } as Release;
  };
  const moves = () => readFileSync(out, 'utf8').trim().split('\n');

  test('promotion, weights and rollback are derived from the markers, not from memory', async () => {
    const [r1, r2] = [release(1), release(2)];
    const [i1] = await target().launch(r1, 1);
    await target().route({ stable: { version: 'prod#1', instances: [i1!] } });
    // A new object each time: a controller that restarted between every move.
    const [i2] = await target().launch(r2, 1);
    assert.deepEqual(await target().running(r1), [i1]);
    assert.deepEqual(await target().running(r2), [i2]);
    await target().route({ stable: { version: 'prod#1', instances: [i1!] }, canary: { version: 'prod#2', instances: [i2!], weight: 10 } });
    // Traffic back on #1 while #2 was deployed last: a rollback, then nothing more to do.
    await target().route({ stable: { version: 'prod#1', instances: [i1!] } });
    await target().route({ stable: { version: 'prod#1', instances: [i1!] } });
    assert.deepEqual(moves(), ['deploy prod#1 stable=none', 'promote prod#1', 'deploy prod#2 stable=prod#1', 'weight prod#2 10', 'rollback prod#2 to prod#1']);
    assert.deepEqual(await target().running(r2), [], 'a rolled back release is not deployed');
    assert.deepEqual(await target().running(r1), [i1]);
    // Promoting again after a restart does not run `promote` twice.
    const [i3] = await target().launch(release(3), 1);
    await target().route({ stable: { version: 'prod#3', instances: [i3!] } });
    await target().route({ stable: { version: 'prod#3', instances: [i3!] } });
    const lines: string[] = [];
    await target(lines).retire([i1!]);
    assert.match(lines.join('\n'), /\[retire\] nothing to stop for prod#1/);
    assert.deepEqual(await target().running(r1), []);
    assert.deepEqual(moves().slice(5), ['deploy prod#3 stable=prod#1', 'promote prod#3']);
    assert.equal(await target().preview('prod#3', [i3!]), null);
    assert.equal(await target().metrics(), null);
    assert.equal(await target().url(), null);
  });

  test('a failed deploy is rolled back by a restarted controller; a deploy left running is stopped first', async () => {
    const before = moves().length;
    const stable = (await target().running(release(3)))[0]!;
    const failing = { ...config(), target: { type: 'script' as const, deploy: ['echo "deploy $FERRY_VERSION" >> "$OUT"', 'exit 4'], rollback: ['echo "rollback $FERRY_VERSION to $FERRY_ROLLBACK_TO" >> "$OUT"'] } };
    const t = new ScriptTarget({ home, env: failing, projectId: 7, variables: async () => ({ OUT: out }), log: () => undefined });
    await assert.rejects(t.launch(release(4), 1), /exit code 4 at `exit 4`/);
    // The revert comes from a new controller: it knows of the failed deploy from its file only.
    await target().route({ stable: { version: 'prod#3', instances: [stable] } });
    assert.deepEqual(moves().slice(before), ['deploy prod#4', 'rollback prod#4 to prod#3']);

    // A deploy still running when its controller went away: the next one stops it, then rolls back.
    const started = join(home, 'started');
    const hanging = { ...config(), target: { type: 'script' as const, deploy: ['touch "$STARTED"; sleep 60'] } };
    const slow = new ScriptTarget({ home, env: hanging, projectId: 7, variables: async () => ({ STARTED: started }), log: () => undefined });
    const left = slow.launch(release(5), 1).then(
      () => null,
      (err: Error) => err,
    );
    for (let i = 0; i < 200 && !existsSync(started); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(started));
    const lines: string[] = [];
    await target(lines).route({ stable: { version: 'prod#3', instances: [stable] } });
    const err = await left;
    assert.ok(err instanceof DeployError && /exit code 143/.test(err.message), String(err));
    assert.match(lines.join('\n'), /stopping the deploy of prod#5 a previous controller left running/);
    assert.deepEqual(moves().slice(before + 2), ['rollback prod#5 to prod#3']);
    assert.deepEqual(await target().running(release(5)), []);
  });

  test('a deploy past its time is stopped, its whole process group with it', async () => {
    const pidFile = join(home, 'sleep.pid');
    const env = { ...config(), target: { type: 'script' as const, deploy: ['sleep 30 & echo $! > "$PID_FILE"; echo started; wait'], timeoutMs: 300 } };
    const lines: string[] = [];
    const t = new ScriptTarget({ home, env, projectId: 7, variables: async () => ({ PID_FILE: pidFile }), log: (l) => lines.push(l) });
    await assert.rejects(t.launch(release(9), 1), (err: Error) => err instanceof DeployError && /timed out/.test(err.message) && /started/.test(err.message));
    assert.deepEqual(await t.running(release(9)), []);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(), false, 'the background sleep went with its deploy');
  });
});
