/**
 * The SQLite side of the transaction API (see types.ts) over better-sqlite3.
 *
 * drizzle's better-sqlite3 `transaction()` cannot take an async callback (drizzle-orm issues #2275,
 * #1472: the commit ran at the first `await` and a later rollback undid nothing; better-sqlite3 now
 * refuses a callback that returns a promise), and one connection has one transaction, so any query
 * run while a transaction awaits would join it. So:
 * - transactions issue `BEGIN IMMEDIATE` / `COMMIT` / `ROLLBACK` themselves on the one write
 *   connection, and run one at a time through an in-process FIFO queue: a transaction started while
 *   another is open waits for it to end. Another process holding the write lock (a CLI command on
 *   the same file, or a second connection in this process) is waited for without blocking the event
 *   loop: `BEGIN IMMEDIATE` is tried with no busy wait and tried again after a short pause, for up
 *   to the connection's busy_timeout (a connection in this process holding the lock needs the event
 *   loop to finish its transaction, so a synchronous wait would only time out);
 * - `read()` uses a second, read-only connection (WAL lets it read while a write transaction is
 *   open), one read at a time, each in its own snapshot (`BEGIN` … `COMMIT`). A database in memory
 *   has no second connection: its reads queue with the transactions on the write connection, with
 *   `PRAGMA query_only` on while they run;
 * - savepoints nest inside a transaction (`tx.savepoint()`).
 * The pragmas and migrations are db/client.ts's `openDatabase()`.
 *
 * The bridge, while the domain moves to stores (issue 15): `databaseOf(db)` is the handle of a
 * connection code already holds as a `Db`, so a converted capability and the synchronous code
 * around it use one database. The transition rule: synchronous legacy code on that connection
 * must not run while a transaction of the handle awaits anything but its own database calls —
 * it would join that transaction (one connection, one transaction) and be rolled back with it.
 * So the handle's transactions hold no I/O (DESIGN.md: none inside a transaction), and legacy
 * calls go before or after them. better-sqlite3 answers every query synchronously, so such a
 * transaction runs from BEGIN to COMMIT within one turn of the event loop; what can still slip
 * in between its awaits is another request's continuation already queued as a microtask, whose
 * legacy statements then commit with the transaction (or, when it fails on a database error,
 * are undone with it). The queue serialises the handle's own transactions, as for any handle.
 * One use of the joining is deliberate: legacy code called synchronously from inside a
 * transaction's callback is part of that transaction (notify/callbacks.ts `applyOnce`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Sqlite from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { type Db, openDatabase } from '../client.ts';
import { checkUse, errorCode, guarded, ownedBy, Queue, refuseNested, runInScope, type Scope, trustCenterOf } from './common.ts';
import type { ReadOptions, SqliteDatabase, SqliteDb, SqliteReadDb, SqliteReader, SqliteTx, TransactionOptions } from './types.ts';

export interface SqliteEngine extends SqliteDatabase {
  /**
   * The write connection as db/client.ts opens it, for code not yet moved to stores (and to bind the
   * audit keys to). Whatever runs on it while a transaction of this handle is open joins that
   * transaction: see the transition rule above.
   */
  readonly connection: Db;
}

export function openSqliteDatabase(file: string): SqliteEngine {
  const engine = engineOver(openDatabase(file));
  bridged.set(engine.connection, engine);
  return engine;
}

const bridged = new WeakMap<Db, SqliteEngine>();

/**
 * The handle of a connection opened with db/client.ts's `openDatabase()` (the bridge, see above): one
 * per connection, made on first use. It writes on that connection; a file's reads get one read-only
 * connection of their own, a database in memory's share the writer (as with `openSqliteDatabase`).
 * Closing the handle closes the connection too, and closing the connection (`db.$client.close()`)
 * closes the read-only one.
 */
export function databaseOf(db: Db): SqliteEngine {
  let engine = bridged.get(db);
  if (!engine) {
    engine = engineOver(db);
    bridged.set(db, engine);
  }
  return engine;
}

