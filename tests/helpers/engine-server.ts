/**
 * The real server on each engine, for server-level tests that run on both (issue 15): SQLite always,
 * PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, for
 * `describe.each(serverEnginesUnderTest())('on $name', (engine) => …)`.
 *
 * `engine.start(options)` starts `node src/server.ts` as tests/helpers/server.ts does. On SQLite that
 * is exactly `startServer(options)`, data in the data dir. On PostgreSQL it first makes a database of
 * its own (tests/helpers/postgres.ts: an owner that migrated it, an application role under row-level
 * security) and starts the server with CANDOR_DATABASE_URL naming it as the application role, with
 * CANDOR_SECRET and CANDOR_ENCRYPTION_KEY from the options' env, or fixed test values (PostgreSQL
 * takes secrets from the environment only). Either way the test gets an async `Database` on the same
 * data (SQLite: the data dir's candor.db; PostgreSQL: the application role, so what the test sees is
 * what row-level security lets the server see), sealing audit entries with the server's audit key,
 * to seed and inspect through stores or the builder (db/engine/query.ts), never SQL of one engine.
 * History the server must find at its first start goes in through `beforeStart`; screenshots are
 * named by `screenshotPath` (PostgreSQL's suffixed -postgres).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openPostgresDatabase } from '../../db/engine/postgres.ts';
import { type Query, query, type ReadQuery, reading } from '../../db/engine/query.ts';
import { openSqliteDatabase } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { createTestPostgres, TEST_POSTGRES_URL } from './postgres.ts';
import { freePort, ROOT, type RunningServer, type StartOptions, startServer, tempDir } from './server.ts';

/** Secrets for a server on PostgreSQL whose test gives none (a generated secrets.json is refused there). */
export const PG_TEST_SECRETS = {
  CANDOR_SECRET: 'engine-server-test-secret-long-enough-for-candor',
  CANDOR_ENCRYPTION_KEY: 'ab'.repeat(32),
} as const;

export interface ServerOnEngine {
  engine: 'sqlite' | 'postgres';
  /** the running server; a new one after `restart()` */
  readonly server: RunningServer;
  /**
   * Stops the server and starts it again on the same port, data and environment (what it does at start,
   * housekeeping among it, runs again); `server` is then the new one. The test's `database` stays open.
   * `env`, when given, is added to the server's environment from this start on (e.g. another content dir).
   */
  restart(env?: Record<string, string>): Promise<RunningServer>;
  /**
   * What a CLI command run beside the server needs in its environment besides CANDOR_DATA_DIR to reach
   * the same data: nothing on SQLite; CANDOR_DATABASE_URL and the secrets on PostgreSQL.
   */
  env: Record<string, string>;
  /** the server's data, async; audit entries written through it are sealed with the server's key */
  database: Database;
  /**
   * Everything the database holds at rest, as text, for checks that a value is not stored in clear:
   * SQLite, the bytes of candor.db after a checkpoint; PostgreSQL, every row of every table as text
   * (read as the superuser, past row-level security).
   */
  storedText(): Promise<string>;
  /**
   * Every column of every table with a value holding `needle`, as `table.column`, sorted: SQLite, each
   * value cast to text (a blob's bytes); PostgreSQL, each value as text (bytes: searched as bytes), read
   * as the superuser, past row-level security.
   */
  columnsHolding(needle: string): Promise<string[]>;
  /**
   * What `candor backup` run beside the server needs in its environment besides CANDOR_DATA_DIR: on
   * SQLite nothing; on PostgreSQL `env` with CANDOR_DATABASE_URL naming the database's owner, given
   * BYPASSRLS as the README says a backup role needs (the application role would dump nothing).
   */
  backupEnv(): Promise<Record<string, string>>;
  /** The names of the tables, sorted (SQLite: sqlite_master; PostgreSQL: schema public, read as the superuser). */
  tableNames(): Promise<string[]>;
  /** SQLite: `PRAGMA integrity_check`'s answer ('ok'); PostgreSQL: undefined (it has no such check without extensions). */
  integrityCheck(): Promise<string | undefined>;
  /** Stops the server, closes the handle and drops the PostgreSQL database. */
  stop(): Promise<void>;
}

