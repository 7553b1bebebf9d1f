// `ferry demo` (what `npm start` runs): the whole path of a change on this machine, with nothing
// but Ferry. A server (embedded database, in-process runner, delivery controller) and the edge it
// starts; a sample service whose developer pushes three commits; users sending steady traffic to
// production. v1 goes to production, v2 has a bug its tests miss and the canary's analysis rolls
// it back on real traffic, v3 fixes it. Then the figures: releases, DORA, the audit chain.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { api, type ClientOptions } from '../cli/client.js';
import { formatDuration } from '../cli/view/model.js';
import { freePort } from '../process/free-port.js';
import { doraFigures } from '../delivery/dora.js';
import { stopEdge } from '../server/edge-process.js';
import { startServer, type RunningServer } from '../server/server.js';
import { getJobLog } from '../store/logs.js';
import { startLoad, type Load, type LoadSummary } from './load.js';
import { Narrator } from './narrator.js';
import { AUTHOR, createDemoRepository, type DemoRepository } from './repository.js';
import { Follower, pipelineOf, type EnvironmentView, type FollowResult, type ReleaseDetailView } from './watch.js';

export interface DemoOptions {
  /** Where to put the repositories and the server's home (default: a new temp folder). */
  dir?: string;
  /** Leave everything running at the end, until Ctrl-C. */
  keep: boolean;
  /** The server's port (0: any free one). */
  port: number;
  /** Users' requests per second on production. */
  rps: number;
  narrator: Narrator;
  /** Resolves when the user asks to stop (Ctrl-C); the demo then cleans up and returns. */
  interrupted: Promise<void>;
}

/** What happened, for the caller (and the end-to-end test) to check against what was said. */
export interface DemoOutcome {
  ok: boolean;
  root: string;
  serverUrl: string | null;
  productionUrl: string | null;
  chapters: { version: string; pipeline: string; production: string | null; detectionMs?: number; canaryFailed?: number; usersFailed?: number }[];
  auditOk: boolean | null;
}

class Interrupted extends Error {}

/** Users' requests: most ask in a language every version speaks, one in five in one v2 does not. */
const USER_PATHS = ['/?name=Ada', '/?name=Grace&lang=de', '/?lang=fr', '/?name=Linus&lang=pt', '/version'];

