// A tiny client of HAProxy's runtime API (the `stats socket` of haproxy.cfg, at level admin):
// one command per connection, over a unix socket or TCP, the way `socat stdio <socket>` talks to
// it. Each command is sent after `set severity-output number`, so HAProxy prefixes its messages
// with their severity ([3] is an error) and a refused command is told from a done one without
// matching message texts. Also the parsers of what Ferry reads back: `show servers state`,
// `show stat` (CSV) and the Prometheus exporter's text.
import { connect, type Socket } from 'node:net';

export class HaproxyError extends Error {
  constructor(
    message: string,
    /** The command HAProxy refused or could not be sent, if any. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'HaproxyError';
  }
}

/** A server as `show servers state` reports it. */
export interface ServerState {
  name: string;
  addr: string;
  port: number;
  /** srv_op_state: 0 stopped (down), 1 starting, 2 running (up), 3 stopping. */
  opState: number;
  /** srv_admin_state flags (see isMaint / isDrain). */
  adminState: number;
  /** The weight set by the user (srv_uweight). */
  weight: number;
}

/** Forced, inherited or DNS-resolution maintenance (not the `disabled` of the config alone). */
export function isMaint(s: ServerState): boolean {
  return (s.adminState & 0x23) !== 0;
}

/** Forced or inherited drain. */
export function isDrain(s: ServerState): boolean {
  return !isMaint(s) && (s.adminState & 0x18) !== 0;
}

/** What HAProxy counted for one server since it started (counters) and now (sessions). */
export interface ServerFigures {
  /** HTTP responses by class: '1xx'..'5xx' and 'other'. */
  responses: Record<string, number>;
  /** Connection errors (econ) and response errors (eresp): requests the server did not answer. */
  errors: number;
  /** Sessions on the server right now (scur). */
  sessions: number;
}

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;

/** Words HAProxy's CLI cannot misread: no spaces, no `;`, no quotes. */
const WORD = /^[A-Za-z0-9_.:/@[\]-]+$/;

export class HaproxyRuntime {
  constructor(
    /** A unix socket path (absolute), or HOST:PORT of a TCP stats socket. */
    readonly socket: string,
    private readonly timeoutMs = 5_000,
  ) {}

  private open(): Socket {
    if (this.socket.startsWith('/')) return connect({ path: this.socket });
    const i = this.socket.lastIndexOf(':');
    const host = this.socket.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    return connect({ host, port: Number(this.socket.slice(i + 1)) });
  }

  /** Sends one line and reads HAProxy's answer until it closes the connection. */
  private exchange(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = this.open();
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (err: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(Buffer.concat(chunks).toString('utf8'));
      };
      const timer = setTimeout(() => done(new HaproxyError(`HAProxy's runtime API at ${this.socket} did not answer \`${line}\` within ${this.timeoutMs} ms`, line)), this.timeoutMs);
      sock.on('connect', () => sock.write(`${line}\n`));
      sock.on('data', (b: Buffer) => chunks.push(b));
      sock.on('end', () => done(null));
      sock.on('close', () => done(null));
      sock.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EACCES' ? `${err.code} (the server's user needs access to the socket: add it to HAProxy's group, or mode 660 on the socket)` : (err.code ?? err.message);
        done(new HaproxyError(`cannot reach HAProxy's runtime API at ${this.socket}: ${why}`, line));
      });
    });
  }

  /**
   * Runs one command; resolves with its output (data of `show` commands, or messages), rejects
   * with a HaproxyError carrying HAProxy's message when it refused the command.
   */
  async command(cmd: string): Promise<string> {
    if (/[\n\r;]/.test(cmd)) throw new HaproxyError(`refusing to send \`${cmd}\`: one command, without ; or a line break`, cmd);
    const out = await this.exchange(`set severity-output number; ${cmd}`);
    for (const line of out.split('\n')) {
      const m = /^\[(\d)\]: (.*)$/.exec(line);
      const text = m ? m[2]! : line;
      if ((m && Number(m[1]) <= 3) || /^(Unknown command|Permission denied)/.test(text)) {
        throw new HaproxyError(`HAProxy refused \`${cmd}\`: ${text.trim()}${/Permission denied/.test(text) ? ' (the stats socket needs `level admin`)' : ''}`, cmd);
      }
    }
    // The empty answer of `set severity-output` comes first.
    return out.replace(/^\n/, '');
  }

  /** `set server <backend>/<server> <args...>` (addr, port, state, weight). */
  async setServer(backend: string, server: string, ...args: string[]): Promise<void> {
    for (const w of [backend, server, ...args]) if (!WORD.test(w)) throw new HaproxyError(`refusing to send \`${w}\` to HAProxy`);
    await this.command(`set server ${backend}/${server} ${args.join(' ')}`);
  }

  async serversState(backend: string): Promise<ServerState[]> {
    if (!WORD.test(backend)) throw new HaproxyError(`refusing to send \`${backend}\` to HAProxy`);
    return parseServersState(await this.command(`show servers state ${backend}`));
  }

  /** Per-server figures of a backend from `show stat`. */
  async serverFigures(backend: string): Promise<Map<string, ServerFigures>> {
    if (!WORD.test(backend)) throw new HaproxyError(`refusing to send \`${backend}\` to HAProxy`);
    // Servers (type 4) of every proxy (-1), filtered here: by name, HAProxy would pick a
    // frontend of the same name first.
    const rows = parseStatCsv(await this.command('show stat -1 4 -1'));
    const out = new Map<string, ServerFigures>();
    for (const r of rows) {
      if (r.pxname !== backend || r.svname === 'BACKEND' || r.svname === 'FRONTEND') continue;
      const responses: Record<string, number> = {};
      for (const c of CLASSES) responses[c] = num(r[`hrsp_${c}`]);
      out.set(r.svname!, { responses, errors: num(r.econ) + num(r.eresp), sessions: num(r.scur) });
    }
    return out;
  }
}

