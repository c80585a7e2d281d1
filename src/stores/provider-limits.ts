/**
 * The providers' token buckets and Retry-After pauses (`provider_limits`), shared by every dispatcher
 * of the cluster (src/core/notify/limiter.ts says what they mean). The convention is
 * src/stores/rate-limits.ts's.
 *
 * Each operation that changes a bucket is one statement, an upsert whose update reads the row as it
 * was: SQLite serialises them, PostgreSQL's `INSERT … ON CONFLICT DO UPDATE` locks the row, so two
 * dispatchers taking tokens from one bucket at once never both get the same ones, and of two pauses the
 * later one stands. The arithmetic differs only in words: SQLite's scalar `max`/`min` and milliseconds
 * in integer columns, PostgreSQL's `greatest`/`least` (which skip nulls) and timestamps; the values go
 * through the columns' mapping (`excluded.*` is the row the insert proposed), the numbers the code
 * computed are bound with a type on PostgreSQL (an untyped parameter there is left to its guess).
 */
import { and, eq, type SQL, sql } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, SqliteDb, SqliteReadDb, Tx } from '../../db/engine/types.ts';
import { providerLimits } from '../../db/schema/notify.ts';

export interface BucketLimits {
  ratePerSecond: number;
  burst: number;
}

export interface Taken {
  /** whole tokens handed out */
  granted: number;
  /** tokens left in the bucket (to tell how long until the next one) */
  tokens: number;
  /** the key's pause (nothing is granted while it lasts); null when there is none */
  pausedUntil: Date | null;
}

const proposed = (column: { name: string }) => sql`excluded.${sql.identifier(column.name)}`;

/**
 * Takes up to `want` whole tokens from the bucket `key` at `now`, creating it full. Nothing is granted
 * while the key is paused; the bucket refills by elapsed time × rate from the later of its last take and
 * the pause's end.
 */