export async function runDemo(o: DemoOptions): Promise<DemoOutcome> {
  const n = o.narrator;
  const p = n.p;
  const root = o.dir ? resolve(o.dir) : mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  mkdirSync(root, { recursive: true });
  const home = join(root, 'server');
  const outcome: DemoOutcome = { ok: false, root, serverUrl: null, productionUrl: null, chapters: [], auditOk: null };
  let server: RunningServer | null = null;
  let load: Load | null = null;
  let stopping = false;
  const interrupted = o.interrupted.then(() => {
    stopping = true;
  });
  // Every wait of the story gives way to Ctrl-C: the demo then tears down what it started.
  const orStop = async <T>(x: Promise<T>): Promise<T> => {
    const r = await Promise.race([x, interrupted.then(() => Interrupted)]);
    if (r === Interrupted) throw new Interrupted();
    return r as T;
  };

  try {
    n.heading('Ferry demo: a change from commit to production, on this machine');
    server = await orStop(startServer({ home, host: '127.0.0.1', port: o.port, runner: true, runnerConcurrency: 2, delivery: true, edgeAdminPort: 0, logger: false }));
    outcome.serverUrl = server.url;
    const admin: ClientOptions = { server: server.url, token: server.adminToken };
    n.line(`server     ${server.url}  (API; embedded database in ${home}, an in-process runner, the delivery controller)`);
    const dana = await api<{ token: string }>(admin, 'POST', '/api/users', { name: 'dana', role: 'developer', email: AUTHOR.email });
    const rene = await api<{ token: string }>(admin, 'POST', '/api/users', { name: 'rene', role: 'deployer', email: 'rene@example.com' });
    const asRene: ClientOptions = { server: server.url, token: rene.token };
    const asDana: ClientOptions = { server: server.url, token: dana.token };
    n.line(`people     dana (developer, writes the changes), rene (deployer, approves releases to production)`);

    const ports = { staging: await freePort(), production: await freePort() };
    const repo = await createDemoRepository(root, ports);
    const project = await api<{ id: number }>(admin, 'POST', '/api/projects', { path: repo.origin });
    n.line(`repository ${repo.work}  (pushes to ${repo.origin}, whose hook tells the server)`);
    n.line(`pipeline   build, lint, scan, unit tests → staging (rolling) → load gate → production (approval, canary)`);

    let production: EnvironmentView | null = null;
    const db = server.ctx.db;
    const follower = new Follower(asDana, project.id, n, {
      // The API's log mixes in Ferry's own notes ("Saved 3 artifact files"); the demo owns the
      // store, so it reads the script's output alone.
      output: async (jobId) => (await getJobLog(db, jobId, { streams: ['stdout', 'stderr'] }))?.text ?? '',
      onApprovalWait: async (rel) => {
        await api(asRene, 'POST', `/api/releases/${rel.id}/approve`, {});
        n.note(`${rel.environment}#${rel.number}  approved by rene: production needs one approval, and dana wrote the change, so she may not give it`);
      },
      onEnvironment: (env) => {
        if (env.name === 'production') production = env;
      },
      onRouter: (env) => startUsers(env),
    });
    /** Users' traffic to production, from the moment its router exists. */
    const startUsers = (env: EnvironmentView) => {
      if (env.name !== 'production' || !env.url || load) return;
      outcome.productionUrl = env.url;
      load = startLoad({ url: env.url, rps: o.rps, concurrency: 20, paths: USER_PATHS, timeoutMs: 5000 });
      n.note(`users      ${o.rps} requests/s to production (${env.url}) from now on: names, languages, /version`);
    };
    n.startStatus(() => statusLine(production, load?.snapshot() ?? null));

    const chapter = async (title: string, message: string, change: string | undefined, expect: 'succeeded' | 'rolled_back') => {
      n.heading(title);
      const before = load?.snapshot() ?? null;
      const commit = await orStop(repo.commitAndPush(message, change));
      n.line(`git push   ${commit.sha.slice(0, 8)} "${message}" by ${AUTHOR.name}`);
      const pipeline = await orStop(pipelineOf(asDana, project.id, commit.sha));
      n.line(`pipeline   #${pipeline.number} started by the push`);
      const result = await orStop(follower.follow(pipeline.id));
      const rel = result.releases.get('production') ?? null;
      const entry: DemoOutcome['chapters'][number] = { version: change ?? 'v1', pipeline: result.pipeline.status, production: rel?.status ?? null };
      outcome.chapters.push(entry);
      // The follower may have stopped looking before production's router showed its URL (a
      // slow machine): users must be there before the next chapter's canary.
      if (rel?.status === 'succeeded' && !load) startUsers(await api<EnvironmentView>(asDana, 'GET', `/api/projects/${project.id}/environments/production`));
      if (rel?.status === 'succeeded' && rel.number === 1) {
        n.note('production#1 is the first release there: with no stable version to compare a canary against, it takes all the traffic at once. Every later one goes through the canary.');
      }
      if (rel?.status === 'rolled_back') explainRollback(n, rel, before, load?.snapshot() ?? null, entry);
      if ((rel?.status ?? null) !== expect) {
        n.bad(p.red(`expected production#${rel?.number ?? '?'} to be ${expect.replace('_', ' ')}; it is ${rel?.status ?? 'not released'} (pipeline ${result.pipeline.status})`));
        return false;
      }
      if (expect === 'succeeded') n.ok(p.green(`production#${rel!.number} serves 100% of the traffic (${production?.url ?? ''})`));
      return true;
    };

    const story =
      (await chapter('v1: the first release of the greeting service', 'v1: a greeting service', undefined, 'succeeded')) &&
      (await chapter('v2: "speak Spanish too", with a bug the tests miss', 'v2: speak Spanish too', 'v2', 'rolled_back')) &&
      (await chapter('v3: the fix, with the test that would have caught it', 'v3: unknown languages get English again', 'v3', 'succeeded'));

    n.stopStatus();
    const users: LoadSummary | null = load ? await (load as Load).stop() : null;
    load = null;
    if (outcome.chapters.some((c) => c.production !== null)) outcome.auditOk = await summary(n, { admin, projectId: project.id, repo, users, serverUrl: server.url, adminToken: admin.token!, keep: o.keep });
    outcome.ok = story && outcome.auditOk === true;

    if (o.keep && !stopping) {
      n.heading('Still running (--keep): press Ctrl-C to stop everything');
      await interrupted;
    }
  } catch (err) {
    if (!(err instanceof Interrupted)) {
      n.stopStatus();
      n.bad(p.red(`the demo failed: ${(err as Error).message}`));
    }
  } finally {
    n.stopStatus();
    if (stopping) n.heading('Interrupted: stopping everything');
    await (load as Load | null)?.stop();
    await server?.close();
    const stopped = await stopEdge(home);
    if (!o.keep || stopping) n.line(`stopped the server${stopped ? ', the edge and the service\'s instances' : ''}; the repositories and the store stay in ${root}`);
  }
  return outcome;
}

