/**
 * One query for both engines: how stores reach the tables.
 *
 * A store writes each query once, with drizzle's query builder, against the
 * tables as db/schema.ts types them. On PostgreSQL the same calls are made
 * with the tables of db/schema-pg.ts on the transaction's node-postgres
 * handle: drizzle builds the SQL from the table objects it is given, so each
 * engine gets its own dialect. That is sound because the two schemas are the
 * same tables, columns and row types (tests/integration/engine-parity.test.ts
 * fails otherwise); `sameTables` below makes the names a compile-time fact.
 *
 * The rules for a store, so a query runs alike on both (proved by
 * tests/integration/engine-query.test.ts):
 * - `await` every query; never `.get()`, `.all()`, `.run()` or `.values()`,
 *   which only SQLite's builder has. One row: `.limit(1)` and `[0]`.
 * - Rows changed by an update or delete without `.returning()`: `affected()`.
 * - Counts from `count()` come back as numbers on SQLite and strings on
 *   PostgreSQL: `toInteger()` (common.ts), or `$count`, which converts.
 * - Raw SQL only where the builder has no word for it, branching on
 *   `q.engine`, with a comment saying why.
 */
import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import * as sqliteTables from '../schema.ts';
import * as pgTables from '../schema-pg.ts';
import type { Engine, Reader, SqliteDb, SqliteReadDb, Tx } from './types.ts';

type SqliteSchema = typeof sqliteTables;
/** The tables, typed from the SQLite schema; on PostgreSQL they are the PostgreSQL ones. */
export type Tables = { [K in keyof SqliteSchema as SqliteSchema[K] extends SQLiteTable ? K : never]: SqliteSchema[K] };

/** The builder calls a store may use inside a transaction. */
export type QueryDb = Pick<SqliteDb, 'select' | 'selectDistinct' | 'insert' | 'update' | 'delete' | '$count'>;
/** …and in a read snapshot. */
export type ReadQueryDb = Pick<SqliteReadDb, 'select' | 'selectDistinct' | '$count'>;

interface Scoped {
  readonly engine: Engine;
  readonly trustCenter: number;
  readonly t: Tables;
}

export interface Query extends Scoped {
  readonly db: QueryDb;
}

export interface ReadQuery extends Scoped {
  readonly db: ReadQueryDb;
}

// Every table of one schema is in the other under the same name (the columns are the parity test's).
const sameTables: Record<keyof Tables, unknown> = pgTables satisfies Record<keyof Tables, unknown>;
const pgAsTables = sameTables as Tables;

/** The builder and tables for a transaction of either engine. */
export function query(tx: Tx): Query {
  if (tx.engine === 'sqlite') return { engine: 'sqlite', trustCenter: tx.trustCenter, t: sqliteTables, db: tx.db };
  // Typed as SQLite's builder; drizzle's node-postgres builder has the same calls (the rules above).
  return { engine: 'postgres', trustCenter: tx.trustCenter, t: pgAsTables, db: tx.db as unknown as QueryDb };
}

/** The builder and tables for a read snapshot (or a transaction) of either engine. */
export function reading(reader: Reader | Tx): ReadQuery {
  if (reader.engine === 'sqlite') return { engine: 'sqlite', trustCenter: reader.trustCenter, t: sqliteTables, db: reader.db };
  return { engine: 'postgres', trustCenter: reader.trustCenter, t: pgAsTables, db: reader.db as unknown as ReadQueryDb };
}

/** Rows an update or delete changed: better-sqlite3's `changes`, node-postgres's `rowCount`. */
export function affected(result: unknown): number {
  if (typeof result === 'object' && result !== null) {
    if ('changes' in result && typeof result.changes === 'number') return result.changes;
    if ('rowCount' in result && typeof result.rowCount === 'number') return result.rowCount;
  }
  throw new Error('not the result of an update or delete');
}
