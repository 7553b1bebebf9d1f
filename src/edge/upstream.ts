// The router's client side: pooled keep-alive connections to upstreams and a small HTTP/1.1
// response parser. Node's http.request + Agent cost the router about 40% more CPU per proxied
// request (measured with bench/delivery-router.mjs and per-request CPU time): a ClientRequest, an
// IncomingMessage, a parser taken from and given back to a pool, and a dozen listeners for every
// request. Here a connection owns its listeners for its whole life, a request is one write of a
// string, and the response is parsed with a few indexOf calls, its body handed on as it arrives.
//
// What it speaks: HTTP/1.1 (and 1.0) responses framed by Content-Length, chunked transfer coding
// (extensions and trailers skipped), or the end of the connection; 1xx interim answers are
// skipped; HEAD, 204 and 304 have no body. Upgrades do not come here (the router uses
// http.request for those).
import net from 'node:net';

/** The side of a proxied request that receives the upstream's answer. */
export interface Exchange {
  /** The response head; hop-by-hop headers (Connection, Keep-Alive, Proxy-Connection, Trailer) are removed. */
  head(status: number, reason: string, headers: string[]): void;
  /** A piece of the body (chunked coding removed). false: the connection stops reading until resume(). */
  body(chunk: Buffer): boolean;
  /** The response is complete. */
  end(): void;
  /** The connection failed (or the upstream broke the protocol): ECONNREFUSED, ECONNRESET, EPIPE, EPROTO... */
  error(code: string, headSeen: boolean): void;
  /** The upstream has taken the request body written so far (after a write returned false). */
  drained(): void;
}

const MAX_HEAD = 64 * 1024;
/** Idle connections kept per upstream; more are closed when their request ends. */
const MAX_IDLE = 256;
/** How long an idle connection is kept when the upstream gives no Keep-Alive hint. */
const DEFAULT_IDLE_MS = 15_000;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
export const upstreamSettings = {
  /** An upstream that sends no response head in this time is given up on (504), like nginx's
   * proxy_read_timeout; checked once a second. Changed by tests only. */
  responseTimeoutMs: 60_000,
};

const enum S {
  Idle,
  Head,
  Length,
  Chunked,
  UntilClose,
}

const enum C {
  Size,
  Data,
  DataEnd,
  Trailer,
}

export class UpstreamConn {
  readonly socket: net.Socket;
  private ex: Exchange | null = null;
  private state = S.Idle;
  private buf: Buffer | null = null;
  private headSeen = false;
  private noBody = false;
  private keepAlive = true;
  private remaining = 0;
  private cstate = C.Size;
  private line = '';
  private requestDone = true;
  private lastError: string | null = null;
  /** Idle: epoch ms after which it is not reused (the upstream may close it). Waiting for a head: when to give up. */
  expiresAt = 0;
  idleMs = DEFAULT_IDLE_MS;
  dead = false;
  /** Whether a request was sent on this connection before (a reused connection may have been closed under us). */
  reused = false;

