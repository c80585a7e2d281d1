/**
 * The rate-limit counters (src/stores/rate-limits.ts, src/core/auth/rate-limit.ts) on both engines:
 * one sequence of hits, peeks, clears and prefix reads across a window boundary, on a fake clock,
 * gives the same states on SQLite and on PostgreSQL (when CANDOR_TEST_POSTGRES_URL is set); on
 * PostgreSQL, concurrent transactions lose no hit, and another trust center sees none of the counters.
 * Also the bridge (db/engine/sqlite.ts `databaseOf`): the handle of a connection is the same
 * database, one handle per connection.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import type { PostgresEngine } from '../../db/engine/postgres.ts';
import { databaseOf, type SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { clearLimit, clearLimits, hitLimit, type Limit, openLimits, peekLimit } from '../../src/core/auth/rate-limit.ts';
import { counterOf, removeCountersBefore } from '../../src/stores/rate-limits.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-11-30T09:15:00.123Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const at = (ms: number) => new Date(T0.getTime() + ms);
const limit: Limit = { bucket: 'test:pair', max: 3, windowMs: MINUTE };
const ceiling: Limit = { bucket: 'test:ceiling', max: 2, windowMs: 2 * MINUTE };
// Keys as lockouts.ts makes them (JSON), with characters LIKE would treat as wildcards or fold.
const pair = (account: string, source: string) => JSON.stringify([account, source]);
const prefixOf = (account: string) => `${JSON.stringify([account]).slice(0, -1)},`;

/** Everything a store user can observe, step by step, on one engine. */
async function sequence(database: Database) {
  const seen: Record<string, unknown> = {};
  const hit = (l: Limit, key: string, now: Date) => database.transaction((tx) => hitLimit(tx, l, key, now));
  const peek = (l: Limit, key: string, now: Date) => database.read((r) => peekLimit(r, l, key, now));
  const open = (l: Limit, prefix: string, now: Date) => database.read((r) => openLimits(r, l, prefix, now));

  seen.empty = await peek(limit, pair('a_b%c@x', '203.0.113.7'), T0);
  const hits = [];
  for (let i = 0; i < 5; i++) hits.push(await hit(limit, pair('a_b%c@x', '203.0.113.7'), at(i * SECOND)));
  seen.hits = hits;
  await hit(limit, pair('a_b%c@x', '198.51.100.1'), at(10 * SECOND));
  // Same prefix but for LIKE: '_' and '%' are wildcards there, and SQLite's LIKE folds case.
  await hit(limit, pair('aXbYc@x', '203.0.113.7'), at(10 * SECOND));
  await hit(limit, pair('A_B%C@X', '203.0.113.7'), at(10 * SECOND));
  seen.ceilingHits = [
    await hit(ceiling, 'a_b%c@x', T0),
    await hit(ceiling, 'a_b%c@x', at(SECOND)),
    await hit(ceiling, 'a_b%c@x', at(2 * SECOND)),
  ];
  seen.peekBeforeBoundary = await peek(limit, pair('a_b%c@x', '203.0.113.7'), at(MINUTE - 1));
  seen.openBeforeBoundary = await open(limit, prefixOf('a_b%c@x'), at(MINUTE - 1));
  // The window of the first key opened at T0: at T0 + 1 minute it is over, the other (opened at +10 s) is not.
  seen.peekAtBoundary = await peek(limit, pair('a_b%c@x', '203.0.113.7'), at(MINUTE));
  seen.openAtBoundary = await open(limit, prefixOf('a_b%c@x'), at(MINUTE));
  seen.restarted = await hit(limit, pair('a_b%c@x', '203.0.113.7'), at(MINUTE));
  seen.again = await hit(limit, pair('a_b%c@x', '203.0.113.7'), at(2 * MINUTE - 1));
  seen.stored = await database.read((r) => counterOf(r, limit.bucket, pair('a_b%c@x', '203.0.113.7')));
  seen.ceilingStill = await peek(ceiling, 'a_b%c@x', at(MINUTE));
  seen.cleared = await database.transaction(async (tx) => {
    await clearLimit(tx, ceiling, 'a_b%c@x');
    return clearLimits(tx, limit, prefixOf('a_b%c@x'));
  });
  seen.afterClear = {
    ceiling: await peek(ceiling, 'a_b%c@x', at(MINUTE)),
    open: await open(limit, prefixOf('a_b%c@x'), at(MINUTE)),
    others: await open(limit, '["', at(MINUTE)),
  };
  seen.purged = await database.transaction((tx) => removeCountersBefore(tx, at(11 * SECOND)));
  seen.left = await open(limit, '["', at(MINUTE));
  // A rollback after an await undoes the hit.
  await expect(
    database.transaction(async (tx) => {
      await hitLimit(tx, limit, 'rolled back', T0);
      throw new Error('undo');
    }),
  ).rejects.toThrow('undo');
  seen.rolledBack = await peek(limit, 'rolled back', T0);
  return seen;
}

