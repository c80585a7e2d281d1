/**
 * PostgreSQL start-up checks against a real server: the application role
 * must be one row-level security holds (not a superuser, not BYPASSRLS, not
 * the tables' owner or a member of it), migrations run once however many
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
        'connect as a role with NOSUPERUSER NOBYPASSRLS that does not own the tables (migrations run as the owner)',
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
