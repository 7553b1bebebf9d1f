// One reverse proxy per route (environment), on its own port. The hot path is plain callbacks:
// Node's http server on the client side; one pass over the request's raw headers (dropping
// hop-by-hop ones, noting the few the router reads, building the upstream request head as one
// string); a weighted choice of track; round-robin over the track's ready upstreams; pooled
// keep-alive connections and a small response parser on the upstream side (upstream.ts). Bodies
// are streamed both ways, never buffered.
//
// Latency in the metrics is the time from a request's arrival (its head parsed) to its response
// head handed to the client's connection: time to first byte as the router sees it, the app's
// time plus the router's, without the time a slow client takes to read a long body.
//
// A configuration is an immutable object swapped in one assignment: a request reads it once when
// it arrives and keeps it (retries included), so each request is routed by exactly one
// configuration and a reconfiguration never touches requests in flight.
//
// Retries (idempotent requests without a body, nothing sent to the client yet, once): a failed
// connection is tried again on another upstream of the track, or on a new connection (a pooled
// one the upstream had just closed), or on the other track when this one refused; and a request
// the canary failed (a 5xx answer, a connection error, a timeout) is sent to stable, unless the
// client forced the canary or the route turned it off (RouteSpec.retryCanaryErrors). A canary's
// 5xx head is held, not forwarded; its body is discarded as it comes in the same read (the
// connection goes back to the pool), else the connection is closed rather than waited on.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { RouteSpec, RouteStatus, Track, RouteMetrics } from './api.js';
import { VersionStats, routeMetrics } from './metrics.js';
import { poolFor, upstreamSettings, type Exchange, type UpstreamConn, type UpstreamPool } from './upstream.js';

/** What the router needs to know of the supervisor's instances. */
export interface InstanceLookup {
  /** Port and readiness of an instance, or null when there is no such instance. */
  instance(id: string): { port: number; ready: boolean } | null;
}

/** Requests in flight to one upstream address; shared by every configuration of a route. */
interface Counter {
  n: number;
  /** Dropped from the route's map (nothing in flight, no configuration uses it): look it up again. */
  dropped?: boolean;
}

interface Target {
  address: string;
  host: string;
  port: number;
  ready: boolean;
  counter: Counter;
  pool: UpstreamPool;
}

interface ResolvedTrack {
  version: string;
  targets: Target[];
  rr: number;
  stats: VersionStats;
  /** The Set-Cookie header value that pins a client to this track (sticky routes). */
  setCookie: string;
  cookieValue: string;
  other: ResolvedTrack | null;
}

interface Config {
  stable: ResolvedTrack;
  canary: ResolvedTrack | null;
  /** Share of canary, 0..100. */
  weight: number;
  sticky: boolean;
  /** RouteSpec.retryCanaryErrors (default true). */
  retryCanary: boolean;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ECONNABORTED']);
/** How a pooled connection the upstream closed as it was reused fails: the router's business, not the version's. */
const STALE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
/** The client's address, read once per connection (remoteAddress asks the kernel each time). */
const kAddress = Symbol('ferry.address');

function lowerEq(k: string, lower: string, capital: string): boolean {
  return k === lower || k === capital || k.toLowerCase() === lower;
}

function parseUrl(url: string): { host: string; port: number; address: string } {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`upstream ${url}: only http:// is supported`);
  const port = u.port ? Number(u.port) : 80;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { host, port, address: `http://${u.host}` };
}

export class RouteProxy {
  readonly name: string;
  spec: RouteSpec;
  port = 0;
  private config!: Config;
  private readonly server: http.Server;
  private readonly counters = new Map<string, Counter>();
  /** Cumulative since the edge started, for every version this route has ever served. */
  readonly versions = new Map<string, VersionStats>();
  private readonly cookieName: string;
  private readonly upgrades = new Set<Socket>();

