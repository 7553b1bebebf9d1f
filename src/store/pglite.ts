// The embedded engine: PGlite with its data folder on disk.
import { PGlite } from '@electric-sql/pglite';
import { txDb, type Db } from './db.js';

export interface PgliteOpenOptions {
  /** A gzip tarball from dumpDataDir to start a NEW folder from, instead of running initdb. */
  loadDataDir?: Blob;
  /** Called by close() after the engine is closed (e.g. to release the folder lock). */
  onClose?: () => Promise<void>;
}

export class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  private closed = false;

  constructor(
    readonly pg: PGlite,
    private readonly onClose?: () => Promise<void>,
  ) {}

  /** dataDir: a folder path, or undefined / 'memory://' for an in-memory database. */
  static async open(dataDir: string | undefined, opts: PgliteOpenOptions = {}): Promise<PgliteDb> {
    const pg = await PGlite.create(dataDir, opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {});
    return new PgliteDb(pg, opts.onClose);
  }

  async query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.pg.query<T>(sql, params as unknown[] | undefined)).rows;
  }

  async exec(sql: string): Promise<void> {
    await this.pg.exec(sql);
  }

  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return this.pg.transaction((tx) =>
      fn(
        txDb('pglite', {
          query: async <R>(sql: string, params?: unknown[]) => (await tx.query<R>(sql, params as unknown[] | undefined)).rows,
          exec: async (sql: string) => {
            await tx.exec(sql);
          },
        }),
      ),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.pg.close();
    } finally {
      await this.onClose?.();
    }
  }
}
