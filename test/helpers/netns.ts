// Test hosts in network namespaces this test makes: a bridge on this machine with an address of
// its own, and namespaces joined to it by veth pairs, each with an address on the bridge's /24.
// A process started in a namespace reaches this machine only through the bridge's address,
// over a (virtual) link a test can cut and mend, and cannot reach this machine's loopback: the
// closest this machine comes to runners on other hosts. Needs root and iproute2 (`ip`).
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Why namespaces cannot be made here (for a test's skip), or false when they can. */
export function netnsUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (`ip`) is not installed';
  }
  return false;
}

export interface TestHost {
  /** The namespace's name (for `ip netns exec`). */
  namespace: string;
  /** Its address on the bridge. */
  address: string;
  /** Its end of the veth pair, as it sees it (under /sys/class/net inside the namespace). */
  link: string;
  /** The veth end on this machine's side: down cuts the host off. */
  hostSide: string;
}

export interface TestNetwork {
  /** This machine's address on the bridge: what the hosts connect to. */
  address: string;
  hosts: TestHost[];
  /** Starts `command` inside `host`'s namespace. */
  spawnIn(host: TestHost, command: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Takes the host's link down (no packet passes either way) or brings it back. */
  cut(host: TestHost): void;
  mend(host: TestHost): void;
  /** Removes the namespaces, their links and the bridge. */
  destroy(): void;
}

/** A bridge and `count` hosts on 10.250.N.0/24 (N from this process's id, so test files running
 * at once get networks of their own); names carry the same id. */
export function createTestNetwork(count: number): TestNetwork {
  const id = process.pid % 250;
  const tag = process.pid.toString(36);
  const bridge = `fbr${tag}`;
  const address = `10.250.${id}.1`;
  const hosts: TestHost[] = [];
  const made = { bridge: false, namespaces: [] as string[] };
  const destroy = () => {
    for (const ns of made.namespaces) {
      try {
        ip('netns', 'del', ns); // its veth pair goes with it
      } catch {
        // already gone
      }
    }
    if (made.bridge) {
      try {
        ip('link', 'del', bridge);
      } catch {
        // already gone
      }
    }
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    made.bridge = true;
    ip('addr', 'add', `${address}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (let i = 0; i < count; i++) {
      const namespace = `fns${tag}${i}`;
      const hostSide = `fvh${tag}${i}`;
      const link = `fvn${tag}${i}`;
      ip('netns', 'add', namespace);
      made.namespaces.push(namespace);
      ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', link);
      ip('link', 'set', link, 'netns', namespace);
      ip('link', 'set', hostSide, 'master', bridge);
      ip('link', 'set', hostSide, 'up');
      const hostAddress = `10.250.${id}.${i + 2}`;
      ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${hostAddress}/24`, 'dev', link);
      ip('netns', 'exec', namespace, 'ip', 'link', 'set', link, 'up');
      ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
      hosts.push({ namespace, address: hostAddress, link, hostSide });
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    address,
    hosts,
    spawnIn: (host, command, args, opts = {}) => spawn('ip', ['netns', 'exec', host.namespace, command, ...args], opts),
    cut: (host) => ip('link', 'set', host.hostSide, 'down'),
    mend: (host) => ip('link', 'set', host.hostSide, 'up'),
    destroy,
  };
}
