/**
 * What is done to a SQLite database as a file rather than through queries of the domain: a
 * consistent copy while it is in use (`VACUUM INTO`), counting a copy's rows per table, and the
 * highest ids its AUTOINCREMENT tables issued. Used by backups (src/core/backup/) and by the copy
 * to PostgreSQL (src/core/database/copy.ts); SQLite only, as their callers are.
 */
import Sqlite from 'better-sqlite3';
import type { Db } from '../client.ts';

/** Writes a consistent copy of the database to `file` (which may exist, empty), while others keep writing. */
export function vacuumInto(db: Db, file: string): void {
  db.$client.prepare('VACUUM INTO ?').run(file);
}

/** Rows per table of `tables` that the database file has, opened read-only; names come from code, never from input. */
export function countTableRows(file: string, tables: readonly string[]): Record<string, number> {
  const sqlite = new Sqlite(file, { readonly: true });
  try {
    const present = new Set(
      (sqlite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((t) => t.name),
    );
    const counts: Record<string, number> = {};
    for (const table of tables) {
      if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a table name: ${table}`);
      if (present.has(table)) counts[table] = (sqlite.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
    }
    return counts;
  } finally {
    sqlite.close();
  }
}

/** The highest id each AUTOINCREMENT table has issued (SQLite keeps it even after the rows are deleted). */
export function issuedIds(db: Db): Map<string, number> {
  const rows = db.$client.prepare('SELECT name, seq FROM sqlite_sequence').all() as { name: string; seq: number }[];
  return new Map(rows.map((r) => [r.name, r.seq]));
}
