// The edge: one long-lived process per host holding the routers and the application instances,
// driven over the admin API (admin.ts) and persisted in FERRY_HOME/edge/state.json so that a
// restarted edge serves the same routes and runs the same instances.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import type { InstanceSpec, InstanceStatus, RouteMetrics, RouteSpec, RouteStatus } from './api.js';
import { createAdminServer } from './admin.js';
import { prometheusText } from './metrics.js';
import { RouteProxy } from './router.js';
import { closeIdleUpstreams } from './upstream.js';
import { edgeDir, ensureDir, paths, readOrCreateToken, readState, releaseLock, StateWriter, takeLock, writeAdminInfo, type EdgeState } from './state.js';
import { ConflictError, NotFoundError } from './errors.js';
import { Supervisor, killLeftovers, processesMarked, processesOf } from './supervisor.js';

export interface EdgeOptions {
  /** FERRY_HOME: the edge's files are under <home>/edge. */
  home: string;
  /** Admin API port on 127.0.0.1 (default 7701; 0 picks a free one, see admin.json). */
  adminPort?: number;
  /** At start, how long restored routes wait for their instances to be ready before listening anyway. */
  restoreReadyMs?: number;
  /** Where the edge's few messages go (default: stderr). */
  log?: (message: string) => void;
}


/** Edges of this process, by folder (tests run several, on different homes). */
const active = new Set<string>();

export class Edge {
  readonly dir: string;
  readonly token: string;
  readonly supervisor: Supervisor;
  readonly routes = new Map<string, RouteProxy>();
  url = '';
  readonly startedAt = new Date().toISOString();
  private admin: Server | null = null;
  private readonly writer: StateWriter;
  private stopped = false;
  /** state.json was read: from then on this edge's state may be written (never over one it could not read). */
  private loaded = false;
  /** Route operations one at a time (PUT/DELETE of routes await listen/close). */
  private routeQueue: Promise<unknown> = Promise.resolve();
  private readonly log: (message: string) => void;

  constructor(readonly options: EdgeOptions) {
    this.dir = edgeDir(resolve(options.home));
    ensureDir(this.dir);
    this.log = options.log ?? ((m) => process.stderr.write(`ferry edge: ${m}\n`));
    if (active.has(this.dir)) throw new Error(`another edge of this process is running on ${this.dir}`);
    takeLock(this.dir);
    this.token = readOrCreateToken(this.dir);
    this.writer = new StateWriter(paths(this.dir).state);
    this.supervisor = new Supervisor({
      edgeDir: this.dir,
      inFlightTo: (address) => {
        let n = 0;
        for (const r of this.routes.values()) n += r.inFlightTo(address);
        return n;
      },
      changed: () => {
        for (const r of this.routes.values()) r.refresh();
        void this.persist();
      },
    });
    active.add(this.dir);
  }

  state(): EdgeState {
    return {
      version: 1,
      instances: this.supervisor.list().map((i) => i.record()),
      routes: [...this.routes.values()].map((r) => ({ name: r.name, spec: r.spec, port: r.port })),
    };
  }

  persist(): Promise<void> {
    if (!this.loaded) return Promise.resolve();
    return this.writer.save(this.state());
  }

  /** Kills what a killed edge left running, restarts its instances, listens on its routes, then the admin API. */
  async start(): Promise<void> {
    const saved = readState(this.dir);
    this.loaded = true;
    const marker = `FERRY_EDGE=${this.dir}`;
    // Leftovers: the recorded process groups (verified by the instance id in their environment),
    // and anything else that carries this edge's mark (a process started just before a kill -9).
    const find = () => {
      const pids = new Set<number>(processesMarked(marker));
      for (const r of saved.instances) if (r.pid) for (const p of processesOf(r.pid, `FERRY_INSTANCE_ID=${r.id}`)) pids.add(p);
      return [...pids];
    };
    const killed = await killLeftovers(find);
    if (killed) this.log(`stopped ${killed} process(es) a previous edge left running`);
    for (const r of saved.instances) {
      if (r.stopping) continue; // Was being deleted: its leftovers are gone, it is not restarted.
      this.supervisor.restore(r);
    }
    // Routes listen once their instances are ready (bounded), so a restored route does not
    // answer 503 while its applications start.
    const wanted = new Set(saved.routes.flatMap((r) => [...r.spec.stable.upstreams, ...(r.spec.canary?.upstreams ?? [])].map((u) => u.instance).filter((x): x is string => !!x)));
    const end = Date.now() + (this.options.restoreReadyMs ?? 5_000);
    while (Date.now() < end && [...wanted].some((id) => this.supervisor.get(id)?.state === 'starting')) await new Promise((r) => setTimeout(r, 25));
    for (const r of saved.routes) {
      const proxy = new RouteProxy(r.name, r.spec, this.supervisor);
      this.routes.set(r.name, proxy);
      await this.listenRestored(proxy, r.port);
    }
    await this.persist();
    this.admin = createAdminServer(this);
    const port = this.options.adminPort ?? 7701;
    await new Promise<void>((resolve, reject) => {
      this.admin!.once('error', reject);
      this.admin!.listen(port, '127.0.0.1', () => {
        this.admin!.off('error', reject);
        resolve();
      });
    });
    const actual = (this.admin.address() as { port: number }).port;
    this.url = `http://127.0.0.1:${actual}`;
    writeAdminInfo(this.dir, { url: this.url, pid: process.pid, startedAt: this.startedAt });
  }

