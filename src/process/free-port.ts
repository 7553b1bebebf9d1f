// A port for a listener that is bound later, by someone else (a router the edge opens when a
// release starts, an instance told its PORT). Binding port 0 would hand out a port from the
// kernel's ephemeral range, the same range outgoing connections take their local ports from: in
// the seconds before the real listener binds, a client connection may take it, and the listener
// fails with EADDRINUSE. A port below that range is never given to a connection by the kernel,
// so only another explicit picker could take it, and picks are random over ~20,000 ports.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;

/** The lowest port of the kernel's ephemeral range (Linux); the usual default elsewhere. Read once. */
let ephemeralLow: number | undefined;
function ephemeralStart(): number {
  if (ephemeralLow === undefined) {
    ephemeralLow = 49_152;
    try {
      const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
      if (lo && hi && lo <= hi) ephemeralLow = lo;
    } catch {
      // not Linux
    }
  }
  return ephemeralLow;
}

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function anyPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A TCP port free on host a moment ago, outside the ephemeral range when there is room below it. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const lo = ephemeralStart();
  if (lo - LOWEST >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = LOWEST + Math.floor(Math.random() * (lo - LOWEST));
      if (await canBind(port, host)) return port;
    }
  }
  // A machine whose ephemeral range starts low, or whose low ports are all taken.
  return anyPort(host);
}
