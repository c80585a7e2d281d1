/**
 * The rate-limit counters (`rate_limits`): one fixed-window counter per bucket and key, on SQLite
 * and PostgreSQL alike. The first capability on the stores (issue 15); the others follow the same
 * convention:
 *
 * - A store is `src/stores/<capability>.ts`, the only module of the capability that knows tables
 *   and SQL. It exports async functions whose first argument is a `Tx` (they write) or a
 *   `Reader | Tx` (they only read), written once with `query(tx)` / `reading(r)` from
 *   db/engine/query.ts under its rules (await every query; no `.get/.all/.run`; `affected()`;
 *   counts through `toInteger`/`$count`). It never opens a transaction: the domain decides what
 *   is one unit and calls `database.transaction()` / `read()`, passing the handle down.
 * - Every query is scoped to `q.trustCenter` (inserts write it, every condition names it): on
 *   PostgreSQL row-level security enforces it too, on SQLite the store is all there is.
 * - It returns typed rows or small typed values, never the engine's result objects; what a row
 *   means (here: whether a window is open, whether a limit is reached) is the domain's
 *   (src/core/auth/rate-limit.ts).
 * - Values go through drizzle's column mapping (`eq`, `lte`, `.values()`): a Date is milliseconds
 *   on SQLite and a timestamptz on PostgreSQL, so a raw `sql` fragment never carries one by hand.
 */
import { and, eq, lt, lte, sql } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';

export interface Counter {
  key: string;
  /** when the counter's window opened */
  windowStart: Date;
  count: number;
}

const counterColumns = (q: ReturnType<typeof reading>) => ({
  key: q.t.rateLimits.key,
  windowStart: q.t.rateLimits.windowStart,
  count: q.t.rateLimits.count,
});

/** The counter of `key` in `bucket`, whatever its window; undefined when there is none. */
export async function counterOf(r: Reader | Tx, bucket: string, key: string): Promise<Counter | undefined> {
  const q = reading(r);
  const { rateLimits } = q.t;
  const rows = await q.db
    .select(counterColumns(q))
    .from(rateLimits)
    .where(and(eq(rateLimits.trustCenterId, q.trustCenter), eq(rateLimits.bucket, bucket), eq(rateLimits.key, key)))
    .limit(1);
  return rows[0];
}

/**
 * Counts one hit in one statement (so concurrent hits are never lost: SQLite serialises them,
 * PostgreSQL's upsert locks the row): a new counter, or one whose window opened at or before
 * `now - windowMs`, starts again at 1 with its window opening `now`; an open one goes up by one.
 */
export async function countHit(tx: Tx, bucket: string, key: string, now: Date, windowMs: number): Promise<Counter> {
  const q = query(tx);
  const { rateLimits } = q.t;
  // `excluded` is the row the insert proposed (window `now`, count 1), on both engines; `lte` maps the
  // cutoff through the column (milliseconds on SQLite, timestamptz on PostgreSQL).
  const expired = lte(rateLimits.windowStart, new Date(now.getTime() - windowMs));
  const proposed = (column: { name: string }) => sql`excluded.${sql.identifier(column.name)}`;
  const rows = await q.db
    .insert(rateLimits)
    .values({ bucket, key, windowStart: now, count: 1, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({
      target: [rateLimits.bucket, rateLimits.key],
      set: {
        count: sql`CASE WHEN ${expired} THEN ${proposed(rateLimits.count)} ELSE ${rateLimits.count} + 1 END`,
        windowStart: sql`CASE WHEN ${expired} THEN ${proposed(rateLimits.windowStart)} ELSE ${rateLimits.windowStart} END`,
      },
      // The key is (bucket, key) on both engines, not yet per trust center (README, PostgreSQL): never
      // count into another trust center's row. PostgreSQL's row-level security refuses it with an error.
      setWhere: eq(rateLimits.trustCenterId, q.trustCenter),
    })
    .returning(counterColumns(q));
  const row = rows[0];
  if (!row) throw new Error(`the rate-limit counter ${bucket} ${JSON.stringify(key)} belongs to another trust center`);
  return row;
}

/** Removes the counter of `key` in `bucket`; how many were removed (0 or 1). */
export async function removeCounter(tx: Tx, bucket: string, key: string): Promise<number> {
  const q = query(tx);
  const { rateLimits } = q.t;
  return affected(
    await q.db
      .delete(rateLimits)
      .where(and(eq(rateLimits.trustCenterId, q.trustCenter), eq(rateLimits.bucket, bucket), eq(rateLimits.key, key))),
  );
}

/**
 * Keys that start with `prefix`, compared exactly: `substr` counts characters and compares
 * case-sensitively on both engines, where `LIKE` is case-insensitive on SQLite and would need its
 * wildcards escaped.
 */
function startsWith(q: ReturnType<typeof reading>, bucket: string, prefix: string) {
  const { rateLimits } = q.t;
  // The length is a number the code computed, written into the text: a bound parameter would reach
  // PostgreSQL untyped, where `substr(text, unknown, unknown)` is left to its guess.
  const length = sql.raw(String(prefix.length));
  return and(
    eq(rateLimits.trustCenterId, q.trustCenter),
    eq(rateLimits.bucket, bucket),
    eq(sql`substr(${rateLimits.key}, 1, ${length})`, prefix),
  );
}

/** Every counter of `bucket` whose key starts with `prefix`, whatever their windows, in key order. */
export async function countersWithPrefix(r: Reader | Tx, bucket: string, prefix: string): Promise<Counter[]> {
  const q = reading(r);
  const rows = await q.db
    .select(counterColumns(q))
    .from(q.t.rateLimits)
    .where(startsWith(q, bucket, prefix));
  // Sorted here, by code point: ORDER BY follows the database's collation, which PostgreSQL's may set otherwise.
  return rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Removes the counters of `bucket` whose key starts with `prefix`; how many there were. */
export async function removeCountersWithPrefix(tx: Tx, bucket: string, prefix: string): Promise<number> {
  const q = query(tx);
  return affected(await q.db.delete(q.t.rateLimits).where(startsWith(q, bucket, prefix)));
}

/** Removes every counter whose window opened before `before` (housekeeping); how many. */
export async function removeCountersBefore(tx: Tx, before: Date): Promise<number> {
  const q = query(tx);
  const { rateLimits } = q.t;
  return affected(
    await q.db.delete(rateLimits).where(and(eq(rateLimits.trustCenterId, q.trustCenter), lt(rateLimits.windowStart, before))),
  );
}
