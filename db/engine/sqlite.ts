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
 *   the same file) is waited for by SQLite's busy_timeout, as before — synchronously, so keep that
 *   process's transactions short too;
 * - `read()` uses a second, read-only connection (WAL lets it read while a write transaction is
 *   open), one read at a time, each in its own snapshot (`BEGIN` … `COMMIT`). A database in memory
 *   has no second connection: its reads queue with the transactions on the write connection, with
 *   `PRAGMA query_only` on while they run;
 * - savepoints nest inside a transaction (`tx.savepoint()`).
 * The pragmas and migrations are db/client.ts's `openDatabase()`.
 */
import Sqlite from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { type Db, openDatabase } from '../client.ts';
import { checkUse, guarded, Queue, refuseNested, runInScope, type Scope, trustCenterOf } from './common.ts';
import type { ReadOptions, SqliteDatabase, SqliteReader, SqliteTx, TransactionOptions } from './types.ts';

export interface SqliteEngine extends SqliteDatabase {
  /**
   * The write connection as db/client.ts opens it, for code not yet moved to stores (and to bind the
   * audit keys to). Whatever runs on it while a transaction of this handle is open joins that
   * transaction: do not mix the two within one request.
   */
  readonly connection: Db;
}

export function openSqliteDatabase(file: string): SqliteEngine {
  const connection = openDatabase(file);
  const writer = connection.$client;
  const inMemory = file === ':memory:' || file === '';
  const reader = inMemory ? writer : new Sqlite(file, { readonly: true, fileMustExist: true });
  if (!inMemory) reader.pragma('busy_timeout = 5000');
  const writes = new Queue();
  const reads = inMemory ? writes : new Queue();
  let closed = false;
  let closing: Promise<void> | undefined;

  function refuseClosed(): void {
    if (closed) throw new Error('the database has been closed');
  }

  /** The tx for a transaction (depth 0) or one of its savepoints (depth ≥ 1). */
  function txHandle(scope: Scope, db: SqliteTx['db'], trustCenter: number, depth: number): SqliteTx {
    const savepoints = new Queue();
    return {
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
    };
  }

  async function transaction<T>(fn: (tx: SqliteTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    refuseNested('transaction');
    refuseClosed();
    const trustCenter = trustCenterOf(options);
    return writes.run(async () => {
      const scope: Scope = { kind: 'transaction', open: true };
      const db = drizzle({ client: guarded(writer, 'prepare', scope) });
      writer.exec('BEGIN IMMEDIATE');
      try {
        const result = await runInScope(scope, () => fn(txHandle(scope, db, trustCenter, 0)));
        scope.open = false;
        if (!writer.inTransaction)
          throw new Error('SQLite rolled this transaction back after an error inside it; nothing of it was written');
        writer.exec('COMMIT');
        return result;
      } catch (error) {
        scope.open = false;
        if (writer.inTransaction) writer.exec('ROLLBACK');
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
      const db = drizzle({ client: guarded(reader, 'prepare', scope) });
      if (inMemory) reader.pragma('query_only = ON');
      reader.exec('BEGIN');
      try {
        const result = await runInScope(scope, () => fn({ engine: 'sqlite', db, trustCenter }));
        scope.open = false;
        reader.exec('COMMIT');
        return result;
      } catch (error) {
        scope.open = false;
        if (reader.inTransaction) reader.exec('ROLLBACK');
        throw error;
      } finally {
        if (inMemory) reader.pragma('query_only = OFF');
      }
    });
  }

  function close(): Promise<void> {
    closed = true;
    closing ??= Promise.all([writes.drained(), reads.drained()]).then(() => {
      if (reader !== writer) reader.close();
      writer.close();
    });
    return closing;
  }

  return { engine: 'sqlite', connection, transaction, read, close };
}
