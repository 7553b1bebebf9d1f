// A real delivery set-up for tests: a Ferry server (in this process) with its delivery
// controller, the edge it starts as a separate process, and a git repository holding the sample
// application and a ferry.yml whose deploy job releases it. Each `release()` commits a new
// version (its behaviour set through the environment's variables) and runs its pipeline.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeRepo, type TempRepo } from '../helpers/repo.js';
import { testServer, type TestServer } from '../server/harness.js';
import { fixture } from '../helpers/paths.js';
import { stopEdge } from '../../src/server/edge-process.js';

export interface AppBehaviour {
  VERSION: string;
  FAIL_RATE?: string;
  DELAY_MS?: string;
  CRASH_ON_START?: string;
  READY_AFTER_MS?: string;
}

export interface DeliveryRig {
  server: TestServer;
  repo: TempRepo;
  projectId: number;
  /** Commits `environment` YAML (the body under `environments: production:`) and the app's behaviour, runs the pipeline. */
  release(environmentYaml: string, app: AppBehaviour, opts?: { wait?: boolean }): Promise<{ pipelineId: string; pipeline?: PipelineResult }>;
  status(): Promise<EnvStatusBody>;
  releaseDetail(id: string): Promise<ReleaseDetail>;
  waitRelease(pred: (s: EnvStatusBody) => boolean, timeoutMs?: number): Promise<EnvStatusBody>;
  routerUrl(): Promise<string>;
  /** The edge's admin API (http://127.0.0.1:PORT, its /metrics unauthenticated), from
   * <server home>/edge/admin.json; the edge starts on the first release, so call it after one. */
  edgeAdminUrl(): string;
  /** A new user with this role and its token (e.g. a deployer for Alertmanager's webhook). */
  userToken(role: 'viewer' | 'developer' | 'deployer' | 'admin', name?: string): Promise<string>;
  close(): Promise<void>;
}

export interface PipelineResult {
  status: string;
  jobs: { id: string; name: string; status: string; failureReason: string | null }[];
}

export interface ReleaseBody {
  id: string;
  number: number;
  status: string;
  reason: string | null;
  step: number;
  weight: number;
  strategy: string;
}

export interface EnvStatusBody {
  name: string;
  url: string | null;
  stable: ReleaseBody | null;
  active: ReleaseBody | null;
  releases: ReleaseBody[];
  instances: { id: string; release: string; state: string }[];
}

export interface ReleaseDetail extends ReleaseBody {
  transitions: { to: string; actor: string; reason: string | null }[];
  measurements: { metric: string; outcome: string; values: Record<string, number | null> }[];
  progress: { tookTraffic?: boolean };
}

export function pipelineYaml(environmentYaml: string, app: AppBehaviour): string {
  const vars = Object.entries(app)
    .map(([k, v]) => `      ${k}: "${v}"`)
    .join('\n');
  const env = environmentYaml
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  return `jobs:
  production:
    deploy: { environment: production }
environments:
  production:
${env}
    variables:
${vars}
`;
}

export async function deliveryRig(): Promise<DeliveryRig> {
  const repo = makeRepo({ 'app.mjs': readFileSync(fixture('apps', 'sample-app.mjs'), 'utf8'), 'README.md': 'sample\n' });
  const server = await testServer({ delivery: true, edgeAdminPort: 0, runnerConcurrency: 1 });
  const added = await server.call<{ id: number }>('POST', '/api/projects', { path: repo.dir });
  if (added.status !== 201) throw new Error(`project add: ${added.status} ${JSON.stringify(added.body)}`);
  const projectId = added.body.id;
  const status = async () => {
    const r = await server.call<EnvStatusBody>('GET', `/api/projects/${projectId}/environments/production`);
    if (r.status !== 200) throw new Error(`status: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const rig: DeliveryRig = {
    server,
    repo,
    projectId,
    async release(environmentYaml, app, opts = {}) {
      repo.write('ferry.yml', pipelineYaml(environmentYaml, app));
      repo.commit(`release ${app.VERSION}`);
      const started = await server.call<{ pipelineId: string }>('POST', `/api/projects/${projectId}/pipelines`, {});
      if (started.status !== 201 && started.status !== 200) throw new Error(`trigger: ${started.status} ${JSON.stringify(started.body)}`);
      const pipelineId = started.body.pipelineId;
      if (opts.wait === false) return { pipelineId };
      return { pipelineId, pipeline: (await server.waitPipeline(pipelineId, 120_000)) as PipelineResult };
    },
    status,
    async releaseDetail(id) {
      return (await server.call<ReleaseDetail>('GET', `/api/releases/${id}`)).body;
    },
    async waitRelease(pred, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      let last: EnvStatusBody | null = null;
      while (Date.now() < end) {
        try {
          last = await status();
          if (pred(last)) return last;
        } catch {
          // no release yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for the release; last status: ${JSON.stringify(last)}`);
    },
    async routerUrl() {
      const s = await status();
      if (!s.url) throw new Error('production has no router yet');
      return s.url;
    },
    edgeAdminUrl() {
      const info = join(server.home, 'edge', 'admin.json');
      if (!existsSync(info)) throw new Error(`no ${info} yet: the edge starts with the first release`);
      return (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url.replace(/\/+$/, '');
    },
    async userToken(role, name = `${role}-${Math.random().toString(36).slice(2, 8)}`) {
      const r = await server.call<{ token: string }>('POST', '/api/users', { name, role });
      if (r.status !== 201 && r.status !== 200) throw new Error(`add user: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.token;
    },
    async close() {
      await server.close();
      // The edge outlives the server by design; the test stops it (and so its instances).
      await stopEdge(server.home);
    },
  };
  return rig;
}
