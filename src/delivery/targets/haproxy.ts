// HAProxy as the traffic provider of a process target (`router: { provider: haproxy }`): the
// instances run on the edge as always, and the team's HAProxy carries users' requests to them.
// Ferry drives it only through its runtime API (haproxy-runtime.ts), never by reloading it.
//
// The team's haproxy.cfg gives the backend two groups of server slots, `stable*` and `canary*`
// (server-template lines, disabled until Ferry fills them; docs/environments.md has the lines).
// A route puts each instance of the stable track in a `stable` slot and each of the canary
// track in a `canary` one: `set server <backend>/<slot> addr 127.0.0.1 port <instance port>`,
// `weight`, `state ready`. Weights (0..256) share the traffic out: the stable slots together
// get 100-w percent, the canary ones w. A slot whose instance is no longer routed goes to
// `drain` (its requests in flight finish, no new ones come), and to `maint` (free again) once
// HAProxy counts no session on it. A slot is only ever given a new address while it is free, so
// every request it answered belongs to the instance that held it then.
//
// Figures: HAProxy's per-server counters (Prometheus exporter, or `show stat`) are cumulative
// per slot, and a slot serves many releases over time. The target reads them at each measure
// and adds each slot's increase to the version the slot holds (it remembers which; a restarted
// controller finds out again from the slots' ports and the edge's instances), which gives the
// cumulative per-version counts the analysis subtracts. HAProxy keeps average times, not a
// latency histogram: the histogram stays empty, so p50/p95/p99 have no value (the config refuses
// them with this provider). Blue-green's preview is served by the edge, straight to green.
import type { RouteMetrics, VersionMetrics } from '../../edge/api.js';
import type { EdgeClient } from '../../edge/client.js';
import { HaproxyRuntime, isDrain, isMaint, parsePrometheusFigures, type ServerFigures, type ServerState } from './haproxy-runtime.js';
import { routeName, versionLabel } from './names.js';
import { DeployError, EdgeTraffic } from './process.js';
import type { TargetContext, Traffic, TrafficSplit } from './types.js';

export type Role = 'stable' | 'canary';

export interface HaproxyOptions {
  /** How long a retired instance's slot may drain before it is put in maintenance (10 s). */
  drainTimeoutMs?: number;
  /** How long newly filled slots may take to be reported up by HAProxy (10 s). */
  upTimeoutMs?: number;
  pollMs?: number;
}

export function roleOf(server: string): Role | null {
  return server.startsWith('stable') ? 'stable' : server.startsWith('canary') ? 'canary' : null;
}

/**
 * Per-slot weights (0..256) so that `stable` slots together get 100 - canaryWeight percent of the
 * requests and `canary` slots canaryWeight, spread evenly over each track's slots.
 */
export function slotWeights(stableSlots: number, canarySlots: number, canaryWeight: number | null): Record<Role, number> {
  const shareS = canaryWeight === null ? 100 : 100 - canaryWeight;
  const shareC = canaryWeight === null ? 0 : canaryWeight;
  const rs = stableSlots > 0 ? shareS / stableSlots : 0;
  const rc = canarySlots > 0 ? shareC / canarySlots : 0;
  const top = Math.max(rs, rc);
  if (top <= 0) return { stable: 0, canary: 0 };
  const scale = (r: number) => (r > 0 ? Math.max(1, Math.round((r * 256) / top)) : 0);
  return { stable: scale(rs), canary: scale(rc) };
}

function emptyVersion(): VersionMetrics {
  return { requests: 0, statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, proxyErrors: 0, latencyBuckets: [0], latencySumMs: 0 };
}

/** What a slot answered between two readings (a counter that went down: HAProxy restarted). */
function increase(cur: ServerFigures, prev: ServerFigures | undefined): ServerFigures {
  if (!prev) return cur;
  const went = Object.keys(cur.responses).some((c) => cur.responses[c]! < (prev.responses[c] ?? 0)) || cur.errors < prev.errors;
  if (went) return cur;
  const responses: Record<string, number> = {};
  for (const [c, n] of Object.entries(cur.responses)) responses[c] = n - (prev.responses[c] ?? 0);
  return { responses, errors: cur.errors - prev.errors, sessions: cur.sessions };
}

// Operations on one backend run one at a time in this process (the release driving it and the
// retirement of blue-green's warm instances may overlap).
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