/** The live line: what production serves and what its users get. */
function statusLine(env: EnvironmentView | null, users: LoadSummary | null): string {
  const parts: string[] = [];
  if (env?.stable) parts.push(`production: #${env.stable.number} stable`);
  if (env?.active) parts.push(`#${env.active.number} ${env.active.status} at ${env.active.weight}%`);
  if (users) parts.push(`users: ${users.ok + users.failed} answered, ${users.failed} failed, ${users.retried} retried by the router, p99 ${users.latencyMs.p99.toFixed(0)} ms`);
  return parts.join(' · ') || 'starting…';
}

/** The story of a rollback in figures: what failed, how fast it was caught, what it cost. */
function explainRollback(n: Narrator, rel: ReleaseDetailView, before: LoadSummary | null, after: LoadSummary | null, entry: DemoOutcome['chapters'][number]): void {
  const at = (s: string) => new Date(s).getTime();
  const p = n.p;
  // The canary takes traffic from the step after its instances are ready (step 1).
  const tookTraffic = rel.transitions.find((t) => t.step === 1 && t.to === 'progressing');
  const end = rel.transitions.find((t) => t.to === 'rolled_back');
  const failing = rel.measurements.filter((m) => m.outcome === 'failure');
  const errors = rel.measurements.filter((m) => m.source === 'router' && m.metric === 'errors');
  const canaryRequests = errors.reduce((s, m) => s + (m.values.requests ?? 0), 0);
  const canaryFailed = errors.reduce((s, m) => s + Math.round((m.values.requests ?? 0) * (m.values.error_rate ?? 0)), 0);
  n.bad(p.red(`production#${rel.number} rolled back by itself: ${rel.reason ?? ''}`));
  if (failing[0]) n.line(`metric     ${failing[0].metric}: error rate ${((failing[0].values.error_rate ?? 0) * 100).toFixed(1)}% on the canary, where the condition is ${JSON.stringify(rel.config.strategy.analysis?.metrics.find((m) => m.name === failing[0]!.metric)?.condition ?? '')}`);
  if (tookTraffic && end) {
    entry.detectionMs = at(end.at) - at(tookTraffic.at);
    n.line(`detected   ${formatDuration(entry.detectionMs)} after the canary took its first requests (${failing.length} failed measurements, one per second)`);
  }
  entry.canaryFailed = canaryFailed;
  n.line(`requests   the canary failed ${canaryFailed} of the ${canaryRequests} requests it got`);
  if (before && after) {
    const answered = after.ok + after.failed - (before.ok + before.failed);
    entry.usersFailed = after.failed - before.failed;
    n.line(`users      saw ${entry.usersFailed} failed requests of ${answered} meanwhile: the router answered ${after.retried - before.retried} of the canary's failures again from the stable version (X-Ferry-Retried)`);
  }
}

