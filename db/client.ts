/**
 * Opens the SQLite database with the settings every connection needs and
 * brings its schema up to date.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

const MIGRATIONS = join(import.meta.dirname, 'migrations');

export function openDatabase(file: string): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  // Deleted rows are overwritten with zeros, not just unlinked: an erased subscriber's sealed address
  // must not linger in free space of the file (or of a copy of it).
  sqlite.pragma('secure_delete = ON');
  const db = drizzle(sqlite, { schema });
  migrateWithoutForeignKeys(db);
  sqlite.pragma('foreign_keys = ON');
  return db;
}

/**
 * Migrations run with foreign keys off, as SQLite's procedure for schema
 * changes asks (https://www.sqlite.org/lang_altertable.html#otheralter):
 * with them on, `ALTER TABLE … ADD` refuses a REFERENCES column with a
 * default (0017 adds `trust_center_id … DEFAULT 1 REFERENCES trust_centers`),
 * and a table rebuild's `DROP TABLE` would run the ON DELETE CASCADE of
 * every table referencing it. The pragma is a no-op inside a transaction,
 * so it is set around the migrator's; after migrations were applied the
 * keys are checked, and a violation stops start-up.
 */
function migrateWithoutForeignKeys(db: Db): void {
  const sqlite = db.$client;
  sqlite.pragma('foreign_keys = OFF');
  const before = migrationState(sqlite);
  migrate(db, { migrationsFolder: MIGRATIONS });
  if (migrationState(sqlite).applied === before.applied) return;
  markChainUpgrade(db, before);
  const violations = sqlite.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[];
  if (violations.length > 0) {
    const [first] = violations;
    throw new Error(
      `database migration left ${violations.length.toString()} rows referencing missing rows (first: ${first?.table ?? '?'} row ${String(first?.rowid)} → ${first?.parent ?? '?'})`,
    );
  }
}

const UPGRADED_HERE = Symbol.for('candor.auditChainUpgradedHere');

/**
 * The migration that keyed the audit chain notes the last plain SHA-256 entry, for the first keyed
 * write to seal (src/core/audit/log.ts). Only the process that applied that migration may seal:
 * the note is a row, and a row can be planted by anyone who can write the file (with a rewritten
 * plain log behind it). So the handle that applied it carries a mark only this process can see;
 * bindAuditKeys hands it to the chain, and whoever binds keys to such a handle seals at once.
 */
function markChainUpgrade(db: Db, before: MigrationState): void {
  const upgrade = knownMigrations().find((m) => m.tag.endsWith('_audit_keyed_chain'));
  if (!upgrade || (before.latestAt !== null && before.latestAt >= upgrade.when)) return;
  // None when the log was empty: nothing to seal.
  const noted = db.$client.prepare('SELECT last_plain_id AS id FROM audit_chain_upgrade').get() as { id: number } | undefined;
  if (noted) Object.defineProperty(db, UPGRADED_HERE, { value: noted.id, enumerable: false });
}

/** The last plain entry this handle's own opening noted when it keyed the chain, else null (see markChainUpgrade). */
export function chainUpgradedHere(db: Db): number | null {
  const noted: unknown = Reflect.get(db, UPGRADED_HERE);
  return typeof noted === 'number' ? noted : null;
}

/** Raises when the file is not a healthy SQLite database. */
export function checkIntegrity(db: Db): void {
  const rows = db.$client.pragma('quick_check') as { quick_check: string }[];
  const problems = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
  if (problems.length > 0) throw new Error(`database integrity check failed: ${problems.slice(0, 3).join('; ')}`);
}

export interface MigrationState {
  /** how many migrations the database has had applied */
  applied: number;
  /** the newest applied migration's name, when this code knows it */
  latest: string | null;
  /** drizzle-kit's journal time of the newest applied migration: what the migrator compares */
  latestAt: number | null;
}

/** The migrations this code ships, oldest first (drizzle-kit's journal). */
export function knownMigrations(): { tag: string; when: number }[] {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS, 'meta/_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] };
  return journal.entries.map(({ tag, when }) => ({ tag, when }));
}

/** Which migrations a database has had; drizzle records each by its journal time. */
export function migrationState(sqlite: Database.Database): MigrationState {
  const table = sqlite.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'`).get();
  if (!table) return { applied: 0, latest: null, latestAt: null };
  const row = sqlite.prepare('SELECT count(*) AS n, max(created_at) AS latestAt FROM __drizzle_migrations').get() as {
    n: number;
    latestAt: number | null;
  };
  const latestAt = row.latestAt === null ? null : Number(row.latestAt);
  return { applied: row.n, latest: knownMigrations().find((m) => m.when === latestAt)?.tag ?? null, latestAt };
}
