// One small interface over the two SQL engines Ferry runs on: PGlite (PostgreSQL compiled to
// WASM, embedded, a data folder on disk) and a PostgreSQL server. The same SQL runs on both.
//
// Conventions that keep results identical across engines:
// - int8 (bigint, count(*)) comes back as a JS number on both (PGlite does this; the postgres
//   implementation installs the same parser). Cast counts with ::int anyway where it is free.
// - timestamptz comes back as Date, json/jsonb as parsed values.
// - JSON parameters are passed as strings (JSON.stringify) with an explicit ::jsonb cast: a JS
//   array handed to node-postgres would become a PostgreSQL array, not JSON.

export type DbKind = 'pglite' | 'postgres';

export interface Db {
  readonly kind: DbKind;
  /** One statement with $1.. parameters; resolves to the rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Several statements separated by `;`, no parameters (simple query protocol). */
  exec(sql: string): Promise<void>;
  /**
   * Runs fn inside a transaction on one connection: COMMIT when it resolves, ROLLBACK when it
   * throws. Nested calls on the `tx` handle use savepoints.
   */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  /** Releases the engine (and, for PGlite, the folder lock). A no-op on a transaction handle. */
  close(): Promise<void>;
  /**
   * Calls `onNotify` on every NOTIFY on `channel`, from any connection (other server replicas);
   * resolves to a function that stops listening. Only where other processes share the store
   * (PostgreSQL): in one process the event bus already says what changed.
   */
  listen?(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
}

/** Connection-scoped helpers shared by both implementations. */
export interface TxConnection {
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

/** Wraps a connection that is already inside a transaction as a Db; nested transactions use savepoints. */
export function txDb(kind: DbKind, conn: TxConnection): Db {
  let depth = 0;
  const self: Db = {
    kind,
    query: (sql, params) => conn.query(sql, params),
    exec: (sql) => conn.exec(sql),
    async transaction(fn) {
      const name = `ferry_sp_${++depth}`;
      await conn.exec(`SAVEPOINT ${name}`);
      try {
        const result = await fn(self);
        await conn.exec(`RELEASE SAVEPOINT ${name}`);
        return result;
      } catch (err) {
        await conn.exec(`ROLLBACK TO SAVEPOINT ${name}`);
        throw err;
      } finally {
        depth--;
      }
    },
    async close() {
      /* the owner of the transaction closes the database */
    },
  };
  return self;
}

/** JSON text for a ::jsonb parameter. Removes what PostgreSQL refuses in text and jsonb: NUL
 * characters and lone UTF-16 surrogates. */
export function toJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, (_k, v: unknown) => (typeof v === 'string' ? cleanText(v) : v));
}

// eslint-disable-next-line no-control-regex
const BAD_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text PostgreSQL accepts: NUL becomes U+FFFD, lone surrogates become U+FFFD. */
export function cleanText(s: string): string {
  // The common case, checked natively: several times faster than the pattern over a large log.
  if (!s.includes('\u0000') && (s as string & { isWellFormed(): boolean }).isWellFormed()) return s;
  BAD_TEXT.lastIndex = 0;
  return BAD_TEXT.test(s) ? s.replace(BAD_TEXT, '\uFFFD') : s;
}

/** Epoch milliseconds as an ISO string for a timestamptz column in a JSON record set. */
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
