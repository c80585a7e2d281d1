/**
 * The engine-neutral database handle: one transaction API over SQLite (better-sqlite3) and
 * PostgreSQL (node-postgres), which stores are written against.
 *
 * - `transaction(fn)` runs `fn` in one transaction and commits when the promise it returns resolves;
 *   when it rejects, everything `fn` wrote is rolled back (also what it wrote before an `await`) and
 *   `transaction()` rejects with the same error. `fn` gets a `Tx`: the engine's drizzle query builder
 *   bound to that transaction, the trust center the transaction is scoped to, and `savepoint()`.
 * - `read(fn)` runs `fn` on one consistent snapshot, read-only, without waiting for open write
 *   transactions and without seeing their uncommitted writes.
 * - SQLite: transactions never interleave (one in-process queue over the one write connection,
 *   `BEGIN IMMEDIATE`); reads use a second, read-only connection. PostgreSQL: transactions are real
 *   concurrent transactions (READ COMMITTED unless `serializable`), so a read-then-write that must not
 *   race says how (row lock, `SKIP LOCKED`, advisory lock, unique key, or `serializable`); every
 *   transaction starts with `set_config('app.trust_center', …, true)`, which the row-level security
 *   policies read.
 * - PostgreSQL re-runs the whole `fn` after a serialisation failure or a deadlock (40001, 40P01),
 *   a bounded number of times. So `fn` must do nothing but database work: no network I/O, no
 *   messages sent, no in-memory state changed that a re-run would change twice (DESIGN.md: never
 *   network I/O inside a transaction). Do such work after `transaction()` resolves.
 * - Inside `fn`, use `tx` only. Calling `transaction()` or `read()` of the database from inside `fn`
 *   is refused with an error (on SQLite it would wait for the transaction it runs in, forever); so is
 *   using a `tx` after its transaction ended or from code outside `fn` while it is suspended.
 * - A store branches on `tx.engine` to pick the engine's tables, and only where the SQL differs
 *   (e.g. `.for('update')`, which SQLite neither has nor needs).
 */
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';

export type Engine = 'sqlite' | 'postgres';

/** drizzle over the SQLite write connection; its own `transaction()` is withheld: use `savepoint()`. */
export type SqliteDb = Omit<BetterSQLite3Database, 'transaction'>;
/** drizzle over the PostgreSQL connection checked out for this transaction; `transaction()` withheld likewise. */
export type PgDb = Omit<NodePgDatabase, 'transaction'>;

/** What reading needs: the select builders and, for what the builder cannot say, raw SQL. */
export type SqliteReadDb = Pick<SqliteDb, 'select' | 'selectDistinct' | '$count' | '$with' | 'with' | 'all' | 'get' | 'values'>;
export type PgReadDb = Pick<PgDb, 'select' | 'selectDistinct' | 'selectDistinctOn' | '$count' | '$with' | 'with' | 'execute'>;

interface Scoped {
  /** the trust center every query of this transaction is scoped to (on PostgreSQL also by the RLS policies) */
  readonly trustCenter: number;
}

export interface SqliteTx extends Scoped {
  readonly engine: 'sqlite';
  readonly db: SqliteDb;
  /**
   * Runs `fn` inside a SAVEPOINT of this transaction: when `fn` rejects, only what it wrote is undone
   * and the transaction goes on. Savepoints of one tx run one after the other; do not query through
   * the outer tx while one of its savepoints is open.
   */
  savepoint<T>(fn: (tx: SqliteTx) => Promise<T>): Promise<T>;
  /**
   * A query built once per connection and kept: `build` (a function declared once, its identity is
   * the key) makes it with drizzle's `.prepare()`, with `sql.placeholder()` for everything that
   * varies, and later calls get the same prepared query back. For the few
   * statements run thousands of times a minute, whose building costs more than SQLite takes to run
   * them (see KeptQueries in sqlite.ts). Run the query at once: a kept query is not checked against
   * its transaction when it runs, only here.
   */
  kept<T>(build: (db: SqliteDb) => T): T;
}

export interface PgTx extends Scoped {
  readonly engine: 'postgres';
  readonly db: PgDb;
  /**
   * As on SQLite. On PostgreSQL an error aborts the whole transaction, so a statement that may fail
   * and be recovered from (a unique violation answered otherwise) must run inside a savepoint.
   */
  savepoint<T>(fn: (tx: PgTx) => Promise<T>): Promise<T>;
}

/** A write transaction. Every `Tx` is also a `Reader`, so read functions of stores take either. */
export type Tx = SqliteTx | PgTx;

export interface SqliteReader extends Scoped {
  readonly engine: 'sqlite';
  readonly db: SqliteReadDb;
  /** as SqliteTx's `kept`, on the read connection */
  kept<T>(build: (db: SqliteReadDb) => T): T;
}

export interface PgReader extends Scoped {
  readonly engine: 'postgres';
  readonly db: PgReadDb;
}

export type Reader = SqliteReader | PgReader;

export interface TransactionOptions {
  /** the trust center the transaction is scoped to; 1 (the only one today) when not given */
  trustCenter?: number;
  /**
   * PostgreSQL: SERIALIZABLE instead of READ COMMITTED, for a read-then-write no row lock can guard;
   * a conflict is then a serialisation failure, retried by re-running `fn`. SQLite: no effect, its
   * transactions are serialised already.
   */
  serializable?: boolean;
}

export interface ReadOptions {
  /** as for transactions */
  trustCenter?: number;
}

interface Handle {
  /** Waits for running transactions and reads, then closes every connection; later calls are refused. */
  close(): Promise<void>;
}

export interface SqliteDatabase extends Handle {
  readonly engine: 'sqlite';
  transaction<T>(fn: (tx: SqliteTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  read<T>(fn: (q: SqliteReader) => Promise<T>, options?: ReadOptions): Promise<T>;
}

export interface PostgresDatabase extends Handle {
  readonly engine: 'postgres';
  transaction<T>(fn: (tx: PgTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  read<T>(fn: (q: PgReader) => Promise<T>, options?: ReadOptions): Promise<T>;
  /**
   * Listens on a notification channel over a connection of its own (LISTEN is per session, so not a
   * pooled one). `onNotification` gets each payload; after the connection dropped and was made again
   * (retried every second until closed) `onGap` is called, since what was sent meanwhile is lost:
   * the caller reads afresh. Resolves once listening; rejects when the first connection fails.
   */
  listen(channel: string, onNotification: (payload: string) => void, onGap?: () => void): Promise<Listener>;
}

export interface Listener {
  close(): Promise<void>;
}

/** The handle the domain holds; narrow on `engine` where the engine matters. */
export type Database = SqliteDatabase | PostgresDatabase;
