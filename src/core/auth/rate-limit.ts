/**
 * Fixed-window counters kept in the database, so limits hold across restarts and across processes
 * (and, on PostgreSQL, nodes) sharing it. The counters are src/stores/rate-limits.ts's; this module
 * says what they mean. Its functions take the caller's transaction (`Tx`) or read (`Reader`), so a
 * flow counts and checks several limits as one unit; `hitLimitNow`/`peekLimitNow` open their own.
 */
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import { counterOf, countersWithPrefix, countHit, removeCounter, removeCountersWithPrefix } from '../../stores/rate-limits.ts';

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
  /** refused single sign-on callbacks from one source (sso.ts): each may have cost a request to the provider */
  ssoFailuresPerIp: { bucket: 'sso:ip', max: 30, windowMs: WINDOW },
} as const satisfies Record<string, Limit>;

function stateOf(row: { windowStart: Date; count: number } | undefined, limit: Limit, now: Date): LimitState {
  if (!row || now.getTime() - row.windowStart.getTime() >= limit.windowMs) return { count: 0, limited: false, retryAfterMs: 0 };
  const retryAfterMs = row.windowStart.getTime() + limit.windowMs - now.getTime();
  return { count: row.count, limited: row.count >= limit.max, retryAfterMs };
}

/** The state of `key`'s counter now, without counting. */
export async function peekLimit(r: Reader | Tx, limit: Limit, key: string, now: Date): Promise<LimitState> {
  return stateOf(await counterOf(r, limit.bucket, key), limit, now);
}

/** Counts one attempt and returns the state after it. */
export async function hitLimit(tx: Tx, limit: Limit, key: string, now: Date): Promise<LimitState> {
  const state = stateOf(await countHit(tx, limit.bucket, key, now, limit.windowMs), limit, now);
  return { ...state, limited: state.count > limit.max };
}

export async function clearLimit(tx: Tx, limit: Limit, key: string): Promise<void> {
  await removeCounter(tx, limit.bucket, key);
}

/** The counters of a bucket whose key starts with `prefix` and whose window is still open. */
export async function openLimits(r: Reader | Tx, limit: Limit, prefix: string, now: Date): Promise<(LimitState & { key: string })[]> {
  return (await countersWithPrefix(r, limit.bucket, prefix))
    .map((row) => ({ key: row.key, ...stateOf(row, limit, now) }))
    .filter((state) => state.count > 0);
}

/** Removes the counters of a bucket whose key starts with `prefix`; how many there were. */
export function clearLimits(tx: Tx, limit: Limit, prefix: string): Promise<number> {
  return removeCountersWithPrefix(tx, limit.bucket, prefix);
}

/** Counts one attempt in a transaction of its own: for a flow that has nothing else to do in it. */
export function hitLimitNow(database: Database, limit: Limit, key: string, now: Date): Promise<LimitState> {
  return database.transaction((tx) => hitLimit(tx, limit, key, now));
}

/** The state of one counter, read on its own. */
export function peekLimitNow(database: Database, limit: Limit, key: string, now: Date): Promise<LimitState> {
  return database.read((r) => peekLimit(r, limit, key, now));
}