interface Wanted {
  role: Role;
  instance: string;
  version: string;
  port: number;
  slot?: ServerState;
  fresh?: boolean;
}

export class HaproxyTraffic implements Traffic {
  readonly api: HaproxyRuntime;
  readonly backend: string;
  private readonly prefix: string;
  private readonly preview_: EdgeTraffic;
  private readonly key: string;
  private readonly drainTimeoutMs: number;
  private readonly upTimeoutMs: number;
  private readonly pollMs: number;
  /** Which version each filled slot holds (null: not known yet, found from HAProxy and the edge). */
  private owners: Map<string, string> | null = null;
  /** The last reading of every slot's counters, and the counts so far per version since the first. */
  private last: Map<string, ServerFigures> | null = null;
  private readonly totals = new Map<string, VersionMetrics>();
  private lastError: string | null = null;

  constructor(
    private readonly edge: EdgeClient,
    private readonly ctx: TargetContext,
    options: HaproxyOptions = {},
  ) {
    const r = ctx.env.router;
    if (r.provider !== 'haproxy' || !r.socket || !r.backend) throw new DeployError(`environment ${ctx.env.name}: router.provider haproxy needs router.socket and router.backend`);
    this.api = new HaproxyRuntime(r.socket);
    this.backend = r.backend;
    this.key = `${r.socket}\0${r.backend}`;
    this.prefix = `${routeName(ctx.projectId, ctx.env.name)}-r`;
    this.preview_ = new EdgeTraffic(edge, ctx, async () => undefined, null);
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.upTimeoutMs = options.upTimeoutMs ?? 10_000;
    this.pollMs = options.pollMs ?? 100;
  }

  private where(slot: string): string {
    return `${this.backend}/${slot}`;
  }

  /** Ferry's slots in the backend (servers named stable* and canary*), with their role. */
  private async slots(): Promise<(ServerState & { role: Role })[]> {
    const all = await this.api.serversState(this.backend);
    const mine = all.flatMap((s) => {
      const role = roleOf(s.name);
      return role ? [{ ...s, role }] : [];
    });
    if (mine.length === 0) {
      throw new DeployError(
        `HAProxy backend \`${this.backend}\` has no server slots for Ferry (servers named stable* and canary*): add to it\n` +
          '  server-template stable 1-8 127.0.0.1:1 disabled check\n  server-template canary 1-8 127.0.0.1:1 disabled check',
      );
    }
    return mine;
  }

  /** The version of one of this environment's instances, from its id (`...-r<number>-<i>`). */
  private versionOf(instance: string): string | null {
    if (!instance.startsWith(this.prefix)) return null;
    const m = /^(\d+)-\d+$/.exec(instance.slice(this.prefix.length));
    return m ? versionLabel({ environment: this.ctx.env.name, number: Number(m[1]) }) : null;
  }

  /** Ports of this environment's instances on the edge, by id. */
  private async instancePorts(): Promise<Map<string, number>> {
    const all = await this.edge.listInstances();
    return new Map(all.filter((i) => i.id.startsWith(this.prefix) && i.port > 0).map((i) => [i.id, i.port]));
  }

  /** After a restart of the controller: which version each filled slot holds, from its port. */
  private async knownOwners(): Promise<Map<string, string>> {
    if (this.owners) return this.owners;
    const [slots, ports] = await Promise.all([this.slots(), this.instancePorts()]);
    const byPort = new Map([...ports].map(([id, port]) => [port, id]));
    const owners = new Map<string, string>();
    for (const s of slots) {
      if (isMaint(s)) continue;
      const id = byPort.get(s.port);
      const version = id ? this.versionOf(id) : null;
      if (version) owners.set(s.name, version);
    }
    this.owners = owners;
    return owners;
  }

