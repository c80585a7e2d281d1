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

import { readFileSync } from 'node:fs';
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
  // A connection lost mid-query fails that query, which says so; without a listener it would also be uncaught.
  client.on('error', () => undefined);
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

/** What `checkApplicationRole` reads: the current role and, for each way out of row-level security, who grants it. */
interface RoleFacts {
  role: string;
  database: string;
  superuser: string | null;
  bypassrls: string | null;
  createrole: string | null;
  owner: string | null;
  database_owner: string | null;
  /** the first of Candor's schemas that the role owns, and the owning role */
  owned_schema: string | null;
  schema_owner: string | null;
  /** the first of Candor's schemas the role may CREATE in */
  creatable_schema: string | null;
}

/**
 * Refuses to run the application as a role that row-level security would not hold: a superuser, a role
 * with BYPASSRLS, one with CREATEROLE (it can grant itself the owner role, then `SET ROLE` to it), one
 * that owns (or may act as the owner of) the tables, which could switch the policies off, the owner of
 * the database (through `pg_database_owner` it owns schema public), the owner of the schema holding the
 * tables (it can drop them, policies and all), and a role that may CREATE in that schema. Membership
 * counts, direct or through other roles: a role that can `SET ROLE` to such a role is refused too.
 *
 * What this does not guard against is written in README (PostgreSQL, "Known limits"): the application
 * role sets `app.trust_center` itself, so row-level security separates trust centers against the
 * application's bugs, not against SQL injection or a compromised application role.
 */
export async function checkApplicationRole(db: pg.Pool | pg.ClientBase): Promise<ApplicationRole> {
  const { rows } = await db.query<RoleFacts>(
    // Each names the current role itself when it qualifies, else the first role it is a member of that does,
    // directly or through other roles (pg_has_role ... 'MEMBER' follows membership recursively; a superuser
    // counts as a member of every role, hence the current role first). Candor's schemas are the ones holding
    // tables with row-level security (the migrations enable it on every tenant table), else current_schema().
    `WITH member_of AS (
       SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.oid, r.rolname = current_user AS itself
         FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')),
     candor_schema AS (
       SELECT n.oid, n.nspname, n.nspowner FROM pg_namespace n
        WHERE n.oid IN (SELECT c.relnamespace FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity)
           OR (n.nspname = current_schema() AND NOT EXISTS (
                 SELECT 1 FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity)))
     SELECT current_user AS role,
            current_database() AS database,
            (SELECT rolname FROM member_of WHERE rolsuper ORDER BY itself DESC, rolname LIMIT 1) AS superuser,
            (SELECT rolname FROM member_of WHERE rolbypassrls ORDER BY itself DESC, rolname LIMIT 1) AS bypassrls,
            (SELECT rolname FROM member_of WHERE rolcreaterole ORDER BY itself DESC, rolname LIMIT 1) AS createrole,
            (SELECT m.rolname FROM member_of m JOIN pg_class c ON c.relowner = m.oid
              WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity ORDER BY m.itself DESC, m.rolname LIMIT 1) AS owner,
            (SELECT m.rolname FROM member_of m JOIN pg_database d ON d.datdba = m.oid
              WHERE d.datname = current_database() ORDER BY m.itself DESC LIMIT 1) AS database_owner,
            (SELECT s.nspname FROM candor_schema s
              WHERE pg_has_role(current_user, s.nspowner, 'MEMBER') ORDER BY s.nspname LIMIT 1) AS owned_schema,
            (SELECT o.rolname FROM candor_schema s JOIN pg_roles o ON o.oid = s.nspowner
              WHERE pg_has_role(current_user, s.nspowner, 'MEMBER') ORDER BY s.nspname LIMIT 1) AS schema_owner,
            (SELECT s.nspname FROM candor_schema s
              WHERE has_schema_privilege(current_user, s.oid, 'CREATE') ORDER BY s.nspname LIMIT 1) AS creatable_schema`,
  );
  const row = rows[0];
  if (!row) throw new ConfigError(DATABASE_URL, 'connects as a role PostgreSQL did not describe');
  const role = row.role;
  const as = (other: string) => (other === role ? '' : ` (through its membership of "${other}")`);
  const fix =
    'connect as a role with NOSUPERUSER NOBYPASSRLS NOCREATEROLE that does not own the tables, their schema or the database (migrations run as the owner)';
  const refuse = (what: string, change = fix) => new ConfigError(DATABASE_URL, `connects as "${role}", ${what}: ${change}`);
  if (row.superuser !== null) {
    throw refuse(`a superuser${as(row.superuser)}, which row-level security does not hold`);
  }
  if (row.bypassrls !== null) throw refuse(`which has BYPASSRLS${as(row.bypassrls)}`);
  if (row.createrole !== null) {
    throw refuse(`which has CREATEROLE${as(row.createrole)} and could grant itself the tables' owner`);
  }
  if (row.owner !== null) {
    throw refuse(`which owns the tables${as(row.owner)} and could switch row-level security off`);
  }
  if (row.database_owner !== null) {
    throw refuse(
      `which owns the database "${row.database}"${as(row.database_owner)} and through it schema public, so it could drop the tables`,
      `give the database to the owner role (ALTER DATABASE "${row.database}" OWNER TO <owner role>) and ${fix}`,
    );
  }
  if (row.owned_schema !== null && row.schema_owner !== null) {
    throw refuse(
      `which owns schema "${row.owned_schema}"${as(row.schema_owner)} and could drop the tables in it`,
      `give the schema to the owner role (ALTER SCHEMA "${row.owned_schema}" OWNER TO <owner role>) and ${fix}`,
    );
  }
  if (row.creatable_schema !== null) {
    throw refuse(
      `which may CREATE in schema "${row.creatable_schema}" and could put its own objects beside the tables`,
      `REVOKE CREATE ON SCHEMA "${row.creatable_schema}" FROM PUBLIC, "${role}" and the roles it belongs to`,
    );
  }
  return { role };
}