function engineOver(connection: Db): SqliteEngine {
  const writer = connection.$client;
  const inMemory = writer.memory;
  let readOnly: Sqlite.Database | undefined;
  /** The read connection, opened on the first read (a handle made for its writes alone never opens one). */
  function readerOf(): Sqlite.Database {
    if (inMemory) return writer;
    if (!writer.open) throw new Error('the database has been closed');
    if (!readOnly) {
      preparedOnReader = undefined; // statements belong to the connection they were prepared on
      keptOnReader = new KeptQueries();
      readOnly = new Sqlite(writer.name, { readonly: true, fileMustExist: true });
      readOnly.pragma('busy_timeout = 5000');
    }
    return readOnly;
  }
  // Code not yet on the stores closes the connection itself (`db.$client.close()`): the read-only one
  // goes with it, so the last connection to close is the writer, which folds the WAL back into the file.
  const closeWriter = writer.close.bind(writer);
  writer.close = () => {
    readOnly?.close();
    readOnly = undefined;
    return closeWriter();
  };
  const writes = new Queue();
  const reads = inMemory ? writes : new Queue();
  const preparedOnWriter = statementCache(writer);
  const keptOnWriter = new KeptQueries();
  let keptOnReader = new KeptQueries();
  // Read once: every transaction waits for another connection's lock this long at most (beginImmediate).
  const busyTimeout = Number(writer.pragma('busy_timeout', { simple: true }));
  let preparedOnReader: Sqlite.Database['prepare'] | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;

  function refuseClosed(): void {
    if (closed) throw new Error('the database has been closed');
  }

  /** The tx for a transaction (depth 0) or one of its savepoints (depth ≥ 1). */
  function txHandle(scope: Scope, db: SqliteTx['db'], trustCenter: number, depth: number): SqliteTx {
    const savepoints = new Queue();
    return ownedBy<SqliteTx>(
      {
        engine: 'sqlite',
        db,
        trustCenter,
        savepoint<T>(fn: (tx: SqliteTx) => Promise<T>): Promise<T> {
          checkUse(scope);
          return savepoints.run(async () => {
            checkUse(scope);
            const name = `candor_sp_${depth + 1}`;
            writer.exec(`SAVEPOINT ${name}`);
            try {
              const result = await fn(txHandle(scope, db, trustCenter, depth + 1));
              checkUse(scope);
              writer.exec(`RELEASE ${name}`);
              return result;
            } catch (error) {
              // SQLite rolls a whole transaction back itself after some errors (SQLITE_FULL, _IOERR, _BUSY…).
              if (writer.inTransaction) {
                writer.exec(`ROLLBACK TO ${name}`);
                writer.exec(`RELEASE ${name}`);
              }
              throw error;
            }
          });
        },
        kept<T>(build: (db: SqliteDb) => T): T {
          checkUse(scope);
          return keptOnWriter.get(build, () => build(db));
        },
      },
      self,
    );
  }

  async function transaction<T>(fn: (tx: SqliteTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    refuseNested('transaction');
    refuseClosed();
    const trustCenter = trustCenterOf(options);
    return writes.run(async () => {
      const scope: Scope = { kind: 'transaction', open: true };
      const db = drizzle({ client: guarded(writer, 'prepare', scope, preparedOnWriter) });
      await beginImmediate(preparedOnWriter, busyTimeout);
      try {
        const result = await runInScope(scope, () => fn(txHandle(scope, db, trustCenter, 0)));
        scope.open = false;
        if (!writer.inTransaction)
          throw new Error('SQLite rolled this transaction back after an error inside it; nothing of it was written');
        preparedOnWriter('COMMIT').run();
        return result;
      } catch (error) {
        scope.open = false;
        if (writer.inTransaction) preparedOnWriter('ROLLBACK').run();
        throw error;
      }
    });
  }

  async function read<T>(fn: (q: SqliteReader) => Promise<T>, options?: ReadOptions): Promise<T> {
    refuseNested('read');
    refuseClosed();
    const trustCenter = trustCenterOf(options);
    return reads.run(async () => {
      const scope: Scope = { kind: 'read', open: true };
      const reader = readerOf();
      const prepared = reader === writer ? preparedOnWriter : (preparedOnReader ?? statementCache(reader));
      preparedOnReader = prepared;
      const db = drizzle({ client: guarded(reader, 'prepare', scope, prepared) });
      if (inMemory) reader.pragma('query_only = ON');
      prepared('BEGIN').run();
      try {
        const kept = reader === writer ? keptOnWriter : keptOnReader;
        const handle: SqliteReader = {
          engine: 'sqlite',
          db,
          trustCenter,
          kept<T>(build: (db: SqliteReadDb) => T): T {
            checkUse(scope);
            return kept.get(build, () => build(db));
          },
        };
        const result = await runInScope(scope, () => fn(ownedBy(handle, self)));
        scope.open = false;
        prepared('COMMIT').run();
        return result;
      } catch (error) {
        scope.open = false;
        if (reader.inTransaction) prepared('ROLLBACK').run();
        throw error;
      } finally {
        if (inMemory) reader.pragma('query_only = OFF');
      }
    });
  }

  function close(): Promise<void> {
    closed = true;
    closing ??= Promise.all([writes.drained(), reads.drained()]).then(() => {
      writer.close(); // and the read-only connection (above)
    });
    return closing;
  }

  const self: SqliteEngine = { engine: 'sqlite', connection, transaction, read, close };
  return self;
}

/**
 * `BEGIN IMMEDIATE` on the connection whose statements `prepared` keeps, waiting asynchronously while another connection holds the write
 * lock: tried without SQLite's own (synchronous) busy wait, then again after 2, 4, … 50 ms, until
 * `timeout` (the connection's busy_timeout) has passed; then SQLITE_BUSY as before.
 */
async function beginImmediate(prepared: Sqlite.Database['prepare'], timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    // prepared once (statementCache), as BEGIN and COMMIT: parsed afresh, these three cost as much as a small transaction's statements
    prepared('PRAGMA busy_timeout = 0').get();
    try {
      prepared('BEGIN IMMEDIATE').run();
      return;
    } catch (error) {
      if (errorCode(error) !== 'SQLITE_BUSY' || Date.now() >= deadline) throw error;
    } finally {
      prepared(`PRAGMA busy_timeout = ${timeout}`).get();
    }
    await sleep(pause);
  }
}

