/**
 * Fixed-window counters kept in SQLite, so limits hold across restarts and
 * across processes sharing the database.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { rateLimits } from '../../../db/schema.ts';

export interface Limit {
  bucket: string;
  max: number;
  windowMs: number;
}

export interface LimitState {
  count: number;
  limited: boolean;
  retryAfterMs: number;
}

const WINDOW = 15 * 60_000;

/**
 * The limits of sign-in, second factor and recovery codes (src/core/auth/lockouts.ts applies them):
 * per account from one source address, small; per source across accounts; and per account across
 * every source, a ceiling high enough that locking someone out takes many addresses. A member's
 * recognised device (devices.ts) is spared the ceiling while its own count, small, is not reached.
 */
export const authLimits = {
  signInPerAccountAndIp: { bucket: 'sign-in:account-ip', max: 5, windowMs: WINDOW },
  signInPerIp: { bucket: 'sign-in:ip', max: 30, windowMs: WINDOW },
  signInPerAccount: { bucket: 'sign-in:account', max: 50, windowMs: WINDOW },
  signInPerDevice: { bucket: 'sign-in:device', max: 5, windowMs: WINDOW },
  mfaPerAccountAndIp: { bucket: 'mfa:account-ip', max: 5, windowMs: WINDOW },
  mfaPerIp: { bucket: 'mfa:ip', max: 30, windowMs: WINDOW },
  mfaPerAccount: { bucket: 'mfa:account', max: 20, windowMs: WINDOW },
  mfaPerDevice: { bucket: 'mfa:device', max: 5, windowMs: WINDOW },
  linkPerIp: { bucket: 'link:ip', max: 30, windowMs: WINDOW },
} as const satisfies Record<string, Limit>;

function stateOf(row: { windowStart: Date; count: number } | undefined, limit: Limit, now: Date): LimitState {
  if (!row || now.getTime() - row.windowStart.getTime() >= limit.windowMs) return { count: 0, limited: false, retryAfterMs: 0 };
  const retryAfterMs = row.windowStart.getTime() + limit.windowMs - now.getTime();
  return { count: row.count, limited: row.count >= limit.max, retryAfterMs };
}

export function peekLimit(db: Db, limit: Limit, key: string, now: Date): LimitState {
  const row = db
    .select()
    .from(rateLimits)
    .where(and(eq(rateLimits.bucket, limit.bucket), eq(rateLimits.key, key)))
    .get();
  return stateOf(row, limit, now);
}

/** Counts one attempt and returns the state after it. */
export function hitLimit(db: Db, limit: Limit, key: string, now: Date): LimitState {
  const windowStart = now.getTime() - limit.windowMs;
  const row = db
    .insert(rateLimits)
    .values({ bucket: limit.bucket, key, windowStart: now, count: 1 })
    .onConflictDoUpdate({
      target: [rateLimits.bucket, rateLimits.key],
      set: {
        count: sql`CASE WHEN ${rateLimits.windowStart} <= ${windowStart} THEN 1 ELSE ${rateLimits.count} + 1 END`,
        windowStart: sql`CASE WHEN ${rateLimits.windowStart} <= ${windowStart} THEN ${now.getTime()} ELSE ${rateLimits.windowStart} END`,
      },
    })
    .returning()
    .get();
  const state = stateOf(row, limit, now);
  return { ...state, limited: state.count > limit.max };
}

export function clearLimit(db: Db, limit: Limit, key: string): void {
  db.delete(rateLimits)
    .where(and(eq(rateLimits.bucket, limit.bucket), eq(rateLimits.key, key)))
    .run();
}

/** The counters of a bucket whose key starts with `prefix` and whose window is still open. */
export function openLimits(db: Db, limit: Limit, prefix: string, now: Date): (LimitState & { key: string })[] {
  return db
    .select()
    .from(rateLimits)
    .where(and(eq(rateLimits.bucket, limit.bucket), eq(sql`substr(${rateLimits.key}, 1, ${prefix.length})`, prefix)))
    .all()
    .map((row) => ({ key: row.key, ...stateOf(row, limit, now) }))
    .filter((state) => state.count > 0);
}

/** Removes the counters of a bucket whose key starts with `prefix`; how many there were. */
export function clearLimits(db: Db, limit: Limit, prefix: string): number {
  return db
    .delete(rateLimits)
    .where(and(eq(rateLimits.bucket, limit.bucket), eq(sql`substr(${rateLimits.key}, 1, ${prefix.length})`, prefix)))
    .run().changes;
}
