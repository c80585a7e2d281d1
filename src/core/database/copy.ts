/**
 * Moving a SQLite deployment to PostgreSQL (`candor db copy --to …`): every
 * table of the data dir's database copied into a new PostgreSQL database,
 * with the audit chain verified on both sides.
 *
 * The order of work, and why:
 * 1. The SQLite database must exist and be unused (the server stopped), and
 *    its audit chain must verify: a broken chain is not carried over.
 * 2. The target is migrated as the URL's role (the owner of the tables).
 * 3. SQLite: `BEGIN IMMEDIATE`, held until the end, so nothing writes while
 *    the copy reads; the copy is recorded in its audit log (`database.copied`)
 *    inside that transaction, so the entry is copied with the rest and both
 *    logs end with the same entry (same id, same MAC, one anchor for both).
 * 4. PostgreSQL: one transaction scoped to trust center 1. It refuses a
 *    target holding any row (trust_centers may hold only the migration's
 *    seed, which the source's row replaces), copies the tables parents
 *    first (the order comes from the schema's foreign keys), in batches,
 *    advances every identity sequence past the copied ids (past SQLite's
 *    AUTOINCREMENT high-water mark, so no id is ever reused), compares the
 *    row counts and verifies the audit chain there, ending on the same entry.
 * 5. Both commit, PostgreSQL first. Any failure rolls both back: nothing is
 *    half-copied and the SQLite log does not claim a copy that did not
 *    happen. (Sequence positions are not transactional in PostgreSQL; a
 *    failed copy may leave them advanced in the empty target, which a later
 *    copy sets again.)
 */

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { getTableColumns, getTableName, is, sql } from 'drizzle-orm';
import { getTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { SQLiteTable } from 'drizzle-orm/sqlite-core';
import { checkIntegrity, type Db, openDatabase } from '../../../db/client.ts';
import { toInteger } from '../../../db/engine/common.ts';
import { openPostgresDatabase } from '../../../db/engine/postgres.ts';
import { analyzePostgres, describeDatabaseUrl, migratePostgres } from '../../../db/engine/postgres-setup.ts';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import { issuedIds } from '../../../db/engine/sqlite-files.ts';
import type { PgTx } from '../../../db/engine/types.ts';
import * as sqliteSchema from '../../../db/schema.ts';
import * as pgSchema from '../../../db/schema-pg.ts';
import { verifyAuditChainPostgres } from '../audit/chain-postgres.ts';
import { type AuditKeyring, bindAuditKeys } from '../audit/key.ts';
import { type AuditVerification, describeFailure, recordAudit, verifyAuditChain } from '../audit/log.ts';
import { ConfigError } from '../config/errors.ts';

/** A failure the operator can act on, one line; nothing was copied. */
export class CopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyError';
  }
}

/** One table on both engines. */
export interface CopyTable {
  name: string;
  sqlite: SQLiteTable;
  pg: PgTable;
  /** the identity column on PostgreSQL (an AUTOINCREMENT id on SQLite), whose sequence the copy advances */
  identity: string | null;
}

/**
 * Every table, parents before the tables referencing them, paired across the
 * two schemas by table name. Derived from the schemas (not a hand list), so
 * a new table is copied without a change here; refuses a table one schema
 * lacks, or whose columns differ.
 */
export function copyPlan(): CopyTable[] {
  const sqliteTables = new Map<string, SQLiteTable>();
  for (const value of Object.values(sqliteSchema)) if (is(value, SQLiteTable)) sqliteTables.set(getTableName(value), value);
  const pgTables = new Map<string, PgTable>();
  for (const value of Object.values(pgSchema)) if (is(value, PgTable)) pgTables.set(getTableName(value), value);
  for (const name of sqliteTables.keys()) if (!pgTables.has(name)) throw new Error(`table ${name} has no PostgreSQL counterpart`);
  const parents = new Map<string, string[]>();
  for (const [name, table] of pgTables) {
    const config = getTableConfig(table);
    const references = config.foreignKeys.map((fk) => getTableName(fk.reference().foreignTable)).filter((parent) => parent !== name);
    parents.set(name, [...new Set(references)].sort());
  }
  const ordered: CopyTable[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`foreign keys form a cycle: ${[...path, name].join(' → ')}`);
    state.set(name, 'visiting');
    for (const parent of parents.get(name) ?? []) visit(parent, [...path, name]);
    state.set(name, 'done');
    const pg = pgTables.get(name);
    const sqlite = sqliteTables.get(name);
    if (!pg || !sqlite) throw new Error(`table ${name} has no SQLite counterpart`);
    const pgColumns = getTableColumns(pg);
    const keys = (columns: Record<string, { name: string }>) =>
      Object.entries(columns)
        .map(([key, column]) => `${key}=${column.name}`)
        .sort()
        .join(',');
    if (keys(pgColumns) !== keys(getTableColumns(sqlite))) throw new Error(`table ${name} has other columns on PostgreSQL than on SQLite`);
    const identity = Object.values(pgColumns).find((column) => column.generatedIdentity !== undefined)?.name ?? null;
    ordered.push({ name, sqlite, pg, identity });
  };
  for (const name of [...pgTables.keys()].sort()) visit(name, []);
  return ordered;
}