  private async readFigures(): Promise<Map<string, ServerFigures>> {
    const url = this.ctx.env.router.statsUrl;
    if (!url) return this.api.serverFigures(this.backend);
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new Error(`cannot reach HAProxy's Prometheus exporter at ${url}: ${cause?.code ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`HAProxy's Prometheus exporter at ${url} answered ${res.status}`);
    return parsePrometheusFigures(text, this.backend);
  }

  /** Reads every slot's counters and adds what each answered since the last reading to its version. */
  private async sample(): Promise<void> {
    const figures = await this.readFigures();
    const owners = await this.knownOwners();
    if (this.last) {
      for (const [slot, f] of figures) {
        const version = owners.get(slot);
        if (!version) continue;
        const d = increase(f, this.last.get(slot));
        let v = this.totals.get(version);
        if (!v) this.totals.set(version, (v = emptyVersion()));
        for (const [c, n] of Object.entries(d.responses)) {
          v.requests += n;
          if (c !== 'other') v.statusClasses[c] = (v.statusClasses[c] ?? 0) + n;
        }
        // As with the edge's router: a request the server did not answer is a 5xx of its version.
        v.requests += d.errors;
        v.statusClasses['5xx'] = (v.statusClasses['5xx'] ?? 0) + d.errors;
        v.proxyErrors += d.errors;
      }
    }
    this.last = figures;
  }

  async route(split: TrafficSplit): Promise<void> {
    await serialized(this.key, async () => {
      // What the slots answered so far belongs to the versions they held until now.
      await this.sample().catch(() => undefined);
      const owners = await this.knownOwners().catch(() => new Map<string, string>());
      const [slots, ports] = await Promise.all([this.slots(), this.instancePorts()]);
      const wanted: Wanted[] = [];
      for (const [role, track] of [
        ['stable', split.stable],
        ['canary', split.canary],
      ] as const) {
        for (const instance of track?.instances ?? []) {
          const port = ports.get(instance);
          if (!port) throw new DeployError(`instance ${instance} does not run on the edge: HAProxy cannot send it requests`);
          wanted.push({ role, instance, version: track!.version, port });
        }
      }
      const count = (role: Role) => wanted.filter((w) => w.role === role).length;
      const weights = slotWeights(count('stable'), count('canary'), split.canary ? split.canary.weight : null);
      const taken = new Set<string>();
      // Instances that hold a slot of their track keep it; the others get a free one.
      for (const w of wanted) {
        const s = slots.find((x) => x.role === w.role && !isMaint(x) && x.port === w.port && !taken.has(x.name));
        if (s) {
          taken.add(s.name);
          w.slot = s;
        }
      }
      for (const w of wanted) {
        if (w.slot) continue;
        const s = slots.find((x) => x.role === w.role && isMaint(x) && !taken.has(x.name));
        if (!s) {
          const n = slots.filter((x) => x.role === w.role).length;
          throw new DeployError(
            `HAProxy backend \`${this.backend}\` has no free \`${w.role}\` slot for ${w.instance} (${n} in all, the others hold instances or still drain): ` +
              `add slots, like server-template ${w.role} 1-${Math.max(8, 2 * n)} 127.0.0.1:1 disabled check`,
          );
        }
        taken.add(s.name);
        w.slot = s;
        w.fresh = true;
      }
      const coming: string[] = [];
      for (const w of wanted) {
        const s = w.slot!;
        const weight = weights[w.role];
        if (w.fresh) await this.api.setServer(this.backend, s.name, 'addr', '127.0.0.1', 'port', String(w.port));
        if (w.fresh || s.weight !== weight) await this.api.setServer(this.backend, s.name, 'weight', String(weight));
        if (w.fresh || isDrain(s)) {
          await this.api.setServer(this.backend, s.name, 'state', 'ready');
          coming.push(s.name);
          this.ctx.log(`HAProxy ${this.where(s.name)}: ${w.instance} (127.0.0.1:${w.port}, ${w.version}), weight ${weight}`);
        }
        owners.set(s.name, w.version);
      }
      this.owners = owners;
      await this.waitUp(coming);
      // Nothing new reaches the others; they are free again once their requests are done.
      const leaving = slots.filter((s) => !taken.has(s.name) && !isMaint(s));
      for (const s of leaving) if (!isDrain(s)) await this.api.setServer(this.backend, s.name, 'state', 'drain');
      await this.freeIdle(new Set(leaving.map((s) => s.name)));
    });
  }

  /** Waits until HAProxy reports these slots up (its health checks passed), before others drain. */
  private async waitUp(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const end = Date.now() + this.upTimeoutMs;
    for (;;) {
      const down = (await this.api.serversState(this.backend)).filter((s) => names.includes(s.name) && s.opState !== 2);
      if (down.length === 0) return;
      if (Date.now() >= end) {
        throw new DeployError(
          `HAProxy reports ${down.map((s) => this.where(s.name)).join(', ')} down ${this.upTimeoutMs / 1000}s after they were filled: ` +
            `its health check must pass on the instances (option httpchk GET ${this.ctx.env.health.readiness.path} in the backend)`,
        );
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /**
   * Puts draining slots among `names` with no session left in maintenance: free for new
   * instances. Those still busy are watched in the background (at most drainTimeoutMs) and freed
   * when their last request is done, unless a route has used them again meanwhile.
   */
  private async freeIdle(names: Set<string>): Promise<void> {
    if (names.size === 0) return;
    const [state, figures] = await Promise.all([this.api.serversState(this.backend), this.api.serverFigures(this.backend)]);
    const busy = new Map<string, number>();
    for (const s of state) {
      if (!names.has(s.name) || !isDrain(s)) continue;
      if ((figures.get(s.name)?.sessions ?? 0) === 0) await this.api.setServer(this.backend, s.name, 'state', 'maint');
      else busy.set(s.name, s.port);
    }
    if (busy.size) void this.freeLater(busy).catch(() => undefined);
  }

  private async freeLater(busy: Map<string, number>): Promise<void> {
    const end = Date.now() + this.drainTimeoutMs;
    while (busy.size && Date.now() < end) {
      await new Promise((r) => setTimeout(r, this.pollMs));
      const figures = await this.api.serverFigures(this.backend);
      const idle = [...busy].filter(([name]) => (figures.get(name)?.sessions ?? 0) === 0);
      if (idle.length === 0) continue;
      await serialized(this.key, async () => {
        const state = await this.api.serversState(this.backend);
        for (const [name, port] of idle) {
          busy.delete(name);
          const s = state.find((x) => x.name === name);
          if (s && isDrain(s) && s.port === port) await this.api.setServer(this.backend, name, 'state', 'maint');
        }
      });
    }
  }

  async release(instances: string[]): Promise<void> {
    const ports = await this.instancePorts();
    const gone = new Set(instances.map((id) => ports.get(id)).filter((p): p is number => p !== undefined));
    if (gone.size === 0) return;
    const names = await serialized(this.key, async () => {
      const mine = (await this.slots()).filter((s) => !isMaint(s) && gone.has(s.port));
      for (const s of mine) if (!isDrain(s)) await this.api.setServer(this.backend, s.name, 'state', 'drain');
      return new Set(mine.map((s) => s.name));
    });
    if (names.size === 0) return;
    const end = Date.now() + this.drainTimeoutMs;
    let busy: string[] = [];
    for (;;) {
      const figures = await this.api.serverFigures(this.backend);
      busy = [...names].filter((n) => (figures.get(n)?.sessions ?? 0) > 0);
      if (busy.length === 0 || Date.now() >= end) break;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    if (busy.length) this.ctx.log(`HAProxy: ${busy.map((n) => this.where(n)).join(', ')} still had sessions after ${this.drainTimeoutMs / 1000}s of drain; stopping anyway`);
    await serialized(this.key, async () => {
      for (const s of await this.slots()) {
        // Still the retired instance's (nothing routed another one there meanwhile).
        if (names.has(s.name) && gone.has(s.port) && !isMaint(s)) await this.api.setServer(this.backend, s.name, 'state', 'maint');
      }
    });
  }

  preview(version: string, instances: string[]): Promise<string | null> {
    return this.preview_.preview(version, instances);
  }

  closePreview(): Promise<void> {
    return this.preview_.closePreview();
  }

  async metrics(): Promise<RouteMetrics | null> {
    try {
      await serialized(this.key, () => this.sample());
      this.lastError = null;
    } catch (err) {
      // The analysis counts it inconclusive (no figures); say why once.
      const msg = (err as Error).message;
      if (msg !== this.lastError) this.ctx.log(`HAProxy's figures cannot be read: ${msg}`);
      this.lastError = msg;
      return null;
    }
    const versions: Record<string, VersionMetrics> = {};
    for (const [v, m] of this.totals) versions[v] = { ...m, statusClasses: { ...m.statusClasses }, latencyBuckets: [...m.latencyBuckets] };
    return { name: `haproxy:${this.backend}`, at: Date.now(), bucketsMs: [null], versions };
  }

  async url(): Promise<string | null> {
    return this.ctx.env.router.url ?? null;
  }
}