function num(v: string | undefined): number {
  const n = Number(v);
  return v === undefined || v === '' || !Number.isFinite(n) ? 0 : n;
}

/** `show servers state` (format 1): a version line, a `# be_id be_name ...` header, then rows. */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('#'));
  if (!header) return [];
  const cols = header.replace(/^#\s*/, '').split(/\s+/);
  const at = (name: string) => cols.indexOf(name);
  const [iName, iAddr, iPort, iOp, iAdmin, iWeight] = ['srv_name', 'srv_addr', 'srv_port', 'srv_op_state', 'srv_admin_state', 'srv_uweight'].map(at);
  if ([iName, iAddr, iOp, iAdmin].some((i) => i! < 0)) throw new HaproxyError(`unexpected \`show servers state\` header: ${header}`);
  const out: ServerState[] = [];
  for (const l of lines) {
    if (l.startsWith('#') || !/\s/.test(l.trim())) continue; // the header, the format version
    const f = l.trim().split(/\s+/);
    out.push({
      name: f[iName!]!,
      addr: f[iAddr!]!,
      port: iPort! >= 0 ? num(f[iPort!]) : 0,
      opState: num(f[iOp!]),
      adminState: num(f[iAdmin!]),
      weight: iWeight! >= 0 ? num(f[iWeight!]) : 0,
    });
  }
  return out;
}

/** `show stat` CSV: a `# pxname,svname,...` header, then one row per proxy or server. */
export function parseStatCsv(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const cols = header.slice(2).split(',');
  return lines
    .filter((l) => !l.startsWith('#'))
    .map((l) => {
      const f = l.split(',');
      const row: Record<string, string> = {};
      cols.forEach((c, i) => {
        if (c) row[c] = f[i] ?? '';
      });
      return row;
    });
}

const PROM_NAMES: Record<string, 'responses' | 'errors' | 'sessions'> = {
  haproxy_server_http_responses_total: 'responses',
  haproxy_server_connection_errors_total: 'errors',
  haproxy_server_response_errors_total: 'errors',
  haproxy_server_current_sessions: 'sessions',
};

/** Per-server figures of `backend` from the Prometheus exporter's text format. */
export function parsePrometheusFigures(text: string, backend: string): Map<string, ServerFigures> {
  const out = new Map<string, ServerFigures>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('haproxy_server_')) continue;
    const m = /^([a-z_]+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const kind = PROM_NAMES[m[1]!];
    if (!kind) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/([A-Za-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    if (labels.proxy !== backend || !labels.server) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    let f = out.get(labels.server);
    if (!f) {
      f = { responses: Object.fromEntries(CLASSES.map((c) => [c, 0])), errors: 0, sessions: 0 };
      out.set(labels.server, f);
    }
    if (kind === 'responses') {
      const c = labels.code ?? 'other';
      f.responses[c] = (f.responses[c] ?? 0) + value;
    } else if (kind === 'errors') f.errors += value;
    else f.sessions = value;
  }
  return out;
}
