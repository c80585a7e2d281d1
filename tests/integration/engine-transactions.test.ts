/**
 * The engine-neutral transaction API (db/engine) keeps its promises on SQLite (always) and on
 * PostgreSQL (when CANDOR_TEST_POSTGRES_URL names a server where the test may create a scratch
 * database and role): a rollback after an `await` undoes everything; a query from elsewhere while a
 * transaction awaits neither sees nor joins it; read-then-write increments do not lose updates; an
 * error rejects with itself and leaves the connection usable; savepoints undo only their part; reads
 * see one snapshot and cannot write; on PostgreSQL the trust center set in every transaction hides
 * other trust centers' rows (row-level security, as a role without BYPASSRLS) and does not outlive
 * the transaction, serialisation failures are retried a bounded number of times, and a connection
 * dropped mid-transaction is replaced.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { asc, count, eq, sql } from 'drizzle-orm';
import { integer as pgInteger, pgTable, text as pgText, serial } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { knownMigrations } from '../../db/client.ts';
import { errorCode, toInteger } from '../../db/engine/common.ts';
import { openPostgresDatabase, type PostgresEngine } from '../../db/engine/postgres.ts';
import { openSqliteDatabase, type SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database, Reader, SqliteDb, SqliteReadDb, Tx } from '../../db/engine/types.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { TEST_KEYS } from '../helpers/notify.ts';

const PG_URL = process.env.CANDOR_TEST_POSTGRES_URL;

// The scratch tables, as a store would declare them per engine.
const sqliteItems = sqliteTable('tx_items', {
  id: integer('id').primaryKey(),
  trustCenter: integer('trust_center').notNull(),
  label: text('label').notNull(),
});
const sqliteCounters = sqliteTable('tx_counters', { name: text('name').primaryKey(), n: integer('n').notNull() });
const pgItems = pgTable('tx_items', {
  id: serial('id').primaryKey(),
  trustCenter: pgInteger('trust_center').notNull(),
  label: pgText('label').notNull(),
});
const pgCounters = pgTable('tx_counters', {
  trustCenter: pgInteger('trust_center').notNull(),
  name: pgText('name').primaryKey(),
  n: pgInteger('n').notNull(),
});

const SQLITE_TABLES = `
  CREATE TABLE tx_items (id INTEGER PRIMARY KEY, trust_center INTEGER NOT NULL, label TEXT NOT NULL UNIQUE);
  CREATE TABLE tx_counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);`;

// ---- a tiny store: the only place that knows the tables; branches on the engine for the tables and the lock

async function addItem(tx: Tx, label: string): Promise<void> {
  if (tx.engine === 'sqlite') await tx.db.insert(sqliteItems).values({ label, trustCenter: tx.trustCenter });
  else await tx.db.insert(pgItems).values({ label, trustCenter: tx.trustCenter });
}

/** On SQLite the store scopes by trust center; on PostgreSQL this query leaves it to the RLS policy, which the tests prove. */
async function labels(q: Reader): Promise<string[]> {
  if (q.engine === 'sqlite') {
    const rows = await q.db
      .select({ label: sqliteItems.label })
      .from(sqliteItems)
      .where(eq(sqliteItems.trustCenter, q.trustCenter))
      .orderBy(asc(sqliteItems.label));
    return rows.map((r) => r.label);
  }
  const rows = await q.db.select({ label: pgItems.label }).from(pgItems).orderBy(asc(pgItems.label));
  return rows.map((r) => r.label);
}

async function counter(q: Reader, name: string): Promise<number | undefined> {
  if (q.engine === 'sqlite') {
    const [row] = await q.db.select({ n: sqliteCounters.n }).from(sqliteCounters).where(eq(sqliteCounters.name, name));
    return row?.n;
  }
  const [row] = await q.db.select({ n: pgCounters.n }).from(pgCounters).where(eq(pgCounters.name, name));
  return row?.n;
}

async function createCounter(tx: Tx, name: string): Promise<void> {
  if (tx.engine === 'sqlite') await tx.db.insert(sqliteCounters).values({ name, n: 0 });
  else await tx.db.insert(pgCounters).values({ name, n: 0, trustCenter: tx.trustCenter });
}