  constructor(private readonly pool: UpstreamPool) {
    this.socket = net.connect({ host: pool.host, port: pool.port, noDelay: true });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err: NodeJS.ErrnoException) => (this.lastError = err.code ?? 'ECONNRESET'));
    this.socket.on('close', () => this.onClose());
    this.socket.on('drain', () => this.ex?.drained());
  }

  /** Sends a request head (and, when `requestDone` is false, expects body writes and endRequest()). */
  start(ex: Exchange, head: string, isHead: boolean, requestDone: boolean): void {
    this.ex = ex;
    this.state = S.Head;
    this.headSeen = false;
    this.noBody = isHead;
    this.keepAlive = true;
    this.requestDone = requestDone;
    this.expiresAt = Date.now() + upstreamSettings.responseTimeoutMs;
    this.pool.waiting.add(this);
    this.socket.write(head, 'latin1');
  }

  /** A piece of the request body, as it goes on the wire. false: wait for Exchange.drained(). */
  write(data: Buffer | string): boolean {
    return this.socket.write(data as Buffer);
  }

  /** The request body is still being written. */
  get requestPending(): boolean {
    return !this.requestDone;
  }

  endRequest(): void {
    this.requestDone = true;
    if (this.state === S.Idle && this.ex === null) this.release();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** The exchange gives up (its client went away): the connection cannot be reused. */
  abandon(): void {
    this.pool.waiting.delete(this);
    this.ex = null;
    this.destroy();
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }

  /** Called by the sweeper: no response head in time. */
  timedOut(now: number): boolean {
    if (this.state !== S.Head || this.ex === null || this.expiresAt > now) return false;
    this.fail('ETIMEDOUT');
    return true;
  }

  fail(code: string): void {
    this.pool.waiting.delete(this);
    const ex = this.ex;
    this.ex = null;
    this.destroy();
    if (ex) ex.error(code, this.headSeen);
  }

  private onClose(): void {
    this.dead = true;
    if (this.ex) this.fail(this.lastError ?? 'ECONNRESET');
  }

  private onEnd(): void {
    if (this.state === S.UntilClose && this.ex) {
      this.keepAlive = false;
      return this.complete();
    }
    if (this.ex) this.fail(this.lastError ?? 'ECONNRESET');
    else this.destroy();
  }

  private onData(d: Buffer): void {
    if (this.ex === null) {
      // Bytes nobody asked for: the connection is out of step.
      this.destroy();
      return;
    }
    switch (this.state) {
      case S.Head:
        return this.onHead(d);
      case S.Length:
        return this.onLength(d, 0);
      case S.Chunked:
        return this.onChunked(d, 0);
      case S.UntilClose:
        if (!this.ex.body(d)) this.socket.pause();
        return;
      default:
        this.destroy();
    }
  }

  private onHead(d: Buffer): void {
    let b = d;
    let from = 0;
    if (this.buf !== null) {
      from = Math.max(0, this.buf.length - 3);
      b = Buffer.concat([this.buf, d]);
      this.buf = null;
    }
    const end = b.indexOf(CRLFCRLF, from);
    if (end === -1) {
      if (b.length > MAX_HEAD) return this.fail('EPROTO');
      this.buf = b;
      return;
    }
    const text = b.toString('latin1', 0, end);
    // Status line: HTTP/1.x SSS reason
    if (text.charCodeAt(0) !== 72 || !text.startsWith('HTTP/1.')) return this.fail('EPROTO');
    const http10 = text.charCodeAt(7) === 48;
    const status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
    if (!(status >= 100 && status <= 999)) return this.fail('EPROTO');
    let eol = text.indexOf('\r\n');
    if (eol === -1) eol = text.length;
    const reason = text.slice(13, eol);
    const headers: string[] = [];
    let length = -1;
    let chunked = false;
    let keepAlive = !http10;
    let p = eol + 2;
    while (p < text.length) {
      let next = text.indexOf('\r\n', p);
      if (next === -1) next = text.length;
      const colon = text.indexOf(':', p);
      if (colon === -1 || colon > next) return this.fail('EPROTO');
      const name = text.slice(p, colon);
      const value = text.slice(colon + 1, next).trim();
      p = next + 2;
      switch (name.length) {
        case 7:
          if (name.toLowerCase() === 'trailer') continue;
          break;
        case 10: {
          const lower = name.toLowerCase();
          if (lower === 'connection') {
            const v = value.toLowerCase();
            if (v.includes('close')) keepAlive = false;
            else if (v.includes('keep-alive')) keepAlive = true;
            continue;
          }
          if (lower === 'keep-alive') {
            // "timeout=5": the upstream closes idle connections after 5 s; stop reusing a second earlier.
            const m = /timeout=(\d+)/i.exec(value);
            if (m) this.idleMs = Math.min(DEFAULT_IDLE_MS, Number(m[1]) * 1000 - 1000);
            continue;
          }
          break;
        }
        case 14:
          if (name.toLowerCase() === 'content-length') {
            const n = Number(value);
            if (!Number.isSafeInteger(n) || n < 0 || (length !== -1 && length !== n)) return this.fail('EPROTO');
            length = n;
          }
          break;
        case 16:
          if (name.toLowerCase() === 'proxy-connection') continue;
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
          break;
      }
      headers.push(name, value);
    }
    const rest = end + 4;
    if (status < 200) {
      // Interim answers (100 Continue, 103 Early Hints) are not passed on; a 101 was not asked for.
      if (status === 101) return this.fail('EPROTO');
      if (rest < b.length) return this.onHead(b.subarray(rest));
      return;
    }
    this.keepAlive = keepAlive;
    this.headSeen = true;
    this.pool.waiting.delete(this);
    const ex = this.ex!;
    ex.head(status, reason, headers);
    if (this.ex !== ex) return; // The exchange gave up in head().
    if (this.noBody || status === 204 || status === 304) {
      if (rest < b.length) this.keepAlive = false;
      return this.complete();
    }
    if (chunked) {
      this.state = S.Chunked;
      this.cstate = C.Size;
      this.line = '';
      if (rest < b.length) this.onChunked(b, rest);
      return;
    }
    if (length >= 0) {
      this.state = S.Length;
      this.remaining = length;
      if (length === 0) {
        if (rest < b.length) this.keepAlive = false;
        return this.complete();
      }
      if (rest < b.length) this.onLength(b, rest);
      return;
    }
    this.state = S.UntilClose;
    this.keepAlive = false;
    if (rest < b.length && !ex.body(b.subarray(rest))) this.socket.pause();
  }

  private onLength(b: Buffer, from: number): void {
    const ex = this.ex!;
    const n = b.length - from;
    if (n < this.remaining) {
      this.remaining -= n;
      if (!ex.body(from === 0 ? b : b.subarray(from))) this.socket.pause();
      return;
    }
    const last = b.subarray(from, from + this.remaining);
    if (n > this.remaining) this.keepAlive = false; // More than announced: do not trust this connection again.
    this.remaining = 0;
    if (last.length) ex.body(last);
    if (this.ex === ex) this.complete();
  }

  private onChunked(b: Buffer, from: number): void {
    const ex = this.ex!;
    let p = from;
    const len = b.length;
    let full = false;
    while (p < len) {
      if (this.cstate === C.Data) {
        const take = Math.min(this.remaining, len - p);
        if (!ex.body(b.subarray(p, p + take))) full = true;
        if (this.ex !== ex) return;
        p += take;
        this.remaining -= take;
        if (this.remaining === 0) this.cstate = C.DataEnd;
        continue;
      }
      const nl = b.indexOf(10, p);
      if (nl === -1) {
        this.line += b.toString('latin1', p, len);
        if (this.line.length > 4096) return this.fail('EPROTO');
        break;
      }
      const line = this.line + b.toString('latin1', p, nl);
      this.line = '';
      p = nl + 1;
      if (this.cstate === C.DataEnd) {
        this.cstate = C.Size;
        continue;
      }
      if (this.cstate === C.Size) {
        // "1a;ext=x\r": the size in hex, extensions ignored.
        let e = line.indexOf(';');
        if (e === -1) e = line.length;
        const size = parseInt(line.slice(0, e).trim(), 16);
        if (!Number.isFinite(size) || size < 0) return this.fail('EPROTO');
        if (size === 0) this.cstate = C.Trailer;
        else {
          this.remaining = size;
          this.cstate = C.Data;
        }
        continue;
      }
      // Trailer section: ends with an empty line.
      if (line === '' || line === '\r') {
        if (p < len) this.keepAlive = false;
        return this.complete();
      }
    }
    if (full) this.socket.pause();
  }

  private complete(): void {
    const ex = this.ex!;
    this.ex = null;
    this.state = S.Idle;
    this.buf = null;
    if (this.requestDone) this.release();
    ex.end();
  }

  /** Back to the pool (or closed): called when both the response and the request are done. */
  private release(): void {
    if (this.dead) return;
    this.socket.resume();
    if (!this.keepAlive || this.idleMs <= 0 || this.pool.idle.length >= MAX_IDLE) return this.destroy();
    this.reused = true;
    this.expiresAt = Date.now() + this.idleMs;
    this.pool.idle.push(this);
  }
}

