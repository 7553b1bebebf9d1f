// What a strategy asks of a target: start a release's instances, stop them, and say where
// traffic goes. One file per target under targets/ (process and script today; docker and
// kubernetes come behind the same interface), so a strategy never knows where the application runs.
import type { RouteMetrics } from '../../edge/api.js';
import type { EnvironmentConfig } from '../../config/types.js';
import type { Release } from '../../store/releases.js';

/** Traffic for an environment: the stable release's instances, and the new one's with its share. */
export interface TrafficSplit {
  stable: { version: string; instances: string[] } | null;
  canary?: { version: string; instances: string[]; weight: number };
}

export interface Target {
  /** Starts `count` instances of `release`, numbered from `from`, and resolves with their ids
   * once every one is ready; rejects (after stopping them) if one cannot become ready. */
  launch(release: Release, count: number, from?: number): Promise<string[]>;
  /** Stops instances (after their in-flight requests finish). Unknown ids are ignored. */
  retire(instances: string[]): Promise<void>;
  /** Routes the environment's traffic; atomic; requests in flight finish where they are. */
  route(split: TrafficSplit): Promise<void>;
  /** A second router that reaches only `instances` (blue-green's preview); returns its URL, or
   * null when the target has none (script: the new version answers where its own system puts it). */
  preview(version: string, instances: string[]): Promise<string | null>;
  closePreview(): Promise<void>;
  /** Cumulative per-version figures of the environment's router (null: the target has none). */
  metrics(): Promise<RouteMetrics | null>;
  /** Where the environment answers (its router), once routed. */
  url(): Promise<string | null>;
  /** Instances of `release` the target still runs (after a restart of the controller). */
  running(release: Release): Promise<string[]>;
}

/**
 * Who carries the environment's requests to a process target's instances: the edge's own router
 * (`router: { provider: edge }`, the default; targets/process.ts EdgeTraffic) or the team's
 * HAProxy driven through its runtime API (`provider: haproxy`; targets/haproxy.ts). The process
 * target runs the instances on the edge either way and asks its Traffic for the rest.
 */
export interface Traffic {
  /** As Target.route: requests in flight finish where they are. */
  route(split: TrafficSplit): Promise<void>;
  /** Takes `instances` out of traffic for good before they are stopped, once their requests in
   * flight are done (the edge's router needs nothing: the edge waits for them itself). */
  release(instances: string[]): Promise<void>;
  preview(version: string, instances: string[]): Promise<string | null>;
  closePreview(): Promise<void>;
  metrics(): Promise<RouteMetrics | null>;
  url(): Promise<string | null>;
}

export interface TargetContext {
  home: string;
  env: EnvironmentConfig;
  projectId: number;
  /** Variables and secrets every instance gets (FERRY_* added by the target): those of `config`
   * (a release's own environment configuration) when given, else of `env`. */
  variables: (config?: EnvironmentConfig) => Promise<Record<string, string>>;
  log: (line: string) => void;
}
