/**
 * PostgreSQL before the application touches it: reading CANDOR_DATABASE_URL,
 * reaching the server, migrating it as the owner role (once, however many
 * nodes start together) and refusing an application role that row-level
 * security would not hold. Every failure is one line naming the setting and
 * what to do, and never shows the URL's password.
 *
 * Not wired into start-up yet: the server runs on SQLite only until the
 * stores are async (issue 15 lands in parts).
 */
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { ConfigError } from '../../src/core/config/env.ts';
import { DATABASE_URL, describeDatabaseUrl } from './url.ts';

export { DATABASE_URL, type DatabaseSetting, describeDatabaseUrl, parseDatabaseUrl } from './url.ts';

/** Where drizzle-kit writes the PostgreSQL migrations (drizzle.pg.config.ts). */
export const PG_MIGRATIONS = join(import.meta.dirname, '../migrations-pg');

/**
 * The advisory lock migrations run under: a second node starting at the same time waits, then finds
 * nothing left to apply. (`candor` in ASCII.)
 */
export const MIGRATION_LOCK = '109270328209266';

/** An error's message on one line, with the URL's password (if any) blanked out wherever it appears. */
function oneLine(err: unknown, url: string): string {
  // Node reports a refused connection to a name with several addresses as an AggregateError without a message.
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : '';
  let message = err instanceof Error ? err.message || code || err.name : String(err);
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // no password to hide
  }
  if (password) message = message.split(password).join('***');
  return message.replace(/\s+/g, ' ').trim();
}

/**
 * A pool on the URL, after one connection has proved the server answers (within `timeoutMs`).
 * An unreachable server, a refused login or a missing database is a ConfigError naming the setting.
 */
export async function connectPostgres(url: string, options: { timeoutMs?: number; max?: number } = {}): Promise<pg.Pool> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: timeoutMs, max: options.max ?? 10 });
  // A connection dropped while idle (a server restart) must not take the process down; the next query reconnects.
  pool.on('error', (err) => console.error(`${DATABASE_URL}: an idle PostgreSQL connection failed: ${oneLine(err, url)}`));
  try {
    const client = await pool.connect();
    try {
      await client.query('SELECT 1');
    } finally {
      client.release();
    }
    return pool;
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new ConfigError(DATABASE_URL, `cannot reach PostgreSQL at ${describeDatabaseUrl(url)}: ${oneLine(err, url)}`);
  }
}

export interface MigrationResult {
  /** how many migrations the database has had applied, after this run */
  applied: number;
}

/**
 * Brings the schema up to date as the owner role (who owns the tables; the application role does not).
 * Runs under a session advisory lock, so nodes starting together migrate once: the first applies, the
 * others wait and then find nothing to do. drizzle's migrator applies the pending migrations in one
 * transaction.
 */
export async function migratePostgres(ownerUrl: string, options: { timeoutMs?: number } = {}): Promise<MigrationResult> {
  const client = new pg.Client({ connectionString: ownerUrl, connectionTimeoutMillis: options.timeoutMs ?? 5000 });
  try {
    await client.connect();
  } catch (err) {
    throw new ConfigError(
      DATABASE_URL,
      `cannot reach PostgreSQL at ${describeDatabaseUrl(ownerUrl)} to migrate: ${oneLine(err, ownerUrl)}`,
    );
  }
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await migrate(drizzle({ client }), { migrationsFolder: PG_MIGRATIONS });
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
      return { applied: Number(rows[0]?.n ?? 0) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    await client.end();
  }
}

export interface ApplicationRole {
  role: string;
}

/**
 * Refuses to run the application as a role that row-level security would not hold: a superuser, a role
 * with BYPASSRLS, or one that owns (or may act as the owner of) the tables, which could switch the
 * policies off. Membership counts: a role that can `SET ROLE` to such a role is refused too.
 */
export async function checkApplicationRole(db: pg.Pool | pg.ClientBase): Promise<ApplicationRole> {
  const { rows } = await db.query<{ role: string; superuser: string | null; bypassrls: string | null; owner: string | null }>(
    // Each names the current role itself when it qualifies, else the first role it is a member of that does
    // (a superuser counts as a member of every role, hence the current role first).
    `WITH member_of AS (
       SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.oid, r.rolname = current_user AS itself
         FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER'))
     SELECT current_user AS role,
            (SELECT rolname FROM member_of WHERE rolsuper ORDER BY itself DESC, rolname LIMIT 1) AS superuser,
            (SELECT rolname FROM member_of WHERE rolbypassrls ORDER BY itself DESC, rolname LIMIT 1) AS bypassrls,
            (SELECT m.rolname FROM member_of m JOIN pg_class c ON c.relowner = m.oid
              WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity ORDER BY m.itself DESC, m.rolname LIMIT 1) AS owner`,
  );
  const row = rows[0];
  if (!row) throw new ConfigError(DATABASE_URL, 'connects as a role PostgreSQL did not describe');
  const role = row.role;
  const as = (other: string) => (other === role ? '' : ` (through its membership of "${other}")`);
  const fix = 'connect as a role with NOSUPERUSER NOBYPASSRLS that does not own the tables (migrations run as the owner)';
  if (row.superuser !== null) {
    throw new ConfigError(
      DATABASE_URL,
      `connects as "${role}", a superuser${as(row.superuser)}, which row-level security does not hold: ${fix}`,
    );
  }
  if (row.bypassrls !== null) {
    throw new ConfigError(DATABASE_URL, `connects as "${role}", which has BYPASSRLS${as(row.bypassrls)}: ${fix}`);
  }
  if (row.owner !== null) {
    throw new ConfigError(
      DATABASE_URL,
      `connects as "${role}", which owns the tables${as(row.owner)} and could switch row-level security off: ${fix}`,
    );
  }
  return { role };
}