export async function takeTokens(tx: Tx, key: string, want: number, limits: BucketLimits, now: Date): Promise<Taken> {
  if (tx.engine === 'sqlite') {
    // kept per connection (SqliteTx.kept): building this upsert cost ten times what running it does
    const first = Math.min(want, Math.floor(limits.burst));
    const row = tx.kept(takeOnSqlite).get({
      key,
      now,
      trustCenter: tx.trustCenter,
      want,
      first,
      left: limits.burst - first,
      burst: limits.burst,
      ratePerMs: limits.ratePerSecond / 1000,
    });
    if (!row) throw new Error(`provider limit ${key} belongs to another trust center`);
    return row;
  }
  const q = query(tx);
  const t = q.t.providerLimits;
  const pg = q.engine === 'postgres';
  const num = (n: number): SQL => (pg ? sql`${n}::double precision` : sql`${n}`);
  const nowValue = proposed(t.updatedAt);
  const refilled = pg
    ? sql`least(${num(limits.burst)}, ${t.tokens} + greatest(0, extract(epoch from (${nowValue} - greatest(${t.updatedAt}, ${t.pausedUntil}))) * 1000) * ${num(limits.ratePerSecond / 1000)})`
    : sql`min(${limits.burst}, ${t.tokens} + max(0, ${nowValue} - max(${t.updatedAt}, coalesce(${t.pausedUntil}, 0))) * ${limits.ratePerSecond / 1000})`;
  const grant = pg
    ? sql`CASE WHEN ${t.pausedUntil} > ${nowValue} THEN 0 ELSE least(${num(want)}, floor(${refilled})) END`
    : sql`CASE WHEN coalesce(${t.pausedUntil}, 0) > ${nowValue} THEN 0 ELSE min(${want}, floor(${refilled})) END`;
  const first = Math.min(want, Math.floor(limits.burst));
  const rows = await q.db
    .insert(t)
    .values({ key, tokens: limits.burst - first, granted: first, updatedAt: now, pausedUntil: null, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({
      target: t.key,
      // every expression reads the row as it was before this statement
      set: {
        granted: grant,
        tokens: sql`${refilled} - ${grant}`,
        updatedAt: pg ? sql`greatest(${t.updatedAt}, ${nowValue})` : sql`max(${t.updatedAt}, ${nowValue})`,
      },
      // the key is not per trust center yet (as rate_limits'): never take from another trust center's row
      setWhere: eq(t.trustCenterId, q.trustCenter),
    })
    .returning({ granted: t.granted, tokens: t.tokens, pausedUntil: t.pausedUntil });
  const row = rows[0];
  if (!row) throw new Error(`provider limit ${key} belongs to another trust center`);
  return row;
}

/**
 * takeTokens's upsert on SQLite, prepared with placeholders: `key`, `now`, `trustCenter`, `want`, and
 * for the bucket `burst`, `ratePerMs`, and what a new (full) bucket grants at once (`first`) and
 * keeps (`left`).
 */
function takeOnSqlite(db: SqliteDb) {
  const t = providerLimits;
  const value = (name: string) => sql`${sql.placeholder(name)}`;
  const nowValue = proposed(t.updatedAt);
  const refilled = sql`min(${value('burst')}, ${t.tokens} + max(0, ${nowValue} - max(${t.updatedAt}, coalesce(${t.pausedUntil}, 0))) * ${value('ratePerMs')})`;
  const grant = sql`CASE WHEN coalesce(${t.pausedUntil}, 0) > ${nowValue} THEN 0 ELSE min(${value('want')}, floor(${refilled})) END`;
  return db
    .insert(t)
    .values({
      key: sql.placeholder('key'),
      tokens: sql.placeholder('left'),
      granted: sql.placeholder('first'),
      updatedAt: sql.placeholder('now'),
      pausedUntil: null,
      trustCenterId: sql.placeholder('trustCenter'),
    })
    .onConflictDoUpdate({
      target: t.key,
      set: { granted: grant, tokens: sql`${refilled} - ${grant}`, updatedAt: sql`max(${t.updatedAt}, ${nowValue})` },
      setWhere: eq(t.trustCenterId, sql.placeholder('trustCenter')),
    })
    .returning({ granted: t.granted, tokens: t.tokens, pausedUntil: t.pausedUntil })
    .prepare();
}

/** pausedUntil's read on SQLite, prepared with placeholders `key` and `trustCenter`. */
function pauseReadOnSqlite(db: SqliteReadDb) {
  const t = providerLimits;
  return db
    .select({ pausedUntil: t.pausedUntil })
    .from(t)
    .where(and(eq(t.trustCenterId, sql.placeholder('trustCenter')), eq(t.key, sql.placeholder('key'))))
    .limit(1)
    .prepare();
}

/** The key's pause, if any (it may have ended already: the caller compares). */
export async function pausedUntil(r: Reader | Tx, key: string): Promise<Date | null> {
  if (r.engine === 'sqlite') {
    // read before most sends: kept per connection, as takeTokens
    return r.kept(pauseReadOnSqlite).get({ key, trustCenter: r.trustCenter })?.pausedUntil ?? null;
  }
  const q = reading(r);
  const t = q.t.providerLimits;
  const rows = await q.db
    .select({ pausedUntil: t.pausedUntil })
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.key, key)))
    .limit(1);
  return rows[0]?.pausedUntil ?? null;
}

/**
 * Pauses the key until `until` (a later pause already recorded stands) and empties its bucket but for the
 * one request the provider's Retry-After allows when it ends; returns the pause that stands.
 */
export async function pauseKey(tx: Tx, key: string, until: Date, now: Date): Promise<Date> {
  const q = query(tx);
  const t = q.t.providerLimits;
  const pg = q.engine === 'postgres';
  const rows = await q.db
    .insert(t)
    .values({ key, tokens: 1, granted: 0, updatedAt: now, pausedUntil: until, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({
      target: t.key,
      set: {
        tokens: 1,
        pausedUntil: pg
          ? sql`greatest(${t.pausedUntil}, ${proposed(t.pausedUntil)})`
          : sql`max(coalesce(${t.pausedUntil}, 0), ${proposed(t.pausedUntil)})`,
        updatedAt: pg ? sql`greatest(${t.updatedAt}, ${proposed(t.updatedAt)})` : sql`max(${t.updatedAt}, ${proposed(t.updatedAt)})`,
      },
      setWhere: eq(t.trustCenterId, q.trustCenter),
    })
    .returning({ pausedUntil: t.pausedUntil });
  const row = rows[0];
  if (!row) throw new Error(`provider limit ${key} belongs to another trust center`);
  return row.pausedUntil ?? until;
}