export class UpstreamPool {
  readonly idle: UpstreamConn[] = [];
  /** Connections waiting for a response head (checked by the sweeper, once a second). */
  readonly waiting = new Set<UpstreamConn>();

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  /** The most recently used idle connection (LIFO keeps few connections warm), or a new one. */
  get(): UpstreamConn {
    const now = Date.now();
    let c: UpstreamConn | undefined;
    while ((c = this.idle.pop()) !== undefined) {
      if (!c.dead && c.expiresAt > now) return c;
      c.destroy();
    }
    return new UpstreamConn(this);
  }

  /** A new connection, for a retry after a pooled one failed (its siblings may be stale too). */
  fresh(): UpstreamConn {
    return new UpstreamConn(this);
  }

  /** Closes idle connections past their time, gives up on answers that do not come. */
  sweep(now: number): void {
    for (const c of this.waiting) c.timedOut(now);
    let kept = 0;
    for (const c of this.idle) {
      if (!c.dead && c.expiresAt > now) this.idle[kept++] = c;
      else c.destroy();
    }
    this.idle.length = kept;
  }

  closeIdle(): void {
    for (const c of this.idle) c.destroy();
    this.idle.length = 0;
  }
}

/** One pool per upstream address, shared by every route. */
const pools = new Map<string, UpstreamPool>();
let sweeper: NodeJS.Timeout | null = null;

export function poolFor(host: string, port: number): UpstreamPool {
  const key = `${host}:${port}`;
  let p = pools.get(key);
  if (!p) {
    pools.set(key, (p = new UpstreamPool(host, port)));
    // Pools are never dropped (one small object per address ever used): targets keep theirs.
    if (sweeper === null) {
      sweeper = setInterval(() => {
        const now = Date.now();
        for (const pool of pools.values()) pool.sweep(now);
      }, 1000);
      sweeper.unref();
    }
  }
  return p;
}

/** Closes every idle upstream connection (the edge is stopping). */
export function closeIdleUpstreams(): void {
  for (const p of pools.values()) p.closeIdle();
}