/** Read, yield to the event loop (so other requests run), then write what was read plus one. */
async function increment(tx: Tx, name: string): Promise<void> {
  if (tx.engine === 'sqlite') {
    // Transactions do not interleave on SQLite: the read needs no lock.
    const [row] = await tx.db.select({ n: sqliteCounters.n }).from(sqliteCounters).where(eq(sqliteCounters.name, name));
    await yieldToOthers();
    await tx.db
      .update(sqliteCounters)
      .set({ n: (row?.n ?? 0) + 1 })
      .where(eq(sqliteCounters.name, name));
    return;
  }
  const [row] = await tx.db.select({ n: pgCounters.n }).from(pgCounters).where(eq(pgCounters.name, name)).for('update');
  await yieldToOthers();
  await tx.db
    .update(pgCounters)
    .set({ n: (row?.n ?? 0) + 1 })
    .where(eq(pgCounters.name, name));
}

const yieldToOthers = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An error with the SQLSTATE or SQLite code of a unique violation, whatever wraps it. */
function isUniqueViolation(error: unknown): boolean {
  const code = errorCode(error);
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** What a promise rejected with; fails the test when it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

/** The messages of an error and of its causes (drizzle wraps what the driver throws). */
function causes(error: unknown): string {
  const messages: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.join(' <- ');
}

// ---- what every engine must do

interface Harness {
  db: Database;
  /** empties the scratch tables, whatever trust center their rows belong to */
  reset(): Promise<void>;
}

function theTransactionApi(harness: () => Harness): void {
  let db: Database;
  beforeEach(async () => {
    db = harness().db;
    await harness().reset();
  });

  it('commits what a transaction wrote on both sides of an await', async () => {
    const result = await db.transaction(async (tx) => {
      await addItem(tx, 'before');
      await sleep(5);
      await addItem(tx, 'after');
      return 'done';
    });
    expect(result).toBe('done');
    expect(await db.read(labels)).toEqual(['after', 'before']);
  });

  it('rolls back every write when the transaction fails after an await, those before the await too, and rejects with that error', async () => {
    const boom = new Error('boom');
    const failing = db.transaction(async (tx) => {
      await addItem(tx, 'before');
      await sleep(5);
      await addItem(tx, 'after');
      await sleep(5);
      throw boom;
    });
    await expect(failing).rejects.toBe(boom);
    expect(await db.read(labels)).toEqual([]);
    // The connection is usable: the next transaction commits.
    await db.transaction((tx) => addItem(tx, 'next'));
    expect(await db.read(labels)).toEqual(['next']);
  });

  it('rejects with the database error of a failing statement and leaves the connection usable', async () => {
    await db.transaction((tx) => addItem(tx, 'taken'));
    const failing = db.transaction(async (tx) => {
      await addItem(tx, 'written first');
      await addItem(tx, 'taken');
    });
    const error = await failing.then(
      () => null,
      (e: unknown) => e,
    );
    expect(isUniqueViolation(error)).toBe(true);
    // the driver's error, as SQLite's: its message says why, and carries no value the statement was given
    // (that message is what a failed action or job logs)
    const message = error instanceof Error ? error.message : '';
    expect(message).toMatch(/unique/i);
    expect(message).not.toMatch(/taken|params/);
    expect(await db.read(labels)).toEqual(['taken']);
    await db.transaction((tx) => addItem(tx, 'afterwards'));
    expect(await db.read(labels)).toEqual(['afterwards', 'taken']);
  });

  it('lets a query from elsewhere neither see nor join a transaction suspended at an await', async () => {
    const boom = new Error('rolled back on purpose');
    const suspended = Promise.withResolvers<void>();
    const resume = Promise.withResolvers<void>();
    const first = db.transaction(async (tx) => {
      await addItem(tx, 'a1');
      suspended.resolve();
      await resume.promise;
      await addItem(tx, 'a2');
      throw boom;
    });
    await suspended.promise;

    // A read does not wait for the open transaction and does not see its uncommitted write.
    expect(await db.read(labels)).toEqual([]);

    // A write through another transaction.
    let secondStarted = false;
    const second = db.transaction(async (tx) => {
      secondStarted = true;
      await addItem(tx, 'b');
      return labels(tx);
    });
    if (db.engine === 'sqlite') {
      // Transactions do not interleave: the second waits until the first has ended.
      await sleep(100);
      expect(secondStarted).toBe(false);
    } else {
      // Real concurrent transactions: the second commits while the first is still open.
      expect(await second).toEqual(['b']);
    }
    expect(await db.read(labels)).toEqual(db.engine === 'sqlite' ? [] : ['b']);

    resume.resolve();
    await expect(first).rejects.toBe(boom);
    // The second saw nothing of the first, was not rolled back with it, and committed.
    expect(await second).toEqual(['b']);
    expect(await db.read(labels)).toEqual(['b']);
  });

  it('ends at 200 when two concurrent workers increment a counter 100 times each, reading then writing', async () => {
    await db.transaction((tx) => createCounter(tx, 'hits'));
    const worker = async () => {
      for (let i = 0; i < 100; i++) await db.transaction((tx) => increment(tx, 'hits'));
    };
    await Promise.all([worker(), worker()]);
    expect(await db.read((q) => counter(q, 'hits'))).toBe(200);
  });

  it('ends at 200 when two transactions each increment a counter 100 times before committing', async () => {
    await db.transaction((tx) => createCounter(tx, 'batch'));
    const hundred = (tx: Tx) =>
      (async () => {
        for (let i = 0; i < 100; i++) await increment(tx, 'batch');
      })();
    await Promise.all([db.transaction(hundred), db.transaction(hundred)]);
    expect(await db.read((q) => counter(q, 'batch'))).toBe(200);
  });

  it('undoes only a failed savepoint, and the transaction goes on after it', async () => {
    await db.transaction(async (tx) => {
      await addItem(tx, 'a');
      const error = await tx
        .savepoint(async (inner) => {
          await addItem(inner, 'b');
          await addItem(inner, 'a'); // a unique violation: on PostgreSQL it would abort the whole transaction but for the savepoint
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isUniqueViolation(error)).toBe(true);
      await addItem(tx, 'c');
      await tx.savepoint(async (inner) => {
        await addItem(inner, 'd');
        await inner.savepoint((deeper) => addItem(deeper, 'e'));
      });
    });
    expect(await db.read(labels)).toEqual(['a', 'c', 'd', 'e']);
  });

  it('reads one snapshot: a commit made while a read awaits does not show in it', async () => {
    await db.transaction((tx) => addItem(tx, 'old'));
    const firstLook = Promise.withResolvers<void>();
    const committed = Promise.withResolvers<void>();
    const reading = db.read(async (q) => {
      const before = await labels(q);
      firstLook.resolve();
      await committed.promise;
      return [before, await labels(q)];
    });
    await firstLook.promise;
    // Committed by another request while the read is suspended.
    await db.transaction((tx) => addItem(tx, 'new'));
    committed.resolve();
    expect(await reading).toEqual([['old'], ['old']]);
    expect(await db.read(labels)).toEqual(['new', 'old']);
  });

  it('refuses writes inside a read', async () => {
    const attempt = db.read(async (q) => {
      if (q.engine === 'sqlite') q.db.all(sql`INSERT INTO tx_items (trust_center, label) VALUES (1, 'sneaked') RETURNING id`);
      else await q.db.execute(sql`INSERT INTO tx_items (trust_center, label) VALUES (1, 'sneaked')`);
    });
    const error = await attempt.then(
      () => null,
      (e: unknown) => e,
    );
    expect(['SQLITE_READONLY', '25006']).toContain(errorCode(error));
    expect(await db.read(labels)).toEqual([]);
  });

  it('refuses a transaction or read started inside a transaction, and a tx used after it ended or from outside', async () => {
    let kept: Tx | undefined;
    await db.transaction(async (tx) => {
      kept = tx;
      await expect(db.transaction((inner) => addItem(inner, 'nested'))).rejects.toThrow(/inside a transaction's callback/);
      await expect(db.read(labels)).rejects.toThrow(/inside a transaction's callback/);
      await addItem(tx, 'kept');
    });
    if (!kept) throw new Error('the callback did not run');
    const escaped = kept;
    expect(causes(await rejection(addItem(escaped, 'late')))).toMatch(/has ended/);

    const suspended = Promise.withResolvers<Tx>();
    const resume = Promise.withResolvers<void>();
    const open = db.transaction(async (tx) => {
      suspended.resolve(tx);
      await resume.promise;
    });
    const handle = await suspended.promise;
    expect(causes(await rejection(addItem(handle, 'from outside')))).toMatch(/outside its callback/);
    resume.resolve();
    await open;
    expect(await db.read(labels)).toEqual(['kept']);
  });

  it('scopes each transaction to trust center 1 unless told otherwise, and refuses a malformed one', async () => {
    expect(await db.transaction(async (tx) => tx.trustCenter)).toBe(1);
    expect(await db.transaction(async (tx) => tx.trustCenter, { trustCenter: 2 })).toBe(2);
    expect(await db.read(async (q) => q.trustCenter, { trustCenter: 3 })).toBe(3);
    await expect(db.transaction(async () => 0, { trustCenter: 0 })).rejects.toThrow(/positive integer/);
    await expect(db.read(async () => 0, { trustCenter: 1.5 })).rejects.toThrow(/positive integer/);
  });
}

// ---- SQLite

describe('the transaction API on SQLite', () => {
  let dir: string;
  let engine: SqliteEngine;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'candor-engine-'));
    engine = openSqliteDatabase(join(dir, 'candor.db'));
    bindAuditKeys(engine.connection, auditKeyring(TEST_KEYS.secret));
    engine.connection.$client.exec(SQLITE_TABLES);
  });
  afterAll(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  theTransactionApi(() => ({
    db: engine,
    reset: async () => {
      engine.connection.$client.exec('DELETE FROM tx_items; DELETE FROM tx_counters;');
    },
  }));

  it('runs on the real schema: the migrations of db/client.ts have been applied', async () => {
    const applied = await engine.read(async (q) =>
      q.engine === 'sqlite' ? q.db.get<{ n: number }>(sql`SELECT count(*) AS n FROM __drizzle_migrations`) : undefined,
    );
    expect(applied?.n).toBe(knownMigrations().length);
  });

  it('reuses prepared statements without carrying one query’s row shape into the next', async () => {
    engine.connection.$client.exec('DELETE FROM tx_items');
    const rows = await engine.transaction(async (tx) => {
      if (tx.engine !== 'sqlite') throw new Error('SQLite expected');
      await tx.db.insert(sqliteItems).values([
        { trustCenter: 1, label: 'a' },
        { trustCenter: 1, label: 'b' },
      ]);
      const select = tx.db.select({ label: sqliteItems.label }).from(sqliteItems).orderBy(asc(sqliteItems.label));
      const text = select.toSQL().sql;
      // drizzle runs a select with fields in array mode (`raw()`), a raw query in object mode: one cached statement serves both.
      const first = await select;
      const asObjects = tx.db.all<{ label: string }>(sql.raw(text));
      const again = await select;
      // More distinct texts than the cache keeps: the oldest are dropped and prepared again when asked for.
      for (let i = 0; i < 600; i++) tx.db.all(sql.raw(`SELECT ${i} AS n`));
      const afterEviction = await select;
      return { first, asObjects, again, afterEviction };
    });
    const expected = [{ label: 'a' }, { label: 'b' }];
    expect(rows).toEqual({ first: expected, asObjects: expected, again: expected, afterEviction: expected });
  });

  it('keeps a query built once per connection, runs it inside each later transaction, and hands it to no ended one', async () => {
    engine.connection.$client.exec('DELETE FROM tx_items');
    let builds = 0;
    const insertLabel = (db: SqliteDb) => {
      builds++;
      return db
        .insert(sqliteItems)
        .values({ trustCenter: sql.placeholder('trustCenter'), label: sql.placeholder('label') })
        .returning({ id: sqliteItems.id })
        .prepare();
    };
    const countLabels = (db: SqliteReadDb) =>
      db
        .select({ n: count() })
        .from(sqliteItems)
        .where(eq(sqliteItems.label, sql.placeholder('label')))
        .prepare();
    const onSqlite = (tx: Tx) => {
      if (tx.engine !== 'sqlite') throw new Error('SQLite expected');
      return tx;
    };
    const first = await engine.transaction(async (tx) => onSqlite(tx).kept(insertLabel));
    const second = await engine.transaction(async (tx) => {
      const kept = onSqlite(tx).kept(insertLabel);
      kept.get({ trustCenter: 1, label: 'kept' });
      return kept;
    });
    expect(second).toBe(first);
    // Run inside a transaction that fails: rolled back with it, as any of its statements.
    await expect(
      engine.transaction(async (tx) => {
        onSqlite(tx).kept(insertLabel).get({ trustCenter: 1, label: 'undone' });
        throw new Error('after the kept insert');
      }),
    ).rejects.toThrow('after the kept insert');
    const counted = await engine.read(async (r) => {
      if (r.engine !== 'sqlite') throw new Error('SQLite expected');
      return ['kept', 'undone'].map((label) => r.kept(countLabels).get({ label })?.n);
    });
    expect(counted).toEqual([1, 0]);
    expect(builds).toBe(1);
    let ended: Tx | undefined;
    await engine.transaction(async (tx) => {
      ended = tx;
    });
    expect(() => (ended ? onSqlite(ended).kept(insertLabel) : undefined)).toThrow(/has ended/);
  });

  it('waits, as before, for another process that holds the write lock, then runs', async () => {
    const file = join(dir, 'candor.db');
    const locked = Promise.withResolvers<void>();
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const Sqlite = require(workerData.driver);
       const other = new Sqlite(workerData.file);
       other.exec('BEGIN IMMEDIATE');
       other.exec("INSERT INTO tx_items (trust_center, label) VALUES (1, 'other process')");
       parentPort.postMessage('locked');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
       other.exec('COMMIT');
       other.close();`,
      { eval: true, workerData: { file, driver: createRequire(import.meta.url).resolve('better-sqlite3') } },
    );
    const exited = new Promise((resolve, reject) => {
      worker.on('exit', resolve);
      worker.on('error', reject);
    });
    worker.on('message', () => locked.resolve());
    await locked.promise;
    const started = Date.now();
    await engine.transaction((tx) => addItem(tx, 'this process'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await exited;
    expect(await engine.read(labels)).toEqual(['other process', 'this process']);
  });

  it('queues reads behind an open transaction for a database in memory, which has no second connection', async () => {
    const memory = openSqliteDatabase(':memory:');
    try {
      memory.connection.$client.exec(SQLITE_TABLES);
      const suspended = Promise.withResolvers<void>();
      const resume = Promise.withResolvers<void>();
      const open = memory.transaction(async (tx) => {
        await addItem(tx, 'x');
        suspended.resolve();
        await resume.promise;
        throw new Error('undo');
      });
      await suspended.promise;
      let readDone = false;
      const reading = memory.read(labels).then((seen) => {
        readDone = true;
        return seen;
      });
      await sleep(50);
      expect(readDone).toBe(false);
      resume.resolve();
      await expect(open).rejects.toThrow('undo');
      expect(await reading).toEqual([]);
      const error = await memory
        .read(async (q) =>
          q.engine === 'sqlite' ? q.db.all(sql`INSERT INTO tx_items (trust_center, label) VALUES (1, 'y') RETURNING id`) : [],
        )
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(errorCode(error)).toBe('SQLITE_READONLY');
      // query_only is lifted again for transactions.
      await memory.transaction((tx) => addItem(tx, 'z'));
      expect(await memory.read(labels)).toEqual(['z']);
    } finally {
      await memory.close();
    }
  });

  it('refuses work once closed, after letting what was already queued finish', async () => {
    const other = openSqliteDatabase(join(dir, 'closing.db'));
    other.connection.$client.exec(SQLITE_TABLES);
    const queued = [1, 2, 3].map((n) => other.transaction((tx) => addItem(tx, `q${n}`)));
    await other.close();
    await Promise.all(queued);
    await expect(other.transaction((tx) => addItem(tx, 'late'))).rejects.toThrow(/closed/);
  });
});

// ---- PostgreSQL

describe.skipIf(!PG_URL)('the transaction API on PostgreSQL', () => {
  const suffix = randomBytes(5).toString('hex');
  const database = `candor_txapi_${suffix}`;
  const role = `candor_txapi_app_${suffix}`;
  let admin: pg.Client;
  let owner: pg.Client;
  let appUrl: string;
  let engine: PostgresEngine;
  const opened: PostgresEngine[] = [];

  function open(options: { maxConnections?: number; attempts?: number } = {}): PostgresEngine {
    const e = openPostgresDatabase({ url: appUrl, ...options });
    opened.push(e);
    return e;
  }

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS`);
    const ownerUrl = new URL(PG_URL ?? '');
    ownerUrl.pathname = `/${database}`;
    owner = new pg.Client({ connectionString: ownerUrl.toString() });
    await owner.connect();
    const scoped = `trust_center = NULLIF(current_setting('app.trust_center', true), '')::integer`;
    await owner.query(`
      CREATE TABLE tx_items (id serial PRIMARY KEY, trust_center integer NOT NULL, label text NOT NULL UNIQUE);
      CREATE TABLE tx_counters (trust_center integer NOT NULL, name text PRIMARY KEY, n integer NOT NULL);
      CREATE TABLE tx_on_call (trust_center integer NOT NULL DEFAULT 1, doctor text PRIMARY KEY, on_call boolean NOT NULL);
      ALTER TABLE tx_items ENABLE ROW LEVEL SECURITY; ALTER TABLE tx_items FORCE ROW LEVEL SECURITY;
      ALTER TABLE tx_counters ENABLE ROW LEVEL SECURITY; ALTER TABLE tx_counters FORCE ROW LEVEL SECURITY;
      ALTER TABLE tx_on_call ENABLE ROW LEVEL SECURITY; ALTER TABLE tx_on_call FORCE ROW LEVEL SECURITY;
      CREATE POLICY scoped ON tx_items USING (${scoped}) WITH CHECK (${scoped});
      CREATE POLICY scoped ON tx_counters USING (${scoped}) WITH CHECK (${scoped});
      CREATE POLICY scoped ON tx_on_call USING (${scoped}) WITH CHECK (${scoped});
      GRANT SELECT, INSERT, UPDATE, DELETE ON tx_items, tx_counters, tx_on_call TO ${role};
      GRANT USAGE ON SEQUENCE tx_items_id_seq TO ${role};`);
    const app = new URL(ownerUrl);
    app.username = role;
    app.password = '';
    appUrl = app.toString();
    engine = open();
  });

  afterAll(async () => {
    await Promise.all(opened.map((e) => e.close()));
    await owner?.end();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  const reset = async () => {
    // The owner is a superuser here, so it sees every trust center's rows.
    await owner.query('TRUNCATE tx_items, tx_counters, tx_on_call');
  };

  theTransactionApi(() => ({ db: engine, reset }));

  it('connects as a role that neither is a superuser nor bypasses row-level security', async () => {
    const { rows } = await engine.pool.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
      'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
    );
    expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
  });

  it("sets the trust center in every transaction: another trust center's rows are neither seen nor written", async () => {
    await reset();
    await engine.transaction((tx) => addItem(tx, 'one'));
    await engine.transaction((tx) => addItem(tx, 'two'), { trustCenter: 2 });
    expect(await engine.read(labels)).toEqual(['one']);
    expect(await engine.read(labels, { trustCenter: 2 })).toEqual(['two']);
    expect(await engine.transaction((tx) => labels(tx))).toEqual(['one']);
    // Writing a row of trust center 2 from a transaction for 1 is refused by the policy's check.
    const error = await engine
      .transaction((tx) => tx.db.insert(pgItems).values({ label: 'forged', trustCenter: 2 }))
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(errorCode(error)).toBe('42501');
    // Nor can it change or delete theirs: the rows are not there for it.
    const changed = await engine.transaction((tx) => tx.db.update(pgItems).set({ label: 'renamed' }).returning({ id: pgItems.id }));
    expect(changed).toHaveLength(1);
    const { rows } = await owner.query<{ trust_center: number; label: string }>(
      'SELECT trust_center, label FROM tx_items ORDER BY trust_center',
    );
    expect(rows).toEqual([
      { trust_center: 1, label: 'renamed' },
      { trust_center: 2, label: 'two' },
    ]);
  });

  it('does not leave the trust center set on the pooled connection after the transaction', async () => {
    await reset();
    const single = open({ maxConnections: 1 });
    const pidIn = await single.transaction(
      async (tx) => {
        await addItem(tx, 'two');
        const result = await tx.db.execute<{ pid: number; setting: string }>(
          sql`SELECT pg_backend_pid() AS pid, current_setting('app.trust_center') AS setting`,
        );
        expect(result.rows[0]?.setting).toBe('2');
        return result.rows[0]?.pid;
      },
      { trustCenter: 2 },
    );
    // The same connection, outside any transaction: nothing set, so the policy shows no row at all.
    const after = await single.pool.query<{ pid: number; setting: string | null; n: string }>(
      `SELECT pg_backend_pid() AS pid, current_setting('app.trust_center', true) AS setting, (SELECT count(*) FROM tx_items) AS n`,
    );
    expect(after.rows[0]?.pid).toBe(pidIn);
    expect(after.rows[0]?.setting ?? '').toBe('');
    expect(toInteger(after.rows[0]?.n ?? 'missing')).toBe(0);
    // And the next transaction on it, for trust center 1, sees only its own.
    expect(await single.transaction(async (tx) => labels(tx))).toEqual([]);
  });

  it('retries a transaction that ended in a real serialisation failure, re-running the whole callback', async () => {
    await reset();
    await owner.query(`INSERT INTO tx_on_call (doctor, on_call) VALUES ('alice', true), ('bob', true)`);
    // Each doctor goes off call if the other is still on: run side by side under SERIALIZABLE, one must fail and re-run.
    const bothRead = Promise.withResolvers<void>();
    let arrived = 0;
    let runs = 0;
    const goOffCall = (doctor: string) =>
      engine.transaction(
        async (tx) => {
          runs++;
          const first = runs <= 2;
          const result = await tx.db.execute<{ n: string }>(sql`SELECT count(*) AS n FROM tx_on_call WHERE on_call`);
          const onCall = toInteger(result.rows[0]?.n ?? 'missing');
          if (first) {
            arrived++;
            if (arrived === 2) bothRead.resolve();
            await bothRead.promise;
          }
          if (onCall >= 2) await tx.db.execute(sql`UPDATE tx_on_call SET on_call = false WHERE doctor = ${doctor}`);
        },
        { serializable: true },
      );
    await Promise.all([goOffCall('alice'), goOffCall('bob')]);
    // One of the two first runs failed and was re-run (a re-run may meet the other's commit and fail once more).
    expect(runs).toBeGreaterThanOrEqual(3);
    const { rows } = await owner.query<{ n: string }>('SELECT count(*) AS n FROM tx_on_call WHERE on_call');
    expect(toInteger(rows[0]?.n ?? 'missing')).toBe(1);
  });

  it('gives up after the set number of attempts, and never re-runs on other errors', async () => {
    const limited = open({ attempts: 3 });
    let runs = 0;
    const failing = limited.transaction(async (tx) => {
      runs++;
      await tx.db.execute(sql.raw(`DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$`));
    });
    const error = await failing.then(
      () => null,
      (e: unknown) => e,
    );
    expect(errorCode(error)).toBe('40001');
    expect(runs).toBe(3);

    runs = 0;
    const deadlockOnce = await limited.transaction(async (tx) => {
      runs++;
      if (runs === 1) await tx.db.execute(sql.raw(`DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$`));
      return runs;
    });
    expect(deadlockOnce).toBe(2);

    runs = 0;
    await expect(
      limited.transaction(async () => {
        runs++;
        throw new Error('not retried');
      }),
    ).rejects.toThrow('not retried');
    expect(runs).toBe(1);
  });

  it('replaces a connection that dropped while a transaction awaited, without crashing the process', async () => {
    await reset();
    const single = open({ maxConnections: 1 });
    const failing = single.transaction(async (tx) => {
      await addItem(tx, 'lost');
      const result = await tx.db.execute<{ pid: number }>(sql`SELECT pg_backend_pid() AS pid`);
      await admin.query('SELECT pg_terminate_backend($1)', [result.rows[0]?.pid]);
      await sleep(100); // the connection learns it is gone while no query runs
      await addItem(tx, 'never');
    });
    await expect(failing).rejects.toThrow();
    await single.transaction((tx) => addItem(tx, 'fresh connection'));
    expect(await single.read(labels)).toEqual(['fresh connection']);
  });
});
