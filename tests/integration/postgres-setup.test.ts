/**
 * PostgreSQL start-up checks against a real server: the application role
 * must be one row-level security holds (not a superuser, not BYPASSRLS, not
 * CREATEROLE, not the owner of the tables, their schema or the database, no
 * CREATE on the schema, nor a member of a role that is any of these), migrations run once however many
 * nodes start together, and a database that is not there is one line
 * naming the setting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkApplicationRole, connectPostgres, migratePostgres, PG_MIGRATIONS } from '../../db/engine/postgres-setup.ts';
import { ConfigError } from '../../src/core/config/env.ts';
import { createTestPostgres, TEST_POSTGRES_URL, type TestPostgres } from '../helpers/postgres.ts';

async function refusalAs(url: string): Promise<string> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    await checkApplicationRole(pool);
    return 'accepted';
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  } finally {
    await pool.end();
  }
}

describe.skipIf(!TEST_POSTGRES_URL)('checkApplicationRole', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await createTestPostgres();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('accepts the application role: NOSUPERUSER NOBYPASSRLS, not the owner', async () => {
    expect(await checkApplicationRole(db.app)).toEqual({ role: db.appRole });
  });

  it('refuses a superuser, naming the role and what to do', async () => {
    const superuser = new URL(db.superUrl).username;
    expect(await refusalAs(db.superUrl)).toBe(
      `CANDOR_DATABASE_URL connects as "${superuser}", a superuser, which row-level security does not hold: ` +
        'connect as a role with NOSUPERUSER NOBYPASSRLS NOCREATEROLE that does not own the tables, their schema or the database (migrations run as the owner)',
    );
  });

  it('refuses a role with BYPASSRLS', async () => {
    const bypass = await db.role('NOSUPERUSER BYPASSRLS');
    expect(await refusalAs(bypass.url)).toMatch(
      new RegExp(`^CANDOR_DATABASE_URL connects as "${bypass.name}", which has BYPASSRLS: connect as`),
    );
  });

  it('refuses the owner of the tables, and a role that is a member of it', async () => {
    expect(await refusalAs(db.ownerUrl)).toMatch(
      new RegExp(`^CANDOR_DATABASE_URL connects as "${db.ownerRole}", which owns the tables and could switch row-level security off`),
    );
    const member = await db.role('NOSUPERUSER NOBYPASSRLS');
    await db.superuser.query(`GRANT "${db.ownerRole}" TO "${member.name}"`);
    expect(await refusalAs(member.url)).toMatch(
      new RegExp(`connects as "${member.name}", which owns the tables \\(through its membership of "${db.ownerRole}"\\)`),
    );
  });

  it('refuses a role that may become a BYPASSRLS role', async () => {
    const bypass = await db.role('NOLOGIN BYPASSRLS');
    const member = await db.role('NOSUPERUSER NOBYPASSRLS');
    await db.superuser.query(`GRANT "${bypass.name}" TO "${member.name}"`);
    expect(await refusalAs(member.url)).toMatch(
      new RegExp(`connects as "${member.name}", which has BYPASSRLS \\(through its membership of "${bypass.name}"\\)`),
    );
  });
  // On PostgreSQL 15 a CREATEROLE role may GRANT itself any non-superuser role, the tables' owner included,
  // then SET ROLE to it and switch row-level security off.
  it('refuses a role with CREATEROLE, after proving what it could do', async () => {
    const creator = await db.role('NOSUPERUSER NOBYPASSRLS CREATEROLE');
    const pool = new pg.Pool({ connectionString: creator.url, max: 1 });
    try {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query(`GRANT "${db.ownerRole}" TO "${creator.name}"`);
        await c.query(`SET LOCAL ROLE "${db.ownerRole}"`);
        await c.query('ALTER TABLE staff NO FORCE ROW LEVEL SECURITY');
        await c.query('ROLLBACK');
      } finally {
        c.release();
      }
    } finally {
      await pool.end();
    }
    expect(await refusalAs(creator.url)).toMatch(
      new RegExp(
        `^CANDOR_DATABASE_URL connects as "${creator.name}", which has CREATEROLE and could grant itself the tables' owner: connect as a role with NOSUPERUSER NOBYPASSRLS NOCREATEROLE`,
      ),
    );
  });

  it('refuses a role that may become a CREATEROLE role, through a role in between', async () => {
    const creator = await db.role('NOLOGIN CREATEROLE');
    const between = await db.role('NOLOGIN');
    const member = await db.role('NOSUPERUSER NOBYPASSRLS');
    await db.superuser.query(`GRANT "${creator.name}" TO "${between.name}"; GRANT "${between.name}" TO "${member.name}"`);
    expect(await refusalAs(member.url)).toMatch(
      new RegExp(`connects as "${member.name}", which has CREATEROLE \\(through its membership of "${creator.name}"\\)`),
    );
  });

  // The owner of the database is a member of pg_database_owner, which owns schema public on PostgreSQL 15:
  // it may drop the tables, policies and all.
  it('refuses the owner of the database, saying what to change', async () => {
    const dbOwner = await db.role('NOSUPERUSER NOBYPASSRLS');
    await db.superuser.query(`ALTER DATABASE "${db.database}" OWNER TO "${dbOwner.name}"`);
    try {
      const pool = new pg.Pool({ connectionString: dbOwner.url, max: 1 });
      try {
        await pool.query('BEGIN; DROP TABLE staff_links; ROLLBACK');
      } finally {
        await pool.end();
      }
      expect(await refusalAs(dbOwner.url)).toBe(
        `CANDOR_DATABASE_URL connects as "${dbOwner.name}", which owns the database "${db.database}" and through it schema public, ` +
          `so it could drop the tables: give the database to the owner role (ALTER DATABASE "${db.database}" OWNER TO <owner role>) ` +
          'and connect as a role with NOSUPERUSER NOBYPASSRLS NOCREATEROLE that does not own the tables, their schema or the database (migrations run as the owner)',
      );
    } finally {
      await db.superuser.query(`ALTER DATABASE "${db.database}" OWNER TO "${db.ownerRole}"`);
    }
  });

  it('refuses the owner of the schema holding the tables, and a member of that owner', async () => {
    const schemaOwner = await db.role('NOLOGIN');
    const member = await db.role('NOSUPERUSER NOBYPASSRLS');
    await db.superuser.query(`GRANT "${schemaOwner.name}" TO "${member.name}"`);
    await db.superuser.query(`ALTER SCHEMA public OWNER TO "${schemaOwner.name}"`);
    try {
      expect(await refusalAs(member.url)).toMatch(
        new RegExp(
          `^CANDOR_DATABASE_URL connects as "${member.name}", which owns schema "public" \\(through its membership of "${schemaOwner.name}"\\) and could drop the tables in it: give the schema to the owner role`,
        ),
      );
    } finally {
      await db.superuser.query('ALTER SCHEMA public OWNER TO pg_database_owner');
    }
  });

  it('refuses a role that may CREATE in the schema holding the tables (as PUBLIC could before PostgreSQL 15)', async () => {
    await db.superuser.query('GRANT CREATE ON SCHEMA public TO PUBLIC');
    try {
      expect(await refusalAs(db.appUrl)).toBe(
        `CANDOR_DATABASE_URL connects as "${db.appRole}", which may CREATE in schema "public" and could put its own objects beside the tables: ` +
          `REVOKE CREATE ON SCHEMA "public" FROM PUBLIC, "${db.appRole}" and the roles it belongs to`,
      );
    } finally {
      await db.superuser.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    }
    expect(await checkApplicationRole(db.app)).toEqual({ role: db.appRole });
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('migratePostgres', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await createTestPostgres({ migrate: false });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('migrates once when several nodes start together, and again finds nothing to do', async () => {
    const results = await Promise.all([migratePostgres(db.ownerUrl), migratePostgres(db.ownerUrl), migratePostgres(db.ownerUrl)]);
    // Every migration the code ships, applied once in all.
    const shipped = (JSON.parse(readFileSync(join(PG_MIGRATIONS, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length;
    expect(shipped).toBeGreaterThanOrEqual(2);
    expect(results).toEqual([{ applied: shipped }, { applied: shipped }, { applied: shipped }]);
    const { rows } = await db.owner.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
    expect(rows).toEqual([{ n: shipped }]);
    const tables = await db.owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
    expect(tables.rows[0]?.n).toBeGreaterThanOrEqual(37);
    expect(await migratePostgres(db.ownerUrl)).toEqual({ applied: shipped });
    // The lock is released: another session can take it at once.
    const { rows: lock } = await db.owner.query<{ got: boolean }>(`SELECT pg_try_advisory_lock(109270328209266) AS got`);
    expect(lock).toEqual([{ got: true }]);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('connectPostgres', () => {
  it('connects to a server that answers', async () => {
    const pool = await connectPostgres(TEST_POSTGRES_URL ?? '');
    try {
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it('names the setting in one line when the database is not there, without the password', async () => {
    const url = new URL(TEST_POSTGRES_URL ?? '');
    url.pathname = '/candor_no_such_database';
    url.password = 'Sup3r-s3cret-pw';
    const err = await connectPostgres(url.toString()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(
      /^CANDOR_DATABASE_URL cannot reach PostgreSQL at .*\/candor_no_such_database: database "candor_no_such_database" does not exist$/,
    );
    expect(message).not.toContain('Sup3r-s3cret-pw');
  });
});
