/**
 * The PostgreSQL side of the transaction API (see types.ts) over a node-postgres pool.
 *
 * Each transaction checks a connection out of the pool, opens the transaction and scopes it to its
 * trust center (`set_config('app.trust_center', …, true)`: transaction-local, so it ends with the
 * transaction and never reaches the connection's next user), runs the callback with drizzle bound to
 * that connection, commits or rolls back, and gives the connection back — or destroys it when it can
 * no longer be rolled back (the server or the network dropped it). A serialisation failure or a
 * deadlock (SQLSTATE 40001, 40P01) rolls back and re-runs the whole callback, up to `attempts` times
 * in all, after a short random pause: the callback must therefore be free of effects outside the
 * database. Reads are REPEATABLE READ, READ ONLY transactions: one snapshot, never a conflict.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DrizzleQueryError } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { checkUse, errorCode, guarded, ownedBy, Queue, refuseNested, runInScope, type Scope, trustCenterOf } from './common.ts';
import type { Listener, PgReader, PgTx, PostgresDatabase, ReadOptions, TransactionOptions } from './types.ts';

export interface PostgresEngine extends PostgresDatabase {
  /** For what is not a transaction (session advisory locks); queries on it run with no trust center set. */
  readonly pool: pg.Pool;
}

export interface PostgresOptions {
  /** postgres://user@host:port/database */
  url: string;
  /** connections held at most (node-postgres's default: 10) */
  maxConnections?: number;
  /** how many times a transaction runs at most when it keeps ending in a serialisation failure or deadlock (default 10) */
  attempts?: number;
}

/** SQLSTATEs after which the whole transaction is re-run: serialization_failure, deadlock_detected. */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * What a failed query rejects with, as on SQLite: the driver's error (its message says why; SQLSTATE in
 * `code`). drizzle's node-postgres session wraps it in a DrizzleQueryError whose message is the query and
 * every parameter value (addresses, hashes of secrets, sealed data) and not the reason, and whoever logs
 * the message (an action's or a job's failure) would log those instead of the cause.
 */
function driverError(error: unknown): unknown {
  return error instanceof DrizzleQueryError && error.cause instanceof Error ? error.cause : error;
}

