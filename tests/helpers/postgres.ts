/**
 * A PostgreSQL database of its own for a test file, when
 * CANDOR_TEST_POSTGRES_URL names a server and a superuser to reach it as
 * (e.g. postgres://postgres@127.0.0.1:5432/postgres; .ci/run sets it).
 * Each call makes a database with a random name, an owner role that owns it
 * and runs the migrations, and an application role as Candor should connect
 * (NOSUPERUSER NOBYPASSRLS, granted only SELECT/INSERT/UPDATE/DELETE);
 * `drop()` removes all three. Tests that need one are skipped without the
 * variable: `describe.skipIf(!TEST_POSTGRES_URL)`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresDatabase, type PostgresEngine } from '../../db/engine/postgres.ts';
import { analyzePostgres, grantApplicationRole, migratePostgres } from '../../db/engine/postgres-setup.ts';
import { openSqliteDatabase, type SqliteEngine } from '../../db/engine/sqlite.ts';

export const TEST_POSTGRES_URL: string | undefined = process.env.CANDOR_TEST_POSTGRES_URL?.trim() || undefined;

export interface TestPostgres {
  database: string;
  ownerRole: string;
  appRole: string;
  /** the superuser, on the test database */
  superUrl: string;
  ownerUrl: string;
  appUrl: string;
  /** pools on the test database as the superuser, the owner and the application role */
  superuser: pg.Pool;
  owner: pg.Pool;
  app: pg.Pool;
  /** a URL on the test database as another role (made with `role()`) */
  urlAs(role: string, password: string): string;
  /** a further role on the test server (LOGIN unless NOLOGIN is asked), dropped with the rest; e.g. `role('BYPASSRLS')` */
  role(attributes: string): Promise<{ name: string; url: string }>;
  drop(): Promise<void>;
}

