// `ferry server`: the store, the HTTP API, the background loops (lease reaper), and, unless told
// otherwise, an in-process runner that talks to the API like any remote runner.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../events/bus.js';
import type { RunEvent } from '../pipeline/events.js';
import { recoverAbandonedJobs } from '../runner/agent.js';
import { startChildRunner, type ChildRunner } from './child-runner.js';
import { countUsers, createUserToken, rotateRunnerToken } from '../store/access.js';
import type { Db } from '../store/db.js';
import { openDb } from '../store/open.js';
import { reapExpiredLeases } from '../store/queue.js';
import { version } from '../cli/version.js';
import { keyFingerprint, loadMasterKey } from '../secrets/crypto.js';
import { logLimitFromEnv } from '../executor/log-limit.js';
import { buildApp } from './app.js';
import { parseConfig } from '../config/load.js';
import { startSpawner } from '../process/run.js';
import { pruneSources } from './sources.js';
import { DeliveryController } from '../delivery/controller.js';
import { ensureEdge } from './edge-process.js';
import { getProject } from '../store/pipelines.js';
import { projectRepo } from './trigger.js';
import { ScheduleLoop } from './schedules.js';
import { PollLoop } from './poller.js';
import type { EdgeClient } from '../edge/client.js';
import { publish, type ServerContext } from './context.js';

export interface ServerOptions {
  home: string;
  /** PostgreSQL; else the embedded store under home. */
  databaseUrl?: string;
  host: string;
  port: number;
  runner: boolean;
  runnerConcurrency: number;
  logger?: boolean;
  /** How long a silent runner keeps its job (default 30 s). */
  leaseMs?: number;
  /** Where FERRY_MASTER_KEY is read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Run the delivery controller (default true); it starts the edge when a release needs it. */
  delivery?: boolean;
  /** The edge's admin port when the server has to start it (default: the edge's own default). */
  edgeAdminPort?: number;
  /** Bytes of log each job attempt keeps (default: FERRY_LOG_LIMIT of `env`, else 100 MiB). */
  logLimit?: number;
  /** How often remote projects without a webhook are polled (default 60 s; 0: never). */
  pollIntervalMs?: number;
}

export interface RunningServer {
  url: string;
  ctx: ServerContext;
  /** Shown once, on the first start of an empty store. */
  adminToken?: string;
  /** Where the master key came from ('created': a new key file, to be backed up), and its fingerprint. */
  masterKey: { source: 'env' | 'file' | 'created'; keyFile: string; fingerprint: string };
  close(): Promise<void>;
}