export interface CopyOptions {
  /** the SQLite database file (the data dir's candor.db) */
  sqliteFile: string;
  /** postgres://owner@host/database: the target, migrated and written as this role */
  targetUrl: string;
  /** the audit keys (CANDOR_SECRET and previous ones): both chains are verified with them, the copy recorded with the current one */
  keyring: AuditKeyring;
  now: () => Date;
  /** rows per batch, at most; default: as many as fit 30,000 parameters, at most 1000 */
  batchSize?: number;
  /** for tests: runs inside the PostgreSQL transaction after the rows are copied, before it is checked */
  afterRows?: (tx: PgTx) => Promise<void>;
}

export interface CopyResult {
  tables: { name: string; rows: number }[];
  rows: number;
  /** the `database.copied` entry, the newest in both logs */
  entry: { id: number; hash: string };
  /** the verification on PostgreSQL */
  audit: Extract<AuditVerification, { ok: true }>;
  /** whether the planner's statistics were gathered afterwards (ANALYZE) */
  analyzed: boolean;
}

export async function copyToPostgres(options: CopyOptions): Promise<CopyResult> {
  const { sqliteFile, targetUrl, keyring } = options;
  if (!existsSync(sqliteFile))
    throw new CopyError(`there is no database at ${sqliteFile}: nothing to copy (is CANDOR_DATA_DIR set as for the server?)`);
  assertNotInUse(sqliteFile);
  const plan = copyPlan();
  const db = bindAuditKeys(openDatabase(sqliteFile), keyring);
  try {
    checkIntegrity(db);
    const before = await verifyAuditChain(databaseOf(db), keyring);
    if (!before.ok) {
      throw new CopyError(`the audit log of ${sqliteFile} does not verify, so it is not copied: ${describeFailure(before)}`);
    }
    const target = describeDatabaseUrl(targetUrl);
    try {
      await migratePostgres(targetUrl);
    } catch (err) {
      throw err instanceof ConfigError ? new CopyError(withoutVariable(err)) : err;
    }
    const pg = openPostgresDatabase({ url: targetUrl, maxConnections: 1, attempts: 1 });
    try {
      db.$client.exec('BEGIN IMMEDIATE');
      try {
        // Inside the open transaction recordAudit runs as a savepoint of it: committed (or not) with the copy.
        const entry = recordAudit(
          db,
          { actor: { type: 'system' }, userAgent: 'candor cli', action: 'database.copied', target: 'database', summary: { to: target } },
          options.now(),
        );
        const sequences = issuedIds(db);
        const result = await pg.transaction(
          async (tx) => {
            await refuseNonEmpty(tx, plan);
            const tables: { name: string; rows: number }[] = [];
            for (const table of plan) {
              try {
                tables.push({ name: table.name, rows: await copyTable(db, tx, table, options.batchSize) });
              } catch (err) {
                throw new CopyError(`copying ${table.name} failed: ${oneLine(err)}`);
              }
            }
            await options.afterRows?.(tx);
            for (const table of plan) await advanceSequence(tx, table, sequences.get(table.name) ?? 0);
            for (const { name, rows } of tables) {
              const table = plan.find((t) => t.name === name);
              const copied = table ? await tx.db.$count(table.pg) : -1;
              if (copied !== rows)
                throw new CopyError(`${name} holds ${copied.toString()} rows on PostgreSQL after copying ${rows.toString()}`);
            }
            const audit = await verifyAuditChainPostgres(tx, keyring);
            if (!audit.ok) throw new CopyError(`the audit log copied to PostgreSQL does not verify: ${describeFailure(audit)}`);
            if (audit.head?.id !== entry.id || audit.head.mac !== entry.hash) {
              throw new CopyError(
                `the audit log copied to PostgreSQL does not end with entry #${entry.id.toString()} as the source's does`,
              );
            }
            return { tables, audit };
          },
          { trustCenter: 1 },
        );
        db.$client.exec('COMMIT');
        // The planner's statistics, which a bulk copy leaves empty (postgres-setup.ts says why it matters).
        // After both commits: a failure here loses nothing, autovacuum gathers them later.
        const analyzed = await analyzePostgres(targetUrl).then(
          () => true,
          () => false,
        );
        return { ...result, analyzed, rows: result.tables.reduce((n, t) => n + t.rows, 0), entry: { id: entry.id, hash: entry.hash } };
      } finally {
        if (db.$client.inTransaction) db.$client.exec('ROLLBACK');
      }
    } catch (err) {
      if (err instanceof CopyError) throw err;
      throw new CopyError(`the copy to ${target} failed, nothing was copied: ${oneLine(err)}`);
    } finally {
      await pg.close();
    }
  } finally {
    db.$client.close();
  }
}