const expected = {
  empty: { count: 0, limited: false, retryAfterMs: 0 },
  hits: [
    { count: 1, limited: false, retryAfterMs: MINUTE },
    { count: 2, limited: false, retryAfterMs: MINUTE - SECOND },
    { count: 3, limited: false, retryAfterMs: MINUTE - 2 * SECOND },
    { count: 4, limited: true, retryAfterMs: MINUTE - 3 * SECOND },
    { count: 5, limited: true, retryAfterMs: MINUTE - 4 * SECOND },
  ],
  ceilingHits: [
    { count: 1, limited: false },
    { count: 2, limited: false },
    { count: 3, limited: true },
  ],
  peekBeforeBoundary: { count: 5, limited: true, retryAfterMs: 1 },
  openBeforeBoundary: [
    { key: pair('a_b%c@x', '198.51.100.1'), count: 1, limited: false, retryAfterMs: 10 * SECOND + 1 },
    { key: pair('a_b%c@x', '203.0.113.7'), count: 5, limited: true, retryAfterMs: 1 },
  ],
  peekAtBoundary: { count: 0, limited: false, retryAfterMs: 0 },
  openAtBoundary: [{ key: pair('a_b%c@x', '198.51.100.1'), count: 1, limited: false, retryAfterMs: 10 * SECOND }],
  restarted: { count: 1, limited: false, retryAfterMs: MINUTE },
  again: { count: 2, limited: false, retryAfterMs: 1 },
  stored: { key: pair('a_b%c@x', '203.0.113.7'), windowStart: at(MINUTE), count: 2 },
  ceilingStill: { count: 3, limited: true, retryAfterMs: MINUTE },
  cleared: 2,
  afterClear: {
    ceiling: { count: 0, limited: false, retryAfterMs: 0 },
    open: [],
    others: [
      { key: pair('A_B%C@X', '203.0.113.7'), count: 1 },
      { key: pair('aXbYc@x', '203.0.113.7'), count: 1 },
    ],
  },
  purged: 2,
  left: [],
  rolledBack: { count: 0, limited: false, retryAfterMs: 0 },
};

