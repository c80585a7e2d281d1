import { and, asc, count, desc, eq, gte, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toInteger } from '../../db/engine/common.ts';
import type { PostgresEngine } from '../../db/engine/postgres.ts';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { SqliteEngine } from '../../db/engine/sqlite.ts';
import type { Database } from '../../db/engine/types.ts';
import { type BothEngines, bothEngines, TEST_POSTGRES_URL, tempSqliteEngine } from '../helpers/postgres.ts';

const T0 = new Date('2026-11-30T09:15:00.123Z');
const later = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

/** What a store does, once for both engines; returns everything it read back. */
async function scenario(database: Database) {
  return database.transaction(async (tx) => {
    const q = query(tx);
    const { incidents, incidentUpdates, rateLimits } = q.t;
    const [declared] = await q.db
      .insert(incidents)
      .values({
        kind: 'outage',
        severity: 'major',
        title: 'API errors',
        status: 'investigating',
        public: true,
        audienceOrganisationIds: [3, 5],
        startedAt: T0,
        createdAt: T0,
      })
      .returning();
    const [hidden] = await q.db
      .insert(incidents)
      .values({
        kind: 'breach',
        severity: 'critical',
        title: 'Not public',
        status: 'identified',
        public: false,
        startedAt: later(5),
        createdAt: later(5),
      })
      .returning({ id: incidents.id });
    if (!declared || !hidden) throw new Error('insert returned nothing');
    await q.db.insert(incidentUpdates).values([
      { incidentId: declared.id, status: 'investigating', body: 'Looking into it', publishedAt: T0 },
      { incidentId: declared.id, status: 'identified', body: 'Found it', publishedAt: later(10) },
    ]);

    const changed = affected(
      await q.db
        .update(incidents)
        .set({ status: 'monitoring', nextUpdateBy: later(60) })
        .where(eq(incidents.id, declared.id)),
    );
    const none = affected(await q.db.update(incidents).set({ status: 'resolved' }).where(eq(incidents.id, -1)));

    const latest = (
      await q.db
        .select()
        .from(incidentUpdates)
        .where(eq(incidentUpdates.incidentId, declared.id))
        .orderBy(desc(incidentUpdates.publishedAt))
        .limit(1)
    )[0];
    const publicSince = await q.db
      .select({ id: incidents.id, title: incidents.title, public: incidents.public, orgs: incidents.audienceOrganisationIds })
      .from(incidents)
      .where(and(eq(incidents.public, true), gte(incidents.startedAt, T0), inArray(incidents.kind, ['outage', 'maintenance'])))
      .orderBy(asc(incidents.id));
    const [counted] = await q.db.select({ n: count() }).from(incidentUpdates);

    // An upsert that counts, as the rate limits do: the increment is SQL, the row comes back typed.
    const hit = async (at: Date) =>
      (
        await q.db
          .insert(rateLimits)
          .values({ bucket: 'sign-in:ip', key: '203.0.113.7', windowStart: at, count: 1 })
          .onConflictDoUpdate({ target: [rateLimits.bucket, rateLimits.key], set: { count: sql`${rateLimits.count} + 1` } })
          .returning()
      )[0];
    const first = await hit(T0);
    const second = await hit(later(1));

    const removed = affected(await q.db.delete(incidents).where(eq(incidents.id, hidden.id)));
    const remaining = await q.db.$count(incidents);
    return {
      declared,
      changed,
      none,
      latest,
      publicSince,
      updates: toInteger(counted?.n ?? 'missing'),
      first,
      second,
      removed,
      remaining,
      trustCenter: q.trustCenter,
    };
  });
}

/** A read snapshot through the read-only builder. */
async function readBack(database: Database) {
  return database.read(async (reader) => {
    const r = reading(reader);
    return r.db.select().from(r.t.incidents).orderBy(asc(r.t.incidents.id));
  });
}

const expected = {
  declared: {
    id: 1,
    kind: 'outage',
    severity: 'major',
    title: 'API errors',
    status: 'investigating',
    public: true,
    audienceOrganisations: null,
    audienceOrganisationIds: [3, 5],
    startedAt: T0,
    resolvedAt: null,
    nextUpdateBy: null,
    windowStartsAt: null,
    windowEndsAt: null,
    createdBy: null,
    createdAt: T0,
    trustCenterId: 1,
  },
  changed: 1,
  none: 0,
  publicSince: [{ id: 1, title: 'API errors', public: true, orgs: [3, 5] }],
  updates: 2,
  first: { bucket: 'sign-in:ip', key: '203.0.113.7', windowStart: T0, count: 1, trustCenterId: 1 },
  second: { bucket: 'sign-in:ip', key: '203.0.113.7', windowStart: T0, count: 2, trustCenterId: 1 },
  removed: 1,
  remaining: 1,
  trustCenter: 1,
};

describe('store queries on SQLite', () => {
  let engine: SqliteEngine;
  beforeAll(() => {
    engine = tempSqliteEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('insert, update, select, upsert, count and delete give typed rows', async () => {
    const result = await scenario(engine);
    expect(result).toMatchObject(expected);
    expect(result.latest).toMatchObject({ status: 'identified', body: 'Found it', publishedAt: later(10) });
    const rows = await readBack(engine);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'monitoring', nextUpdateBy: later(60), public: true });
  });

  it('affected() refuses what is not the result of a change', () => {
    expect(() => affected([])).toThrow(/not the result/);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)('the same store queries on PostgreSQL', () => {
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

  it('answer exactly what SQLite answers, as the application role under row-level security', async () => {
    const [onPostgres, onSqlite] = [await scenario(engine), await scenario(sqlite)];
    expect(onPostgres).toMatchObject(expected);
    expect(onPostgres).toEqual(onSqlite);
    expect(await readBack(engine)).toEqual(await readBack(sqlite));
  });

  it('a transaction for another trust center sees none of these rows', async () => {
    const others = await engine.read(async (reader) => reading(reader).db.$count(reading(reader).t.incidents), { trustCenter: 2 });
    expect(others).toBe(0);
  });
});