/**
 * The target must be new: no row in any table, trust_centers aside, which
 * may hold the migration's seed (id 1) only. Every other row belongs to a
 * trust center, so with trust center 1 the only one, the transaction scoped
 * to it sees every row there is.
 */
async function refuseNonEmpty(tx: PgTx, plan: CopyTable[]): Promise<void> {
  const refuse = (table: string) =>
    new CopyError(`the target already holds rows in ${table}: copy only into a new, empty database (migrated or not)`);
  const { rows } = await tx.db.execute<{ id: number }>(sql`SELECT id FROM trust_centers WHERE id <> 1 LIMIT 1`);
  if (rows.length > 0) throw refuse('trust_centers');
  for (const table of plan) {
    if (table.name === 'trust_centers') continue;
    const [row] = await tx.db.select({ one: sql<number>`1` }).from(table.pg).limit(1);
    if (row) throw refuse(table.name);
  }
  // The seed gives way to the source's own row (its name, slug, creation time).
  await tx.db.execute(sql`DELETE FROM trust_centers`);
}

/** Copies one table in batches, in rowid order; returns how many rows. */
async function copyTable(db: Db, tx: PgTx, table: CopyTable, batchSize?: number): Promise<number> {
  const columns = getTableColumns(table.sqlite);
  const size = batchSize ?? Math.max(1, Math.min(1000, Math.floor(30_000 / Object.keys(columns).length)));
  let after = Number.MIN_SAFE_INTEGER;
  let copied = 0;
  for (;;) {
    const page = db
      .select({ ...columns, candorRowid: sql<number>`rowid` })
      .from(table.sqlite)
      .where(sql`rowid > ${after}`)
      .orderBy(sql`rowid`)
      .limit(size)
      .all();
    if (page.length === 0) break;
    const rows = page.map(({ candorRowid: _, ...row }) => row);
    // The row types are the same on both engines (the parity test proves it at compile time; copyPlan checked the
    // columns), but a table chosen at run time has no static type to say so.
    await tx.db.insert(table.pg).values(rows as never);
    copied += rows.length;
    after = page.at(-1)?.candorRowid ?? after;
    if (page.length < size) break;
  }
  return copied;
}

/** Moves a table's identity sequence past its copied ids and past the highest id SQLite ever issued. */
async function advanceSequence(tx: PgTx, table: CopyTable, sqliteIssued: number): Promise<void> {
  if (!table.identity) return;
  const { rows } = await tx.db.execute<{ max: string | number | null }>(
    sql`SELECT max(${sql.identifier(table.identity)}) AS max FROM ${sql.identifier(table.name)}`,
  );
  const copied = rows[0]?.max ?? null;
  const highest = Math.max(copied === null ? 0 : toInteger(copied), sqliteIssued);
  // setval(…, 1, false): nothing issued yet, the next id is 1.
  await tx.db.execute(
    sql`SELECT setval(pg_get_serial_sequence(${table.name}, ${table.identity}), ${Math.max(highest, 1)}, ${highest > 0})`,
  );
}

/**
 * Refuses while anything (the server, a worker) has the database open, as
 * `restore` does: leaving WAL mode needs every other connection closed, so
 * SQLite itself answers.
 */
function assertNotInUse(file: string): void {
  let sqlite: Database.Database | undefined;
  try {
    sqlite = new Database(file, { timeout: 0 });
    sqlite.pragma('journal_mode = DELETE');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new CopyError(`${file} is in use: stop the server (and any \`candor worker\`) before copying`);
    }
    throw err;
  } finally {
    sqlite?.close();
  }
}

/** A ConfigError about CANDOR_DATABASE_URL as one about --to (the URL the command was given). */
function withoutVariable(err: ConfigError): string {
  const detail = err.message.startsWith(`${err.variable} `) ? err.message.slice(err.variable.length + 1) : err.message;
  return `--to: ${detail}`;
}

/** What went wrong, on one line: the driver's own message (drizzle's wrapper repeats the whole statement and its values). */
function oneLine(err: unknown): string {
  let inner: unknown = err;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  const message = inner instanceof Error ? inner.message || inner.name : String(inner);
  return message.replace(/\s+/g, ' ').trim();
}
