// A PostgreSQL server through a node-postgres pool.
import pg from 'pg';
import { txDb, type Db } from './db.js';

// Make results match PGlite's: int8 (count(*), bigint identities) as numbers, not strings.
// Values beyond 2^53 are not expected in Ferry's tables.
const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  },
};

export interface PostgresOpenOptions {
  /** Pool size. Default 10. */
  max?: number;
}

export class PostgresDb implements Db {
  readonly kind = 'postgres' as const;
  private closed = false;

  constructor(readonly pool: pg.Pool) {
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', () => {});
  }

  static async open(url: string, opts: PostgresOpenOptions = {}): Promise<PostgresDb> {
    const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, types: types as pg.CustomTypesConfig });
    const db = new PostgresDb(pool);
    try {
      await pool.query('SELECT 1'); // fail early and clearly on a wrong URL
    } catch (err) {
      await pool.end().catch(() => {});
      throw new Error(`cannot connect to PostgreSQL at ${redact(url)}: ${(err as Error).message}`, { cause: err });
    }
    return db;
  }

  async query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.pool.query(sql, params as unknown[] | undefined)).rows as T[];
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const tx = txDb('postgres', {
        query: async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params as unknown[] | undefined)).rows as R[],
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * LISTEN on a connection of its own (a pooled one would be handed to queries). A lost
   * connection is made again after a second; notifications sent meanwhile are missed, which
   * the listeners cover by polling anyway.
   */
  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
    let client: pg.Client | null = null;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client(this.pool.options as pg.ClientConfig);
      c.on('notification', (n) => {
        if (n.channel === channel) onNotify();
      });
      c.on('error', () => {
        c.end().catch(() => {});
        if (client === c) client = null;
        if (!stopped) retry = setTimeout(() => void connect().catch(() => undefined), 1000);
      });
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (stopped) return void (await c.end().catch(() => {}));
      client = c;
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      await client?.end().catch(() => {});
      client = null;
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/** The URL without its password, for error messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