interface SummaryInput {
  admin: ClientOptions;
  projectId: number;
  repo: DemoRepository;
  users: LoadSummary | null;
  serverUrl: string;
  adminToken: string;
  keep: boolean;
}

/** Releases, DORA figures, the audit chain, and how to look around. Returns whether the audit chain verified. */
async function summary(n: Narrator, s: SummaryInput): Promise<boolean> {
  const p = n.p;
  n.heading('Summary');
  const env = await api<EnvironmentView>(s.admin, 'GET', `/api/projects/${s.projectId}/environments/production`);
  const releases = [...env.releases].sort((a, b) => a.number - b.number);
  for (const r of releases) {
    const took = r.startedAt && r.finishedAt ? formatDuration(new Date(r.finishedAt).getTime() - new Date(r.startedAt).getTime()) : '';
    n.line(`production#${r.number}  ${r.status.replace('_', ' ').padEnd(11)} ${r.strategy.padEnd(7)} ${r.sha.slice(0, 8)}  ${took}`);
  }
  const rollbacks = releases.filter((r) => r.status === 'rolled_back').length;
  n.line(`${releases.length} releases to production, ${rollbacks} rolled back by the analysis, none by hand`);

  const commitTimes = new Map<string, string>();
  for (const r of releases) commitTimes.set(r.sha, await commitTime(s.repo, r.sha));
  const d = doraFigures(releases, commitTimes);
  const first = Math.min(...releases.map((r) => new Date(r.startedAt ?? r.createdAt).getTime()));
  n.line(`DORA       deployments: ${d.deployments} in ${formatDuration(Date.now() - first)}`);
  n.line(`           lead time for changes (commit → serving everyone): ${d.leadTimeMs === null ? 'n/a' : formatDuration(d.leadTimeMs)} (median)`);
  n.line(`           change failure rate: ${d.changeFailureRate === null ? 'n/a' : `${Math.round(d.changeFailureRate * 100)}%`} (${d.failures} of ${d.deployments + d.failures})`);
  n.line(`           time to restore service: ${d.timeToRestoreMs === null ? 'n/a' : formatDuration(d.timeToRestoreMs)} (the bad release's start to its rollback)`);
  if (s.users) {
    n.line(`users      ${s.users.ok + s.users.failed} requests answered, ${s.users.failed} failed, ${s.users.retried} retried by the router; p50 ${s.users.latencyMs.p50.toFixed(1)} ms, p99 ${s.users.latencyMs.p99.toFixed(1)} ms`);
  }

  const audit = await api<{ ok: boolean; entries: number }>(s.admin, 'GET', '/api/audit/verify');
  if (audit.ok) n.ok(`audit log  ${audit.entries} entries, hash chain verified: every release, step, approval and rollback is on record, untouched`);
  else n.bad(p.red(`audit log  does not verify: ${JSON.stringify(audit)}`));

  n.heading('Look around');
  n.line(`The API is at ${s.serverUrl} (OpenAPI: ${s.serverUrl}/api/openapi.json); the admin token is`);
  n.line(`  ${s.adminToken}`);
  n.line('There is no web page yet; the CLI shows the same things:');
  n.line(`  export FERRY_SERVER=${s.serverUrl} FERRY_TOKEN=${s.adminToken} FERRY_PROJECT=${s.projectId}`);
  n.line('  ferry status production     what serves production, and its measurements');
  n.line('  ferry releases production   every release, with its reason');
  n.line('  ferry app-logs production --release 2   what v2\'s instances wrote: its errors');
  n.line('  curl -H "authorization: Bearer $FERRY_TOKEN" $FERRY_SERVER/api/audit   the audit log');
  if (!s.keep) n.line(p.dim('(these work while the demo runs: `npm start -- --keep` leaves everything running)'));
  return audit.ok;
}

async function commitTime(repo: DemoRepository, sha: string): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((res, rej) =>
    execFile('git', ['show', '-s', '--format=%cI', sha], { cwd: repo.work }, (err, out) => (err ? rej(err) : res(out.trim()))),
  );
}
