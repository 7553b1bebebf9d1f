// The `process` target: the release's command run as supervised instances by the edge on this
// host, behind the environment's router. The edge does the work (src/edge/); this file says what
// to ask of it, and names everything so that a restarted controller finds it again. Where the
// traffic goes is a Traffic's business: the edge's router here (EdgeTraffic), or the team's
// HAProxy (haproxy.ts).
import { join } from 'node:path';
import type { RouteMetrics, RouteSpec } from '../../edge/api.js';
import type { EdgeClient } from '../../edge/client.js';
import type { ProcessTargetSpec } from '../../config/types.js';
import type { Release } from '../../store/releases.js';
import { instanceId, routeName, versionLabel } from './names.js';
import type { Target, TargetContext, Traffic, TrafficSplit } from './types.js';

export class DeployError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployError';
  }
}

export class ProcessTarget implements Target {
  constructor(
    private readonly edge: EdgeClient,
    private readonly ctx: TargetContext,
    /** Who routes the environment's requests to the instances. */
    private readonly traffic: Traffic,
  ) {}

  private get spec(): ProcessTargetSpec {
    return this.ctx.env.target as ProcessTargetSpec;
  }

  async launch(release: Release, count: number, from = 1): Promise<string[]> {
    if (!release.filesDir) throw new DeployError(`release ${release.id} has no files to run`);
    // An instance runs as its own release was configured (command, health, variables): when a
    // rollback restarts the old release, it must not get the new release's settings.
    const own = release.config?.target.type === 'process' ? release.config : this.ctx.env;
    const spec = own.target.type === 'process' ? own.target : this.spec;
    const { health } = own;
    const base = await this.ctx.variables(own);
    const ids = Array.from({ length: count }, (_, k) => instanceId(release.projectId, release.environment, release.number, from + k));
    const logs = join(this.ctx.home, 'releases', release.id, 'logs');
    await Promise.all(
      ids.map((id) =>
        this.edge.putInstance(id, {
          command: spec.command,
          cwd: spec.cwd ? join(release.filesDir!, spec.cwd) : release.filesDir!,
          env: { ...base, FERRY_ENVIRONMENT: release.environment, FERRY_RELEASE: release.id, FERRY_RELEASE_NUMBER: String(release.number), FERRY_COMMIT_SHA: release.sha, FERRY_INSTANCE: id },
          port: 0,
          readiness: health.readiness,
          liveness: health.liveness,
          logFile: join(logs, `${id}.log`),
          labels: { environment: release.environment, release: release.id, project: String(release.projectId) },
        }),
      ),
    );
    try {
      await Promise.all(ids.map((id) => this.edge.waitReady(id, health.startTimeoutMs)));
    } catch (err) {
      await this.retire(ids).catch(() => undefined);
      throw new DeployError((err as Error).message);
    }
    return ids;
  }

  async retire(instances: string[]): Promise<void> {
    if (instances.length === 0) return;
    await this.traffic.release(instances);
    await Promise.all(instances.map((id) => this.edge.deleteInstance(id, 10_000)));
  }

  route(split: TrafficSplit): Promise<void> {
    return this.traffic.route(split);
  }

  preview(version: string, instances: string[]): Promise<string | null> {
    return this.traffic.preview(version, instances);
  }

  closePreview(): Promise<void> {
    return this.traffic.closePreview();
  }

  metrics(): Promise<RouteMetrics | null> {
    return this.traffic.metrics();
  }

  url(): Promise<string | null> {
    return this.traffic.url();
  }

  async running(release: Release): Promise<string[]> {
    const all = await this.edge.listInstances();
    return all.filter((i) => i.spec.labels.release === release.id && i.state !== 'stopped' && i.state !== 'stopping').map((i) => i.id);
  }
}

/** The edge's own router: a weighted reverse proxy per environment, on a port it keeps. */
export class EdgeTraffic implements Traffic {
  private readonly routeKey: string;

  constructor(
    private readonly edge: EdgeClient,
    private readonly ctx: TargetContext,
    /** Called with the port the edge gave the router, the first time, to keep it. */
    private readonly onPort: (port: number) => Promise<void>,
    private readonly knownPort: number | null,
  ) {
    this.routeKey = routeName(ctx.projectId, ctx.env.name);
  }

  private routeSpec(split: TrafficSplit, port: number): RouteSpec {
    const track = (t: { version: string; instances: string[] }) => ({ version: t.version, upstreams: t.instances.map((instance) => ({ instance })) });
    return {
      host: this.ctx.env.router.host,
      port,
      sticky: this.ctx.env.router.sticky,
      ...(this.ctx.env.router.retryCanaryErrors === false ? { retryCanaryErrors: false } : {}),
      stable: split.stable ? track(split.stable) : { version: 'none', upstreams: [] },
      ...(split.canary ? { canary: { ...track(split.canary), weight: split.canary.weight } } : {}),
    };
  }

  async route(split: TrafficSplit): Promise<void> {
    const port = this.ctx.env.router.port ?? this.knownPort ?? 0;
    const status = await this.edge.putRoute(this.routeKey, this.routeSpec(split, port));
    if (status.port !== this.knownPort) await this.onPort(status.port);
  }

  /** The edge waits for its router's requests in flight when it deletes an instance. */
  async release(): Promise<void> {}

  async preview(version: string, instances: string[]): Promise<string> {
    const bg = this.ctx.env.strategy.type === 'blue-green' ? this.ctx.env.strategy : null;
    const status = await this.edge.putRoute(`${this.routeKey}-preview`, this.routeSpec({ stable: { version, instances } }, bg?.previewPort ?? 0));
    return `http://${this.ctx.env.router.host}:${status.port}`;
  }

  async closePreview(): Promise<void> {
    await this.edge.deleteRoute(`${this.routeKey}-preview`).catch(() => undefined);
  }

  async metrics(): Promise<RouteMetrics | null> {
    return this.edge.routeMetrics(this.routeKey);
  }

  async url(): Promise<string | null> {
    const r = await this.edge.getRoute(this.routeKey).catch(() => null);
    return r ? `http://${this.ctx.env.router.host}:${r.port}` : null;
  }
}

export { versionLabel };