  constructor(name: string, spec: RouteSpec, private readonly instances: InstanceLookup) {
    this.name = name;
    this.spec = spec;
    this.cookieName = `ferry_track_${name}=`;
    this.config = this.resolve(spec);
    this.server = http.createServer({ noDelay: true }, (req, res) => this.handle(req, res));
    // Clients behind the route keep their connections (as nginx's 75 s); the upstream side has its own pool.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as Socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }

  /** Starts listening: on spec.port, or on `port` (a persisted pick), or on a free one. */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, this.spec.host || '127.0.0.1', () => {
        this.server.off('error', onError);
        this.port = (this.server.address() as { port: number }).port;
        resolve(this.port);
      });
    });
  }

  /** Swaps in a new configuration. Throws (and changes nothing) when the spec cannot be resolved. */
  update(spec: RouteSpec): void {
    const config = this.resolve(spec);
    this.spec = spec;
    this.config = config;
  }

  /** Re-reads the instances' ports and readiness (the supervisor calls this on every change). */
  refresh(): void {
    this.config = this.resolve(this.spec);
  }

  private stats(version: string): VersionStats {
    let s = this.versions.get(version);
    if (!s) this.versions.set(version, (s = new VersionStats()));
    return s;
  }

  /** The in-flight counter of an address (the same object for every configuration that uses it). */
  counter(address: string): Counter {
    let c = this.counters.get(address);
    if (!c) this.counters.set(address, (c = { n: 0 }));
    return c;
  }

  private resolveTrack(t: Track): ResolvedTrack {
    const targets: Target[] = [];
    for (const u of t.upstreams) {
      if (u.instance !== undefined) {
        const inst = this.instances.instance(u.instance);
        // An instance without a port yet (or gone) is kept as a non-ready target so that its
        // readiness can flip on refresh without changing the round-robin order.
        const port = inst?.port ?? 0;
        const address = `http://127.0.0.1:${port}`;
        targets.push({ address, host: '127.0.0.1', port, ready: !!inst?.ready && port > 0, counter: this.counter(address), pool: poolFor('127.0.0.1', port) });
      } else if (u.url !== undefined) {
        const { host, port, address } = parseUrl(u.url);
        targets.push({ address, host, port, ready: true, counter: this.counter(address), pool: poolFor(host, port) });
      }
    }
    const cookieValue = encodeURIComponent(t.version);
    return {
      version: t.version,
      targets,
      rr: 0,
      stats: this.stats(t.version),
      cookieValue,
      setCookie: `${this.cookieName}${cookieValue}; Path=/; HttpOnly; SameSite=Lax`,
      other: null,
    };
  }

  private resolve(spec: RouteSpec): Config {
    const stable = this.resolveTrack(spec.stable);
    const canary = spec.canary ? this.resolveTrack(spec.canary) : null;
    if (canary) {
      stable.other = canary;
      canary.other = stable;
    }
    // Counters of addresses no route config uses any more are dropped once nothing is in flight.
    const used = new Set<Counter>();
    for (const t of stable.targets) used.add(t.counter);
    if (canary) for (const t of canary.targets) used.add(t.counter);
    for (const [a, c] of this.counters) {
      if (c.n === 0 && !used.has(c)) {
        c.dropped = true;
        this.counters.delete(a);
      }
    }
    return { stable, canary, weight: spec.canary ? spec.canary.weight : 0, sticky: spec.sticky, retryCanary: spec.retryCanaryErrors !== false };
  }

  /** Requests in flight to an upstream address (http://127.0.0.1:PORT) through this route. */
  inFlightTo(address: string): number {
    return this.counters.get(address)?.n ?? 0;
  }

  status(): RouteStatus {
    const inFlight: Record<string, number> = {};
    for (const [a, c] of this.counters) inFlight[a] = c.n;
    return { name: this.name, spec: this.spec, port: this.port, inFlight };
  }

  inFlight(): Record<string, number> {
    return this.status().inFlight;
  }

  metrics(): RouteMetrics {
    return routeMetrics(this.name, this.versions);
  }

  /** Stops listening; requests in flight finish (at most drainMs), then every connection is closed. */
  close(drainMs = 10_000): Promise<void> {
    return new Promise((resolve) => {
      // Keep-alive connections are closed as soon as they are idle (between two requests), busy
      // ones once their response is done; upgraded ones (websockets) when the drain time is up.
      const idle = setInterval(() => this.server.closeIdleConnections(), 50);
      const timer = setTimeout(() => {
        this.server.closeAllConnections();
        for (const s of this.upgrades) s.destroy();
      }, drainMs);
      this.server.close(() => {
        clearInterval(idle);
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  // ---- the hot path ---------------------------------------------------------------------------

  /** Whether chooseTrack's last answer should be pinned with a cookie (read right after the call). */
  private pin = false;
  /** Whether the client asked for chooseTrack's last answer (X-Ferry-Track, or a tester's cookie
   * naming the track): its answers are passed on as they are, never retried on the other track. */
  private forced = false;

  /** Chooses the track of a request: header override, then sticky cookie, then weight. */
  private chooseTrack(config: Config, trackHeader: string | undefined, cookie: string | undefined): ResolvedTrack {
    this.pin = false;
    this.forced = false;
    const canary = config.canary;
    if (canary === null) return config.stable;
    if (trackHeader !== undefined) {
      const h = trackHeader.trim().toLowerCase();
      if (h === 'canary' || h === 'stable') {
        this.forced = true;
        return h === 'canary' ? canary : config.stable;
      }
    }
    if (config.sticky && cookie !== undefined) {
      const i = cookie.indexOf(this.cookieName);
      if (i !== -1 && (i === 0 || cookie.charCodeAt(i - 1) === 32 || cookie.charCodeAt(i - 1) === 59)) {
        const start = i + this.cookieName.length;
        let end = cookie.indexOf(';', start);
        if (end === -1) end = cookie.length;
        const v = cookie.slice(start, end).trim();
        // The cookie holds the version it was given, so a client pinned to a canary that was
        // rolled back (or promoted) is chosen for again; "stable"/"canary" are accepted for testers.
        // A client the router pinned to the canary did not ask for it (its failures are retried on
        // stable like any other canary request); a tester's "canary" did.
        if (v === canary.cookieValue) return canary;
        if (v === config.stable.cookieValue) return config.stable;
        if (v === 'canary' || v === 'stable') {
          this.forced = true;
          return v === 'canary' ? canary : config.stable;
        }
      }
    }
    this.pin = config.sticky;
    return config.weight > 0 && Math.random() * 100 < config.weight ? canary : config.stable;
  }

  static pickFor(track: ResolvedTrack, exclude: Target | null): Target | null {
    return RouteProxy.pick(track, exclude);
  }

  private static pick(track: ResolvedTrack, exclude: Target | null): Target | null {
    const ts = track.targets;
    const n = ts.length;
    for (let i = 0; i < n; i++) {
      if (track.rr >= n) track.rr = 0;
      const t = ts[track.rr++];
      if (t.ready && t !== exclude) return t;
    }
    return null;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const arrived = performance.now();
    const config = this.config;
    // One pass over the raw headers: the upstream request head, and what the router reads.
    const raw = req.rawHeaders;
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
    let trackHeader: string | undefined;
    let cookie: string | undefined;
    let hasBody = false;
    let chunked = false;
    let host = false;
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i];
      switch (k.length) {
        case 2:
          if (lowerEq(k, 'te', 'TE')) continue;
          break;
        case 4:
          if (lowerEq(k, 'host', 'Host')) host = true;
          break;
        case 6:
          if (lowerEq(k, 'cookie', 'Cookie')) cookie = cookie === undefined ? raw[i + 1] : `${cookie}; ${raw[i + 1]}`;
          break;
        case 7:
          if (lowerEq(k, 'upgrade', 'Upgrade') || lowerEq(k, 'trailer', 'Trailer')) continue;
          break;
        case 10:
          if (lowerEq(k, 'connection', 'Connection') || lowerEq(k, 'keep-alive', 'Keep-Alive')) continue;
          break;
        case 13:
          if (lowerEq(k, 'x-ferry-track', 'X-Ferry-Track')) trackHeader = raw[i + 1];
          break;
        case 14:
          if (lowerEq(k, 'content-length', 'Content-Length') && raw[i + 1] !== '0') hasBody = true;
          break;
        case 16:
          if (lowerEq(k, 'proxy-connection', 'Proxy-Connection')) continue;
          break;
        case 17:
          if (lowerEq(k, 'transfer-encoding', 'Transfer-Encoding')) {
            // Node's server hands the body on without its chunked coding: it is coded again upstream.
            hasBody = true;
            chunked = /chunked/i.test(raw[i + 1]);
          }
          break;
      }
      head += `${k}: ${raw[i + 1]}\r\n`;
    }
    const sock = req.socket as Socket & { [kAddress]?: string };
    const address = sock[kAddress] ?? (sock[kAddress] = sock.remoteAddress ?? '');
    head += `X-Forwarded-For: ${address}\r\nX-Forwarded-Proto: http\r\n`;
    if (!host) head += `Host: ${req.headers.host ?? '_'}\r\n`;
    head += '\r\n';

    let track = this.chooseTrack(config, trackHeader, cookie);
    const pin = this.pin;
    const forced = this.forced;
    let target = RouteProxy.pick(track, null);
    if (target === null && track.other !== null) {
      track = track.other;
      target = RouteProxy.pick(track, null);
    }
    if (target === null) {
      track.stats.record(503, performance.now() - arrived);
      track.stats.proxyErrors++;
      res.writeHead(503, { 'content-type': 'text/plain', 'x-ferry-version': track.version, 'retry-after': '1' });
      res.end(`ferry: no ready upstream for route ${this.name}\n`);
      req.resume();
      return;
    }
    const retryable = !hasBody && IDEMPOTENT.has(req.method!);
    const ex = new ProxyExchange(this, req, res, head, arrived, pin, hasBody, chunked, retryable, retryable && !forced && track === config.canary && config.retryCanary);
    (res as ResWithExchange)[kExchange] = ex;
    res.once('close', onResponseClose);
    ex.send(target, track);
  }

  /** Upgrades (websockets): one new connection to the upstream, then bytes both ways. */
  private upgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const arrived = performance.now();
    const config = this.config;
    const raw = req.rawHeaders;
    let trackHeader: string | undefined;
    let cookie: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i].toLowerCase();
      if (k === 'x-ferry-track') trackHeader = raw[i + 1];
      else if (k === 'cookie') cookie = raw[i + 1];
    }
    const headers = [...raw, 'X-Forwarded-For', req.socket.remoteAddress ?? '', 'X-Forwarded-Proto', 'http'];
    let track = this.chooseTrack(config, trackHeader, cookie);
    let target = RouteProxy.pick(track, null);
    if (target === null && track.other !== null) {
      track = track.other;
      target = RouteProxy.pick(track, null);
    }
    socket.on('error', () => socket.destroy());
    if (target === null) {
      track.stats.record(503, performance.now() - arrived);
      track.stats.proxyErrors++;
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nX-Ferry-Version: ${track.version}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const tr = track;
    const counter = target.counter;
    counter.n++;
    let counted = true;
    const release = () => {
      if (counted) {
        counted = false;
        counter.n--;
        this.upgrades.delete(socket);
      }
    };
    this.upgrades.add(socket);
    socket.on('close', release);
    const pr = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers, agent: false, setHost: false });
    pr.on('upgrade', (ures: http.IncomingMessage, usock: Socket, uhead: Buffer) => {
      let head101 = `HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}\r\n`;
      for (let i = 0; i < ures.rawHeaders.length; i += 2) head101 += `${ures.rawHeaders[i]}: ${ures.rawHeaders[i + 1]}\r\n`;
      head101 += `X-Ferry-Version: ${tr.version}\r\n\r\n`;
      tr.stats.record(ures.statusCode ?? 101, performance.now() - arrived);
      socket.write(head101);
      if (uhead.length) socket.write(uhead);
      if (head.length) usock.write(head);
      usock.on('error', () => socket.destroy());
      usock.on('close', () => socket.destroy());
      socket.on('close', () => usock.destroy());
      usock.pipe(socket);
      socket.pipe(usock);
    });
    pr.on('response', (ures: http.IncomingMessage) => {
      // The upstream declined the upgrade: hand its answer back and close.
      let h = `HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}\r\n`;
      for (let i = 0; i < ures.rawHeaders.length; i += 2) {
        const k = ures.rawHeaders[i].toLowerCase();
        if (k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding') h += `${ures.rawHeaders[i]}: ${ures.rawHeaders[i + 1]}\r\n`;
      }
      h += `X-Ferry-Version: ${tr.version}\r\nConnection: close\r\n\r\n`;
      tr.stats.record(ures.statusCode ?? 502, performance.now() - arrived);
      socket.write(h);
      ures.pipe(socket);
    });
    pr.on('error', (err: NodeJS.ErrnoException) => {
      tr.stats.record(502, performance.now() - arrived);
      tr.stats.proxyErrors++;
      const body = `ferry: upstream ${target!.address}: ${err.code ?? err.message}\n`;
      socket.end(`HTTP/1.1 502 Bad Gateway\r\nX-Ferry-Version: ${tr.version}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    socket.on('close', () => pr.destroy());
    pr.end();
  }
}

const kExchange = Symbol('ferry.exchange');
type ResWithExchange = http.ServerResponse & { [kExchange]?: ProxyExchange };

/** One listener function for every response (no closure per request). */
function onResponseClose(this: ResWithExchange): void {
  this[kExchange]?.clientClosed();
}

/** After the head() that held a canary's 5xx: its body did not end in the same read. */
function afterHeld(ex: ProxyExchange): void {
  ex.heldBodyPending();
}

/** One proxied request: its attempts, the answer handed on to the client. At most: a new
 * connection after a stale pooled one, on each track, and one retry on stable after the canary. */
class ProxyExchange implements Exchange {
  private conn: UpstreamConn | null = null;
  private target: Target | null = null;
  private track: ResolvedTrack | null = null;
  private counted = false;
  private finished = false;
  private retried = false;
  private bodyStarted = false;
  /** A canary 5xx head is held (not forwarded) while its body is discarded; then stable is asked. */
  private held = false;
  /** Stable's upstream for the retry of a held answer. */
  private next: Target | null = null;
  /** Why the request was retried on stable (the X-Ferry-Retried header), null when it was not. */
  private reason: string | null = null;

  constructor(
    private readonly route: RouteProxy,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly requestHead: string,
    /** When the request arrived; when it was sent to stable, for a retried one (stable's latency is stable's). */
    private arrived: number,
    private readonly pin: boolean,
    private readonly hasBody: boolean,
    private readonly chunked: boolean,
    private readonly retryable: boolean,
    /** Sent to the canary (by weight or sticky cookie, not forced), retryable, and the route allows it. */
    private canaryRetry: boolean,
  ) {}

  send(target: Target, track: ResolvedTrack, fresh = false): void {
    this.target = target;
    this.track = track;
    // A retry may go to an upstream of a configuration replaced since: count it where the edge looks.
    if (target.counter.dropped) target.counter = this.route.counter(target.address);
    target.counter.n++;
    this.counted = true;
    const conn = fresh ? target.pool.fresh() : target.pool.get();
    this.conn = conn;
    conn.start(this, this.requestHead, this.req.method === 'HEAD', !this.hasBody);
    if (this.hasBody && !this.bodyStarted) this.streamBody();
  }

  /** The canary failed this request: the one retry, on stable (the canary's failure is counted already). */
  private toStable(next: Target, reason: string): void {
    const canary = this.track!;
    this.canaryRetry = false;
    this.held = false;
    this.next = null;
    this.reason = reason;
    // Stable's own attempt may still get a new connection after a stale pooled one.
    this.retried = false;
    this.arrived = performance.now();
    this.send(next, canary.other!);
  }

  /** A held answer's body is complete (or failed, or is not waited for): retry now. */
  private retryHeld(): void {
    const next = this.next!;
    if (this.conn !== null) {
      this.conn.abandon();
      this.conn = null;
    }
    this.release();
    this.toStable(next, 'canary-5xx');
  }

  /** Called on the tick after head() held an answer: a body still coming is not waited for. */
  heldBodyPending(): void {
    if (this.held && !this.finished) this.retryHeld();
  }

  /** The request body, as Node's server parses it, to the upstream (chunked again when it was). */
  private streamBody(): void {
    this.bodyStarted = true;
    const req = this.req;
    req.on('data', (chunk: Buffer) => {
      const conn = this.conn;
      if (conn === null || this.finished) return;
      let ok: boolean;
      if (this.chunked) {
        conn.write(`${chunk.length.toString(16)}\r\n`);
        conn.write(chunk);
        ok = conn.write('\r\n');
      } else ok = conn.write(chunk);
      if (!ok) req.pause();
    });
    req.on('end', () => {
      const conn = this.conn;
      if (conn === null || this.finished) return;
      if (this.chunked) conn.write('0\r\n\r\n');
      conn.endRequest();
    });
  }

  drained(): void {
    if (this.req.isPaused()) this.req.resume();
  }

  private release(): void {
    if (this.counted) {
      this.counted = false;
      this.target!.counter.n--;
    }
  }

  head(status: number, reason: string, headers: string[]): void {
    const tr = this.track!;
    if (status >= 500 && this.canaryRetry && !this.res.destroyed) {
      // The canary failed a request it was not asked for by name: hold its answer (counted as
      // the canary's: the analysis sees it) and ask stable, if stable has an upstream.
      const next = RouteProxy.pickFor(tr.other!, null);
      if (next !== null) {
        tr.stats.record(status, performance.now() - this.arrived);
        tr.stats.retries5xx++;
        this.held = true;
        this.next = next;
        // Whatever of the body comes in this read is discarded (body()) and end() retries at
        // once, the connection back in its pool; a body still to come is not waited for.
        process.nextTick(afterHeld, this);
        return;
      }
    }
    headers.push('X-Ferry-Version', tr.version);
    // A retried request's client stays pinned to the canary it was given: the weight holds.
    if (this.reason !== null) {
      headers.push('X-Ferry-Retried', this.reason);
      if (this.pin) headers.push('Set-Cookie', tr.other!.setCookie);
    } else if (this.pin) headers.push('Set-Cookie', tr.setCookie);
    // An HTTP/1.0 client knows no chunked coding: without the header Node ends the body by closing.
    if (this.req.httpVersionMinor === 0) {
      for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i].toLowerCase() === 'transfer-encoding') headers.splice(i, 2);
    }
    try {
      this.res.writeHead(status, reason, headers);
    } catch {
      // A header Node refuses to send (invalid characters): the answer cannot be passed on.
      tr.stats.record(502, performance.now() - this.arrived);
      tr.stats.proxyErrors++;
      this.conn?.abandon();
      this.conn = null;
      this.finish();
      this.res.writeHead(502, { 'content-type': 'text/plain', 'x-ferry-version': tr.version });
      this.res.end(`ferry: upstream ${this.target!.address} of route ${this.route.name}: invalid response header\n`);
      return;
    }
    tr.stats.record(status, performance.now() - this.arrived);
  }

  body(chunk: Buffer): boolean {
    if (this.held) return true;
    if (this.res.write(chunk)) return true;
    this.res.once('drain', () => this.conn?.resume());
    return false;
  }

  end(): void {
    // An upstream that answered before taking the whole request body: its connection is not
    // reused (the rest of the body would be read as the next request).
    if (this.conn?.requestPending) this.conn.abandon();
    this.conn = null;
    if (this.held) {
      this.release();
      return this.toStable(this.next!, 'canary-5xx');
    }
    this.finish();
    this.res.end();
  }

  private finish(): void {
    this.finished = true;
    this.release();
  }

  error(code: string, headSeen: boolean): void {
    const failed = this.conn;
    this.conn = null;
    this.release();
    if (this.finished) return;
    // The body of a held canary 5xx broke off: it is counted already, stable is asked now.
    if (this.held) return this.retryHeld();
    const tr = this.track!;
    const t = this.target!;
    if (headSeen || this.res.headersSent) {
      // Part of the answer is with the client already: all that can be done is to cut it short.
      this.finished = true;
      tr.stats.proxyErrors++;
      this.res.destroy();
      return;
    }
    // A pooled connection the upstream closed as it was reused: a new one (below), on any track.
    const stale = !this.retried && failed !== null && failed.reused && STALE.has(code);
    if (this.canaryRetry && !stale && !this.res.destroyed) {
      // The canary could not answer: counted as its failure (the analysis sees it), asked of stable.
      const next = RouteProxy.pickFor(tr.other!, null);
      if (next !== null) {
        tr.stats.record(code === 'ETIMEDOUT' ? 504 : 502, performance.now() - this.arrived);
        tr.stats.proxyErrors++;
        tr.stats.retriesError++;
        return this.toStable(next, 'canary-error');
      }
    }
    // After a canary retry, stable's attempt is only repeated after a stale pooled connection.
    if (!this.retried && this.retryable && RETRYABLE.has(code) && !this.res.destroyed && (this.reason === null || stale)) {
      // Nothing reached the client and the request is safe to repeat: another upstream of the
      // track, else the other track when this one refused, else a new connection to the same
      // one (a pooled connection the upstream had just closed).
      this.retried = true;
      let next = RouteProxy.pickFor(tr, t);
      let nextTrack = tr;
      if (next === null && code === 'ECONNREFUSED' && tr.other !== null && this.reason === null) {
        next = RouteProxy.pickFor(tr.other, null);
        nextTrack = tr.other;
      }
      return next ? this.send(next, nextTrack) : this.send(t, tr, true);
    }
    this.finished = true;
    const status = code === 'ETIMEDOUT' ? 504 : 502;
    tr.stats.record(status, performance.now() - this.arrived);
    tr.stats.proxyErrors++;
    if (this.res.destroyed) return;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain', 'x-ferry-version': tr.version };
    if (this.reason !== null) headers['x-ferry-retried'] = this.reason;
    this.res.writeHead(status, headers);
    this.res.end(`ferry: upstream ${t.address} of route ${this.route.name}: ${code === 'ETIMEDOUT' ? `no answer in ${upstreamSettings.responseTimeoutMs / 1000} s` : code}\n`);
  }

  /** The client's response closed: finished normally, or the client went away mid-way. */
  clientClosed(): void {
    if (this.finished && this.conn === null) return;
    if (!this.finished || !this.res.writableFinished) {
      this.conn?.abandon();
      this.conn = null;
    }
    this.finish();
  }
}