function withUser(base: string, user: string, password: string, database: string): string {
  const url = new URL(base);
  url.username = user;
  url.password = password;
  url.pathname = `/${database}`;
  return url.toString();
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

/** Creates the database and roles, migrates as the owner and grants the application role DML. */
export async function createTestPostgres(options: { migrate?: boolean } = {}): Promise<TestPostgres> {
  const base = TEST_POSTGRES_URL;
  if (!base) throw new Error('CANDOR_TEST_POSTGRES_URL is not set');
  const suffix = randomBytes(5).toString('hex');
  const database = `candor_test_${suffix}`;
  const ownerRole = `candor_owner_${suffix}`;
  const appRole = `candor_app_${suffix}`;
  const password = randomBytes(12).toString('hex');
  const roles: string[] = [];
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    for (const role of [ownerRole, appRole]) {
      await admin.query(`CREATE ROLE ${quote(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '${password}'`);
      roles.push(role);
    }
    await admin.query(`CREATE DATABASE ${quote(database)} OWNER ${quote(ownerRole)}`);
  } finally {
    await admin.end();
  }
  const superUrl = withUser(base, new URL(base).username || 'postgres', decodeURIComponent(new URL(base).password), database);
  const ownerUrl = withUser(base, ownerRole, password, database);
  const appUrl = withUser(base, appRole, password, database);
  const superuser = new pg.Pool({ connectionString: superUrl, max: 2 });
  const owner = new pg.Pool({ connectionString: ownerUrl, max: 2 });
  const app = new pg.Pool({ connectionString: appUrl, max: 4 });
  // An idle connection ended from outside (a test that terminates backends, DROP DATABASE … FORCE of a
  // database it was on) is dropped by its pool; without a listener it would be an uncaught error.
  for (const pool of [superuser, owner, app]) pool.on('error', () => {});
  if (options.migrate !== false) {
    await migratePostgres(ownerUrl);
    await grantApplicationRole(ownerUrl, appRole);
  }
  const urlAs = (role: string, rolePassword: string) => withUser(base, role, rolePassword, database);
  return {
    database,
    ownerRole,
    appRole,
    superUrl,
    ownerUrl,
    appUrl,
    superuser,
    owner,
    app,
    urlAs,
    async role(attributes) {
      const name = `candor_role_${randomBytes(5).toString('hex')}`;
      const login = /\bNOLOGIN\b/i.test(attributes) ? '' : 'LOGIN ';
      await superuser.query(`CREATE ROLE ${quote(name)} ${login}${attributes} PASSWORD '${password}'`);
      roles.push(name);
      await superuser.query(`GRANT CONNECT ON DATABASE ${quote(database)} TO ${quote(name)}`);
      return { name, url: urlAs(name, password) };
    },
    async drop() {
      await Promise.all([superuser.end(), owner.end(), app.end()]);
      const cleanup = new pg.Client({ connectionString: base });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${quote(database)} WITH (FORCE)`);
        for (const role of roles.reverse()) await cleanup.query(`DROP ROLE IF EXISTS ${quote(role)}`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

export interface BothEngines {
  /** a fresh SQLite file, migrated */
  sqlite: SqliteEngine;
  /** a fresh PostgreSQL database, connected as its application role (row-level security applies) */
  postgres: PostgresEngine;
  pg: TestPostgres;
  close(): Promise<void>;
}

/** Both engines side by side, for tests that run the same store code on each and compare. */
export async function bothEngines(): Promise<BothEngines> {
  const pgdb = await createTestPostgres();
  const postgres = openPostgresDatabase({ url: pgdb.appUrl });
  const sqlite = tempSqliteEngine();
  return {
    sqlite,
    postgres,
    pg: pgdb,
    async close() {
      await postgres.close();
      await sqlite.close();
      await pgdb.drop();
    },
  };
}

/** A fresh, migrated SQLite file in a folder of its own, removed when the engine is closed. */
export function tempSqliteEngine(): SqliteEngine {
  const dir = mkdtempSync(join(tmpdir(), 'candor-engine-'));
  const engine = openSqliteDatabase(join(dir, 'candor.db'));
  const close = engine.close.bind(engine);
  return Object.assign(engine, {
    async close() {
      await close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

export interface EngineUnderTest {
  name: 'sqlite' | 'postgres';
  /** a fresh, migrated database of this engine (PostgreSQL: as the application role), dropped by `close()` */
  open(): Promise<OpenedEngine>;
}

export interface OpenedEngine {
  database: SqliteEngine | PostgresEngine;
  /**
   * Another handle on the same database, as a second process would have: on PostgreSQL a pool of its own
   * (closed by `close()`), so two of them run real concurrent transactions; on SQLite `database` itself,
   * since two SQLite connections in one process cannot both run the engine's async transactions (the
   * second's BEGIN IMMEDIATE waits synchronously for a transaction that can only finish on the event loop
   * it blocks).
   */
  another(): SqliteEngine | PostgresEngine;
  /**
   * After seeding in bulk: on PostgreSQL gathers the planner's statistics as the owner, as a restore or
   * `candor db copy` does and autovacuum does later (db/engine/postgres-setup.ts `analyzePostgres`: without
   * them a fan-out over thousands of freshly written recipients is planned as for an empty table); on
   * SQLite nothing.
   */
  analyze(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The engines a store test runs on: SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set,
 * for `describe.each(enginesUnderTest())('on %s', …)` (each is named by `name`).
 */
export function enginesUnderTest(): EngineUnderTest[] {
  const sqlite: EngineUnderTest = {
    name: 'sqlite',
    async open() {
      const database = tempSqliteEngine();
      return { database, another: () => database, analyze: async () => {}, close: () => database.close() };
    },
  };
  if (!TEST_POSTGRES_URL) return [sqlite];
  const postgres: EngineUnderTest = {
    name: 'postgres',
    async open() {
      const pgdb = await createTestPostgres();
      const database = openPostgresDatabase({ url: pgdb.appUrl });
      const others: PostgresEngine[] = [];
      return {
        database,
        another() {
          const other = openPostgresDatabase({ url: pgdb.appUrl });
          others.push(other);
          return other;
        },
        analyze: () => analyzePostgres(pgdb.ownerUrl),
        async close() {
          for (const other of others.splice(0)) await other.close();
          await database.close();
          await pgdb.drop();
        },
      };
    },
  };
  return [sqlite, postgres];
}