export function openPostgresDatabase(options: PostgresOptions): PostgresEngine {
  const pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 10 });
  // An idle connection that fails (a restarted server) is dropped by the pool; without a listener the process would exit.
  pool.on('error', (error) => console.error(`[candor] an idle PostgreSQL connection failed and was dropped: ${error.message}`));
  // Ten, with pauses growing to a second: five with pauses of at most 160 ms gave up under a burst of
  // concurrent serializable publishers on a loaded machine (change-notice-store's concurrency case).
  const attempts = Math.max(1, options.attempts ?? 10);
  let closed = false;
  let closing: Promise<void> | undefined;
  let running = 0;
  const idle = new Set<() => void>();

  function refuseClosed(): void {
    if (closed) throw new Error('the database has been closed');
  }

  /** One try: check out, begin, scope, run, commit (or roll back), give back. */
  async function once<T>(
    begin: string,
    trustCenter: number,
    kind: Scope['kind'],
    run: (client: pg.PoolClient, scope: Scope) => Promise<T>,
  ) {
    const client = await pool.connect();
    // While checked out the pool does not listen for the connection's errors; a connection dropped while the
    // callback awaits something would otherwise be an uncaught 'error' event. The next query reports it.
    const ignore = () => {};
    client.on('error', ignore);
    const scope: Scope = { kind, open: true };
    let broken: Error | undefined;
    try {
      // One round trip; the trust center is a checked positive integer, so it can stand in the text.
      await client.query(`${begin}; SELECT set_config('app.trust_center', '${trustCenter}', true)`);
      const result = await runInScope(scope, () => run(client, scope));
      scope.open = false;
      await client.query('COMMIT');
      return result;
    } catch (error) {
      scope.open = false;
      try {
        await client.query('ROLLBACK');
      } catch (failure) {
        broken = failure instanceof Error ? failure : new Error('ROLLBACK failed');
      }
      throw error;
    } finally {
      client.removeListener('error', ignore);
      client.release(broken);
    }
  }

  async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    refuseClosed();
    running++;
    try {
      for (let tried = 1; ; tried++) {
        try {
          return await attempt();
        } catch (error) {
          const code = errorCode(error);
          if (tried >= attempts || code === undefined || !RETRYABLE.has(code)) throw driverError(error);
          await sleep(Math.random() * Math.min(1000, 10 * 2 ** tried));
        }
      }
    } finally {
      running--;
      if (running === 0) for (const wake of idle) wake();
    }
  }

  function txHandle(client: pg.PoolClient, scope: Scope, db: PgTx['db'], trustCenter: number, depth: number): PgTx {
    const savepoints = new Queue();
    return ownedBy<PgTx>(
      {
        engine: 'postgres',
        db,
        trustCenter,
        savepoint<T>(fn: (tx: PgTx) => Promise<T>): Promise<T> {
          checkUse(scope);
          return savepoints.run(async () => {
            checkUse(scope);
            const name = `candor_sp_${depth + 1}`;
            await client.query(`SAVEPOINT ${name}`);
            try {
              const value = await fn(txHandle(client, scope, db, trustCenter, depth + 1));
              checkUse(scope);
              await client.query(`RELEASE SAVEPOINT ${name}`);
              return value;
            } catch (error) {
              try {
                await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
                await client.query(`RELEASE SAVEPOINT ${name}`);
              } catch {
                // The connection is gone or the transaction aborted beyond the savepoint: the outer transaction fails too.
              }
              throw error;
            }
          });
        },
      },
      self,
    );
  }

  async function transaction<T>(fn: (tx: PgTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    refuseNested('transaction');
    const trustCenter = trustCenterOf(options);
    const begin = options?.serializable ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN';
    return withRetries(() =>
      once(begin, trustCenter, 'transaction', (client, scope) => {
        const db = drizzle({ client: guarded(client, 'query', scope) });
        return fn(txHandle(client, scope, db, trustCenter, 0));
      }),
    );
  }

  async function read<T>(fn: (q: PgReader) => Promise<T>, options?: ReadOptions): Promise<T> {
    refuseNested('read');
    const trustCenter = trustCenterOf(options);
    return withRetries(() =>
      once('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY', trustCenter, 'read', (client, scope) =>
        fn(ownedBy<PgReader>({ engine: 'postgres', db: drizzle({ client: guarded(client, 'query', scope) }), trustCenter }, self)),
      ),
    );
  }

  function close(): Promise<void> {
    closed = true;
    closing ??= (async () => {
      if (running > 0) {
        const { promise, resolve } = Promise.withResolvers<void>();
        idle.add(resolve);
        await promise;
      }
      await pool.end();
    })();
    return closing;
  }

  async function listen(channel: string, onNotification: (payload: string) => void, onGap?: () => void): Promise<Listener> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const next = new pg.Client({ connectionString: options.url });
      next.on('notification', (message) => {
        if (message.channel === channel) onNotification(message.payload ?? '');
      });
      // A dropped connection: listen again on a new one, and tell the caller it may have missed something.
      const dropped = () => {
        if (client !== next) return;
        client = undefined;
        next.end().catch(() => {});
        if (!stopped) retry = setTimeout(reconnect, 1000);
      };
      next.on('error', dropped);
      next.on('end', dropped);
      try {
        await next.connect();
        await next.query(`LISTEN ${channel}`);
      } catch (error) {
        next.end().catch(() => {});
        throw error;
      }
      client = next;
    };
    const reconnect = () => {
      retry = undefined;
      if (stopped) return;
      connect().then(
        () => onGap?.(),
        () => {
          if (!stopped) retry = setTimeout(reconnect, 1000);
        },
      );
    };
    await connect();
    return {
      async close() {
        stopped = true;
        if (retry) clearTimeout(retry);
        const last = client;
        client = undefined;
        await last?.end().catch(() => {});
      },
    };
  }

  const self: PostgresEngine = { engine: 'postgres', pool, transaction, read, close, listen };
  return self;
}