  /** A restored route whose port is taken keeps trying (every second) rather than failing the edge. */
  private async listenRestored(proxy: RouteProxy, port: number): Promise<void> {
    try {
      await proxy.listen(port);
    } catch (err) {
      this.log(`route ${proxy.name}: cannot listen on port ${port} (${(err as Error).message}); trying again every second`);
      proxy.port = port;
      const retry = setInterval(() => {
        if (this.stopped || this.routes.get(proxy.name) !== proxy) return void clearInterval(retry);
        proxy.listen(port).then(
          () => {
            clearInterval(retry);
            this.log(`route ${proxy.name}: listening on port ${port}`);
          },
          () => {},
        );
      }, 1000);
    }
  }

  // ---- instances --------------------------------------------------------------------------------

  async putInstance(id: string, spec: InstanceSpec): Promise<{ status: InstanceStatus; created: boolean }> {
    const { instance, created } = await this.supervisor.put(id, spec);
    await this.persist();
    return { status: instance.status(), created };
  }

  getInstance(id: string): InstanceStatus {
    const i = this.supervisor.get(id);
    if (!i) throw new NotFoundError(`no instance ${id}`);
    return i.status();
  }

  listInstances(labels: Record<string, string> = {}): InstanceStatus[] {
    const want = Object.entries(labels);
    return this.supervisor
      .list()
      .filter((i) => want.every(([k, v]) => i.spec.labels[k] === v))
      .map((i) => i.status());
  }

  async deleteInstance(id: string, graceMs: number): Promise<InstanceStatus> {
    const status = await this.supervisor.delete(id, graceMs);
    if (!status) throw new NotFoundError(`no instance ${id}`);
    await this.persist();
    return status;
  }

  // ---- routes -----------------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.routeQueue.then(fn, fn);
    this.routeQueue = run.catch(() => {});
    return run;
  }

  putRoute(name: string, spec: RouteSpec): Promise<{ status: RouteStatus; created: boolean }> {
    return this.serial(async () => {
      const existing = this.routes.get(name);
      if (existing) {
        if (spec.port !== 0 && spec.port !== existing.port) throw new ConflictError(`route ${name} listens on port ${existing.port}; its port cannot change (DELETE the route and PUT it again)`);
        if (spec.host !== existing.spec.host) throw new ConflictError(`route ${name} listens on ${existing.spec.host}; its host cannot change (DELETE the route and PUT it again)`);
        existing.update(spec);
        await this.persist();
        return { status: existing.status(), created: false };
      }
      const proxy = new RouteProxy(name, spec, this.supervisor);
      try {
        await proxy.listen(spec.port);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EADDRINUSE') throw new ConflictError(`port ${spec.port} on ${spec.host} is in use`);
        if (e.code === 'EADDRNOTAVAIL') throw new ConflictError(`${spec.host} is not an address of this machine`);
        throw err;
      }
      this.routes.set(name, proxy);
      await this.persist();
      return { status: proxy.status(), created: true };
    });
  }

  getRoute(name: string): RouteStatus {
    const r = this.routes.get(name);
    if (!r) throw new NotFoundError(`no route ${name}`);
    return r.status();
  }

  listRoutes(): RouteStatus[] {
    return [...this.routes.values()].map((r) => r.status());
  }

  routeMetrics(name: string): RouteMetrics {
    const r = this.routes.get(name);
    if (!r) throw new NotFoundError(`no route ${name}`);
    return r.metrics();
  }

  deleteRoute(name: string): Promise<RouteStatus> {
    return this.serial(async () => {
      const r = this.routes.get(name);
      if (!r) throw new NotFoundError(`no route ${name}`);
      this.routes.delete(name);
      await this.persist();
      await r.close();
      return r.status();
    });
  }

  prometheus(): string {
    return prometheusText(
      [...this.routes.values()].map((r) => ({ name: r.name, versions: r.versions, inFlight: r.inFlight() })),
      this.supervisor.list().map((i) => ({ id: i.id, state: i.state, restarts: i.restarts })),
    );
  }

  /** Stops listening (routes drain their requests), stops every instance, keeps state.json. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const admin = this.admin;
    if (admin) {
      await new Promise<void>((r) => {
        admin.close(() => r());
        admin.closeAllConnections();
      });
    }
    await Promise.all([...this.routes.values()].map((r) => r.close()));
    closeIdleUpstreams();
    await this.supervisor.stopAll(0);
    await this.persist();
    active.delete(this.dir);
    releaseLock(this.dir);
    if (existsSync(paths(this.dir).admin)) {
      try {
        const info = JSON.parse(readFileSync(paths(this.dir).admin, 'utf8')) as { pid?: number };
        if (info.pid === process.pid) rmSync(paths(this.dir).admin);
      } catch {
        // Not ours or gone.
      }
    }
  }
}

export async function startEdge(options: EdgeOptions): Promise<Edge> {
  const edge = new Edge(options);
  try {
    await edge.start();
  } catch (err) {
    await edge.stop().catch(() => {});
    throw err;
  }
  return edge;
}
