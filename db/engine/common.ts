/**
 * What both engine modules share: knowing whether code runs inside a transaction's callback (so a
 * second transaction started there is refused rather than waiting on the first forever), the guard
 * that refuses a handle used outside its transaction, a FIFO queue, and reading values the drivers
 * return in other shapes (PostgreSQL's bigint and count(*) arrive as strings; errors arrive wrapped).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export const DEFAULT_TRUST_CENTER = 1;

/** One transaction or read, from its start until it ends; savepoints share their transaction's scope. */
export interface Scope {
  readonly kind: 'transaction' | 'read';
  open: boolean;
}

const current = new AsyncLocalStorage<Scope>();

/**
 * Runs `fn` so that every callback it starts knows it is inside `scope`. The result is awaited inside
 * the scope too: `fn` may return a drizzle query unawaited (`(tx) => tx.db.insert(…)`), a thenable that
 * only runs when awaited, and it must run as part of the transaction.
 */
export function runInScope<T>(scope: Scope, fn: () => Promise<T>): Promise<T> {
  return current.run(scope, async () => await fn());
}

/** Refuses to start a transaction or read from inside the callback of one still open. */
export function refuseNested(what: 'transaction' | 'read'): void {
  const scope = current.getStore();
  if (scope?.open) {
    throw new Error(
      `database.${what}() was called inside a ${scope.kind}'s callback: use the tx handed to that callback ` +
        `(tx.savepoint() for a nested unit), or do this after the ${scope.kind} has ended`,
    );
  }
}

/** Throws unless the query about to run belongs to `scope`: issued from its callback while it is open. */
export function checkUse(scope: Scope): void {
  if (!scope.open) {
    throw new Error(`this ${scope.kind} has ended: its handle was kept and used afterwards; open a new ${scope.kind}`);
  }
  if (current.getStore() !== scope) {
    throw new Error(`a ${scope.kind}'s handle was used from code outside its callback while it was open; pass work into the callback`);
  }
}

/** The trust center a transaction is scoped to: the one given, or the default; never anything but a positive integer. */
export function trustCenterOf(options: { trustCenter?: number } | undefined): number {
  const value = options?.trustCenter ?? DEFAULT_TRUST_CENTER;
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`trust center must be a positive integer, not ${String(value)}`);
  return value;
}

const OWNER = Symbol.for('candor.engineOwner');

/**
 * Marks a tx or reader with the database handle that made it, so what was bound to the handle (the
 * audit keys, src/core/audit/key.ts) is found from any tx of it. Not enumerable: never in a dump.
 */
export function ownedBy<T extends object>(value: T, owner: object): T {
  Object.defineProperty(value, OWNER, { value: owner, enumerable: false });
  return value;
}

/** The database handle a tx or reader came from (see ownedBy). */
export function ownerOf(value: object): object | undefined {
  const owner: unknown = Reflect.get(value, OWNER);
  return typeof owner === 'object' && owner !== null ? owner : undefined;
}

/** A FIFO queue: each job starts when the one before it has settled. */
export class Queue {
  #tail: Promise<void> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const before = this.#tail;
    const done = Promise.withResolvers<void>();
    this.#tail = done.promise;
    return before.then(job).finally(done.resolve);
  }

  /** Resolves when every job queued so far has settled. */
  drained(): Promise<void> {
    return this.#tail;
  }
}

/**
 * An integer column or aggregate as a number. node-postgres returns int8 (bigint, count(*), sum of
 * integers) and numeric as strings, to lose no precision; drizzle's `count()` and `$count()` and
 * columns declared `bigint({ mode: 'number' })` convert already, raw `sql` does not. Refuses what is
 * not an integer or is beyond 2^53, rather than rounding it.
 */
export function toInteger(value: string | number | bigint): number {
  const n = typeof value === 'string' ? (/^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN) : Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`expected an integer the database returned, got ${JSON.stringify(String(value))}`);
  return n;
}

/**
 * The SQLSTATE (PostgreSQL) or result code name (SQLite, e.g. SQLITE_BUSY) of a database error,
 * looking through the wrappers drizzle puts around driver errors (`DrizzleQueryError.cause`).
 */
export function errorCode(error: unknown): string | undefined {
  let cause: unknown = error;
  for (let depth = 0; depth < 5 && typeof cause === 'object' && cause !== null; depth++) {
    const code: unknown = Reflect.get(cause, 'code');
    if (typeof code === 'string') return code;
    cause = Reflect.get(cause, 'cause');
  }
  return undefined;
}

/**
 * A proxy of a driver connection that checks `scope` before every call of `method` (the one drizzle
 * sends queries by); `instead`, when given, is called in place of the connection's own `method`.
 */
export function guarded<C extends object>(connection: C, method: string, scope: Scope, instead?: (...args: never[]) => unknown): C {
  return new Proxy(connection, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (property !== method) return value.bind(target);
      return (...args: unknown[]) => {
        checkUse(scope);
        return instead ? Reflect.apply(instead, undefined, args) : Reflect.apply(value, target, args);
      };
    },
  });
}