/** A role name as PostgreSQL spells an unquoted identifier; anything else is refused, never quoted into SQL. */
/** The migrations this code ships for PostgreSQL (drizzle-kit's journal). */
function knownPgMigrations(): number {
  const journal = JSON.parse(readFileSync(join(PG_MIGRATIONS, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
  return journal.entries.length;
}

/**
 * How many of this code's migrations the database lacks, read as the application role (which may read
 * drizzle's record of them after `grantApplicationRole`, nothing more). A node never migrates: it
 * refuses to start on a schema older than its code.
 */
export async function pendingMigrations(db: pg.Pool | pg.ClientBase): Promise<number> {
  const known = knownPgMigrations();
  const { rows } = await db.query<{ present: boolean; readable: boolean | null }>(
    `SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS present,
            CASE WHEN to_regclass('drizzle.__drizzle_migrations') IS NULL THEN NULL
                 ELSE has_schema_privilege('drizzle', 'USAGE') AND has_table_privilege('drizzle.__drizzle_migrations', 'SELECT') END AS readable`,
  );
  const facts = rows[0];
  if (!facts?.present) return known;
  if (!facts.readable)
    throw new ConfigError(
      DATABASE_URL,
      'connects as a role that cannot read which migrations were applied: run `candor db migrate --owner <owner URL> --grant <this role>`',
    );
  const applied = await db.query<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
  return Math.max(0, known - Number(applied.rows[0]?.n ?? 0));
}

export const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Lets the application role read and write the rows (subject to the row-level security policies) and
 * use the id sequences, nothing more: no DDL, no ownership, so it can neither change a policy nor
 * escape one. Run as the owner after each migration (new tables need the grant too). Idempotent.
 */
export async function grantApplicationRole(ownerUrl: string, role: string): Promise<void> {
  if (!ROLE_NAME.test(role))
    throw new ConfigError(DATABASE_URL, `cannot grant to "${role}": not a plain role name (lower-case letters, digits, _)`);
  const client = new pg.Client({ connectionString: ownerUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ me: string }>('SELECT current_user AS me');
    if (rows[0]?.me === role)
      throw new ConfigError(DATABASE_URL, `cannot grant to ${role}: it is the owner; the application must connect as another role`);
    await client.query(`GRANT USAGE ON SCHEMA public TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
      GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};
      GRANT USAGE ON SCHEMA drizzle TO ${role};
      GRANT SELECT ON drizzle.__drizzle_migrations TO ${role}`);
  } finally {
    await client.end();
  }
}

/**
 * Gathers the planner's statistics for every table of the database (`ANALYZE`, as the owner) after it
 * was filled in bulk (`candor db copy`, a restore). Without them, until autovacuum comes round, the
 * planner takes a filled table for an empty one, and a fan-out's INSERT … SELECT over 100,000
 * recipients, planned as a nested loop, takes minutes instead of a second.
 */
export async function analyzePostgres(ownerUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: ownerUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('ANALYZE');
  } finally {
    await client.end();
  }
}