/**
 * Queries built once per connection (SqliteTx's `kept`). drizzle builds a query's SQL from its parts
 * every time it runs, and for a statement with a few expressions that costs more than SQLite takes to
 * run it: a provider's token take (an upsert whose update computes the refill) took about 200 µs to
 * build against 20 to run, and the dispatcher takes a token for about every other SMS and Slack message.
 * A prepared query holds the connection's statement (statementCache) and its parameters'
 * places, so it is built by the first transaction that asks and run by the later ones: drizzle runs a
 * prepared query on its statement directly, without the transaction's guard, which is why `kept`
 * checks the scope when it hands the query out, and why the caller runs it at once.
 */
class KeptQueries {
  readonly #byBuild = new Map<unknown, unknown>();

  /** The query `build` made on this connection, making it (`make`) the first time. */
  get<T>(build: (db: never) => T, make: () => T): T {
    if (this.#byBuild.has(build)) return this.#byBuild.get(build) as T; // what this `build` made, so a T
    const query = make();
    this.#byBuild.set(build, query);
    return query;
  }
}

/** Statements kept per connection, at most this many (the least recently used go first). */
const CACHED_STATEMENTS = 500;

/**
 * `prepare` of one connection, keeping each statement by its SQL text for the next query with the
 * same text. drizzle prepares every query afresh, and the stores' queries are the same few hundred
 * texts with different parameters: compiling them again was most of a small query's cost (the
 * dispatcher's fan-out ran at half speed on the async layer before this). A kept statement is
 * handed out in the mode drizzle expects of a new one (`raw(false)`: drizzle switches it to arrays
 * itself when it wants them). A statement is never in use by two queries at once: better-sqlite3
 * runs each synchronously to the end, and drizzle does not iterate.
 */
function statementCache(connection: Sqlite.Database): Sqlite.Database['prepare'] {
  const kept = new Map<string, Sqlite.Statement>();
  return ((source: string) => {
    let statement = kept.get(source);
    if (statement) {
      kept.delete(source); // and set again below: the Map's order is the order of last use
      if (statement.reader) statement.raw(false);
    } else {
      statement = connection.prepare(source);
      if (kept.size >= CACHED_STATEMENTS) {
        const oldest = kept.keys().next();
        if (!oldest.done) kept.delete(oldest.value);
      }
    }
    kept.set(source, statement);
    return statement;
  }) as Sqlite.Database['prepare'];
}

/**
 * The other half of the bridge: the SQLite connection behind an engine handle, for a converted
 * capability that must still call a function of one not yet on the stores (issue 15). On
 * PostgreSQL there is no such connection, so the call is refused with a message that says so;
 * every use goes once the capability it calls is converted.
 */
export function legacyConnection(database: { engine: 'sqlite' | 'postgres' }): Db {
  const connection: unknown = database.engine === 'sqlite' ? Reflect.get(database, 'connection') : undefined;
  if (typeof connection !== 'object' || connection === null || !('$client' in connection)) {
    throw new Error('this step is not yet on the stores and runs on SQLite only (issue 15)');
  }
  return connection as Db;
}