const REAP_EVERY_MS = 1000;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  // Before the store: a bad FERRY_LOG_LIMIT, FERRY_MASTER_KEY or key file stops the start with a clear message.
  const logLimit = opts.logLimit ?? logLimitFromEnv(opts.env ?? process.env);
  const keyFile = join(opts.home, 'master.key');
  const masterKey = await loadMasterKey({ env: opts.env ?? process.env, keyFile });
  // Before the store: the spawner must be forked while this process is small (src/process/run.ts).
  const stopSpawner = await startSpawner();
  const db: Db = await openDb({ home: opts.home, url: opts.databaseUrl }).catch(async (err) => {
    await stopSpawner();
    throw err;
  });
  let unlisten: (() => Promise<void>) | undefined;
  try {
    let adminToken: string | undefined;
    if ((await countUsers(db)) === 0) adminToken = (await createUserToken(db, 'admin', 'admin', 'first start')).token;
    const ctx: ServerContext = { db, home: opts.home, bus: new EventBus<RunEvent>(), queued: new EventBus(), leaseMs: opts.leaseMs ?? 30_000, masterKey: masterKey.key, logLimit };
    // Replicas on one PostgreSQL: a job queued on one wakes the runners waiting on the others
    // at once (markQueued sends the NOTIFY), instead of at their next one-second look.
    unlisten = db.listen ? await db.listen('ferry_jobs', () => ctx.queued!.emit({ type: 'jobs.queued' })) : undefined;
    if (opts.delivery !== false) {
      // Connected on first use: a server with no environments never starts an edge.
      let edge: Promise<EdgeClient> | null = null;
      ctx.edge = () => {
        edge ??= ensureEdge(opts.home, { adminPort: opts.edgeAdminPort }).catch((err: Error) => {
          edge = null;
          throw err;
        });
        return edge;
      };
    }
    const { app } = await buildApp(ctx, { logger: opts.logger });
    await app.listen({ host: opts.host, port: opts.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : opts.port;
    const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
    ctx.url = url;
    // The first push should not wait for the pipeline file's validator to load (it is loaded on
    // first use, which suits the CLI): load it now, while nothing waits.
    setImmediate(() => {
      try {
        parseConfig('warm-up:\n  script: "true"\n', 'ferry.yml');
      } catch {
        // nothing depends on it
      }
    });

    const reaper = setInterval(() => {
      reapExpiredLeases(db).then(
        (events) => publish(ctx, events),
        () => undefined, // The store is briefly unavailable: the next tick tries again.
      );
    }, REAP_EVERY_MS);
    reaper.unref();
    // Commit tars no job has used for a day (src/server/sources.ts); hourly.
    const pruner = setInterval(() => void pruneSources(opts.home).catch(() => undefined), 60 * 60 * 1000);
    pruner.unref();

    // Every replica runs it; the store lets one of them fire each slot.
    const schedules = new ScheduleLoop(ctx, { onError: (err) => process.stderr.write(`ferry server: schedules: ${err.message}\n`) });
    schedules.start();

    // Every replica runs it too; the store gives each due project to one of them.
    const pollMs = opts.pollIntervalMs ?? 60_000;
    const poller = pollMs > 0 ? new PollLoop(ctx, { intervalMs: pollMs, onError: (err) => process.stderr.write(`ferry server: polling: ${err.message}\n`) }) : undefined;
    poller?.start();

    let controller: DeliveryController | undefined;
    if (ctx.edge) {
      controller = new DeliveryController({
        db,
        home: opts.home,
        // Stable across restarts (host and home): a restarted server takes its releases back at once.
        owner: `${hostname()}-${createHash("sha256").update(opts.home).digest("hex").slice(0, 8)}`,
        edge: ctx.edge,
        repoOf: async (id) => projectRepo(ctx, (await getProject(db, id))!),
        masterKey: masterKey.key,
        publish: (events) => publish(ctx, events),
        onError: (err) => process.stderr.write(`ferry server: delivery: ${err.stack ?? err.message}\n`),
      });
      controller.start();
    }

    let runner: ChildRunner | undefined;
    if (opts.runner) {
      // One id per host and home: a restart finds its own jobs again, while replicas on one host
      // (each with its own home) never take each other's for their own.
      const id = `in-process-${hostname()}-${createHash('sha256').update(opts.home).digest('hex').slice(0, 8)}`;
      const workDir = join(opts.home, 'runner');
      // A previous server on this host died with jobs running: stop what they left, and give
      // their jobs back to the queue now rather than when their leases run out.
      await recoverAbandonedJobs(workDir);
      await db.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE status = 'running' AND lease_owner = $1", [id]);
      publish(ctx, await reapExpiredLeases(db));
      const token = await rotateRunnerToken(db, id, 'in-process', []);
      runner = startChildRunner({ url, token, concurrency: opts.runnerConcurrency, workDir });
    }

    return {
      url,
      ctx,
      adminToken,
      masterKey: { source: masterKey.source, keyFile, fingerprint: keyFingerprint(masterKey.key) },
      async close() {
        clearInterval(reaper);
        clearInterval(pruner);
        await schedules.stop();
        await poller?.stop();
        await unlisten?.();
        await controller?.stop();
        await runner?.stop();
        await app.close();
        await db.close();
        await stopSpawner();
      },
    };
  } catch (err) {
    await unlisten?.().catch(() => undefined);
    await db.close().catch(() => undefined);
    await stopSpawner();
    throw err;
  }
}