export interface EngineStartOptions extends StartOptions {
  /**
   * Rows written before the server first starts, as history it finds at start (e.g. months of component
   * states): on the fresh, migrated database, through a handle of its own (no audit keys bound: write
   * no audit entries here), closed before the server starts.
   */
  beforeStart?: (database: Database) => Promise<void>;
}

export interface ServerEngine {
  name: 'sqlite' | 'postgres';
  start(options?: EngineStartOptions): Promise<ServerOnEngine>;
}

/** Runs `beforeStart` on a handle of its own, closed after it (or after it fails). */
async function seedBeforeStart(open: () => Database, beforeStart: EngineStartOptions['beforeStart']): Promise<void> {
  if (!beforeStart) return;
  const seeding = open();
  try {
    await beforeStart(seeding);
  } finally {
    await seeding.close();
  }
}

function secretsOf(dataDir: string, env: Record<string, string> | undefined): string {
  if (env?.CANDOR_SECRET) return env.CANDOR_SECRET;
  const file = join(dataDir, 'secrets.json');
  if (!existsSync(file)) throw new Error('the server has no CANDOR_SECRET and no secrets.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { secret: string }).secret;
}

const sqlite: ServerEngine = {
  name: 'sqlite',
  async start({ beforeStart, ...options } = {}) {
    const own = !options.dataDir;
    const fixed = { ...options, dataDir: options.dataDir ?? tempDir(), port: options.port ?? (await freePort()) };
    await seedBeforeStart(() => openSqliteDatabase(join(fixed.dataDir, 'candor.db')), beforeStart);
    let server = await startServer(fixed);
    const engine = openSqliteDatabase(join(server.dataDir, 'candor.db'));
    const database = bindAuditKeys(engine, auditKeyring(secretsOf(server.dataDir, options.env)));
    return {
      engine: 'sqlite',
      get server() {
        return server;
      },
      async restart(env) {
        await server.stop();
        if (env) fixed.env = { ...fixed.env, ...env };
        server = await startServer(fixed);
        return server;
      },
      env: {},
      database,
      async storedText() {
        engine.connection.$client.pragma('wal_checkpoint(TRUNCATE)');
        return readFileSync(join(server.dataDir, 'candor.db')).toString('latin1');
      },
      async columnsHolding(needle) {
        const sqlite = engine.connection.$client;
        const found: string[] = [];
        const tables = sqlite.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
        for (const { name } of tables) {
          for (const { name: column } of sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).all(name) as { name: string }[]) {
            const hit = sqlite.prepare(`SELECT 1 FROM "${name}" WHERE instr(CAST("${column}" AS TEXT), ?) > 0 LIMIT 1`).get(needle);
            if (hit) found.push(`${name}.${column}`);
          }
        }
        return found.sort();
      },
      async backupEnv() {
        return {};
      },
      async tableNames() {
        const rows = engine.connection.$client.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all();
        return (rows as { name: string }[]).map((r) => r.name);
      },
      async integrityCheck() {
        return (engine.connection.$client.pragma('integrity_check', { simple: true }) as string | undefined) ?? undefined;
      },
      async stop() {
        await database.close();
        await server.stop();
        if (own) rmSync(fixed.dataDir, { recursive: true, force: true });
      },
    };
  },
};