describe('rate-limit counters on SQLite', () => {
  let engine: SqliteEngine;
  /** the engine's own folder, for the bridge's databases */
  let dir: string;
  beforeAll(() => {
    engine = tempSqliteEngine();
    dir = dirname(engine.connection.$client.name);
  });
  afterAll(async () => {
    await engine.close();
  });

  it('count, peek, clear and list by prefix across a window boundary', async () => {
    expect(await sequence(engine)).toMatchObject(expected);
  });

  it('the bridge: one handle per connection, on the same database as the synchronous code', async () => {
    const db = openDatabase(join(dir, 'bridged.db'));
    const database = databaseOf(db);
    expect(databaseOf(db)).toBe(database);
    expect(databaseOf(engine.connection)).toBe(engine);
    await database.transaction((tx) => hitLimit(tx, limit, 'bridged', T0));
    // What the handle committed, the connection reads at once; what the connection writes, the handle's reads see.
    expect(db.$client.prepare('SELECT count FROM rate_limits WHERE key = ?').get('bridged')).toEqual({ count: 1 });
    db.$client.prepare('UPDATE rate_limits SET count = 7 WHERE key = ?').run('bridged');
    expect((await database.read((r) => peekLimit(r, limit, 'bridged', T0))).count).toBe(7);
    await database.close();
    expect(db.$client.open).toBe(false);
    expect(existsSync(join(dir, 'bridged.db-wal'))).toBe(false);
  });

  it('the bridge: closing the connection as synchronous code does closes the read-only one too', async () => {
    const db = openDatabase(join(dir, 'closed.db'));
    const database = databaseOf(db);
    await database.transaction((tx) => hitLimit(tx, limit, 'k', T0));
    expect((await database.read((r) => peekLimit(r, limit, 'k', T0))).count).toBe(1);
    db.$client.close();
    // the writer was the last connection: the WAL is folded in and gone
    expect(existsSync(join(dir, 'closed.db-wal'))).toBe(false);
    await expect(database.read((r) => peekLimit(r, limit, 'k', T0))).rejects.toThrow(/closed/);
  });

  it('the bridge in memory: reads share the one connection', async () => {
    const db = openDatabase(':memory:');
    const database = databaseOf(db);
    await database.transaction((tx) => hitLimit(tx, limit, 'k', T0));
    expect((await database.read((r) => peekLimit(r, limit, 'k', T0))).count).toBe(1);
    // …and the connection is writable again once the read is over.
    db.$client.prepare('DELETE FROM rate_limits').run();
    expect((await database.read((r) => peekLimit(r, limit, 'k', T0))).count).toBe(0);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('rate-limit counters on PostgreSQL', () => {
  let engines: BothEngines;
  let engine: PostgresEngine;
  let sqlite: SqliteEngine;
  beforeAll(async () => {
    engines = await bothEngines();
    ({ postgres: engine, sqlite } = engines);
  });
  afterAll(async () => {
    await engines?.close();
  });

  it('give exactly the states SQLite gives, as the application role under row-level security', async () => {
    const onPostgres = await sequence(engine);
    expect(onPostgres).toMatchObject(expected);
    expect(onPostgres).toEqual(await sequence(sqlite));
  });

  it('lose no hit when two transactions count the same key at once', async () => {
    const key = 'contended';
    const worker = async () => {
      for (let i = 0; i < 50; i++) await engine.transaction((tx) => hitLimit(tx, limit, key, at(i)));
    };
    await Promise.all([worker(), worker()]);
    expect(await engine.read((r) => peekLimit(r, limit, key, at(100)))).toMatchObject({ count: 100, limited: true });
  });

  it('hold each hit in its transaction: a second one waits for the first to commit', async () => {
    const key = 'held';
    const { promise: counted, resolve: hasCounted } = Promise.withResolvers<void>();
    const { promise: release, resolve: letGo } = Promise.withResolvers<void>();
    const first = engine.transaction(async (tx) => {
      const state = await hitLimit(tx, limit, key, T0);
      hasCounted();
      await release;
      return state.count;
    });
    await counted;
    const second = engine.transaction(async (tx) => (await hitLimit(tx, limit, key, T0)).count);
    // the second blocks on the first's row lock, then counts on top of it
    const early = await Promise.race([second.then(() => 'finished'), new Promise((r) => setTimeout(() => r('waiting'), 200))]);
    expect(early).toBe('waiting');
    letGo();
    expect([await first, await second]).toEqual([1, 2]);
  });

  it('a transaction of another trust center sees none of these counters and cannot count into them', async () => {
    await engine.transaction((tx) => hitLimit(tx, limit, pair('tc1@x', '203.0.113.9'), T0));
    const other = { trustCenter: 2 };
    expect(await engine.read((r) => peekLimit(r, limit, pair('tc1@x', '203.0.113.9'), T0), other)).toMatchObject({ count: 0 });
    expect(await engine.read((r) => openLimits(r, limit, '["', T0), other)).toEqual([]);
    expect(await engine.transaction((tx) => clearLimits(tx, limit, '["'), other)).toBe(0);
    expect(await engine.transaction((tx) => removeCountersBefore(tx, at(MINUTE)), other)).toBe(0);
    // The key is (bucket, key), not yet per trust center: counting the same key is refused, never merged.
    await expect(engine.transaction((tx) => hitLimit(tx, limit, pair('tc1@x', '203.0.113.9'), T0), other)).rejects.toThrow();
    expect(await engine.read((r) => peekLimit(r, limit, pair('tc1@x', '203.0.113.9'), T0))).toMatchObject({ count: 1 });
  });
});