const postgres: ServerEngine = {
  name: 'postgres',
  async start({ beforeStart, ...options } = {}) {
    const pg = await createTestPostgres();
    try {
      const env = { ...PG_TEST_SECRETS, ...options.env, CANDOR_DATABASE_URL: pg.appUrl };
      const own = !options.dataDir;
      const fixed = { ...options, env, dataDir: options.dataDir ?? tempDir(), port: options.port ?? (await freePort()) };
      await seedBeforeStart(() => openPostgresDatabase({ url: pg.appUrl, maxConnections: 2 }), beforeStart);
      let server = await startServer(fixed);
      const database = bindAuditKeys(openPostgresDatabase({ url: pg.appUrl, maxConnections: 4 }), auditKeyring(env.CANDOR_SECRET));
      let bypassing = false;
      const cliEnv = {
        CANDOR_DATABASE_URL: env.CANDOR_DATABASE_URL,
        CANDOR_SECRET: env.CANDOR_SECRET,
        CANDOR_ENCRYPTION_KEY: env.CANDOR_ENCRYPTION_KEY,
      };
      return {
        engine: 'postgres',
        get server() {
          return server;
        },
        async restart(extraEnv) {
          await server.stop();
          if (extraEnv) fixed.env = { ...fixed.env, ...extraEnv, CANDOR_DATABASE_URL: pg.appUrl };
          server = await startServer(fixed);
          return server;
        },
        env: cliEnv,
        database,
        async storedText() {
          const { rows: tables } = await pg.superuser.query<{ name: string }>(
            `SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
          );
          const parts: string[] = [];
          for (const { name } of tables) {
            const { rows } = await pg.superuser.query<{ row: string }>(`SELECT t::text AS row FROM ${name} t`);
            parts.push(...rows.map((r) => r.row));
          }
          return parts.join('\n');
        },
        async columnsHolding(needle) {
          const { rows: columns } = await pg.superuser.query<{ tab: string; col: string; bytes: boolean }>(
            `SELECT table_name AS tab, column_name AS col, data_type = 'bytea' AS bytes FROM information_schema.columns
              WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
          );
          const found: string[] = [];
          for (const { tab, col, bytes } of columns) {
            const quoted = `"${tab.replace(/"/g, '""')}"."${col.replace(/"/g, '""')}"`;
            const holds = bytes ? `position(convert_to($1, 'UTF8') in ${quoted}) > 0` : `strpos(${quoted}::text, $1) > 0`;
            const { rowCount } = await pg.superuser.query(`SELECT 1 FROM "${tab.replace(/"/g, '""')}" WHERE ${holds} LIMIT 1`, [needle]);
            if (rowCount) found.push(`${tab}.${col}`);
          }
          return found.sort();
        },
        async backupEnv() {
          if (!bypassing) await pg.superuser.query(`ALTER ROLE "${pg.ownerRole}" BYPASSRLS`);
          bypassing = true;
          return { ...cliEnv, CANDOR_DATABASE_URL: pg.ownerUrl };
        },
        async tableNames() {
          const { rows } = await pg.superuser.query<{ name: string }>(
            `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
          );
          return rows.map((r) => r.name);
        },
        async integrityCheck() {
          return undefined;
        },
        async stop() {
          await database.close();
          await server.stop();
          if (own) rmSync(fixed.dataDir, { recursive: true, force: true });
          await pg.drop();
        },
      };
    } catch (error) {
      await pg.drop();
      throw error;
    }
  },
};

/**
 * Where a test on this engine saves a screenshot: test-output/screenshots/<name>.png on SQLite, as before
 * the tests ran on both engines, and <name>-postgres.png on PostgreSQL, so the two can be compared.
 */
export function screenshotPath(engine: Pick<ServerEngine, 'name'>, name: string): string {
  return join(ROOT, 'test-output/screenshots', engine.name === 'sqlite' ? `${name}.png` : `${name}-${engine.name}.png`);
}

/** SQLite always; PostgreSQL too when CANDOR_TEST_POSTGRES_URL names a server. */
export function serverEnginesUnderTest(): ServerEngine[] {
  return TEST_POSTGRES_URL ? [sqlite, postgres] : [sqlite];
}

/** One read snapshot with the builder and tables of the database's engine (db/engine/query.ts), to inspect what the server wrote. */
export function readRows<T>(database: Database, fn: (q: ReadQuery) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.read((r) => fn(reading(r))) : database.read((r) => fn(reading(r)));
}

/** One transaction with the builder and tables of the database's engine, to seed or change rows behind the server's back. */
export function writeRows<T>(database: Database, fn: (q: Query) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.transaction((tx) => fn(query(tx))) : database.transaction((tx) => fn(query(tx)));
}
