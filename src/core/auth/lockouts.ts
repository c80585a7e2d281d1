/**
 * How guesses at the console's sign-in and second factor are counted and
 * limited, and who is locked out. Three counters per attempt
 * (src/core/auth/rate-limit.ts `authLimits`): the account from one source
 * address (small), the source across accounts, and the account across
 * every source (a ceiling ten times higher). A stranger who knows a staff
 * address and fails on purpose from one address locks only that address
 * out of that account; locking the person out entirely takes many
 * addresses, and owners see it (lockoutOf) and may clear it.
 *
 * A source is an IPv4 address, or the /64 network of an IPv6 address: one
 * network hands out far more addresses than an attacker needs.
 */
import { isIP } from 'node:net';
import type { Db } from '../../../db/client.ts';
import { authLimits, clearLimit, clearLimits, hitLimit, type Limit, type LimitState, openLimits, peekLimit } from './rate-limit.ts';

export interface Refusal {
  /** recorded in the audit log: which counter refused */
  reason: string;
  retryAfterMs: number;
}

/** The eight groups of an IPv6 address already known to be one, a dotted IPv4 tail counting as two. */
function ipv6Groups(address: string): string[] {
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const first = head ? head.split(':') : [];
  const last = tail ? tail.split(':') : [];
  const gap = tail === undefined ? [] : Array.from({ length: 8 - first.length - last.length }, () => '0');
  return [...first, ...gap, ...last].map((group) => Number.parseInt(group, 16).toString(16));
}

/** The source address an attempt is counted under. */
export function sourceOf(ip: string | null): string {
  if (!ip) return 'unknown';
  const address = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIP(address) !== 6) return address;
  return `${ipv6Groups(address).slice(0, 4).join(':')}::/64`;
}

/** Keys of the per-account-and-source counters: JSON, so no account text can pose as another's prefix. */
const pairKey = (account: string, source: string) => JSON.stringify([account, source]);
const pairPrefix = (account: string) => `${JSON.stringify([account]).slice(0, -1)},`;
const mfaAccount = (staffId: number) => `staff:${staffId}`;

const refusal = (reason: string, state: LimitState): Refusal => ({ reason, retryAfterMs: state.retryAfterMs });

/**
 * Counts a sign-in attempt before the password is checked (the check awaits: attempts made in
 * parallel must each see the others), and answers a refusal when a limit is reached. An attempt
 * refused by the narrower counters never reaches the account's ceiling: one address failing on
 * purpose cannot close the account to every other.
 */
export function countSignInAttempt(db: Db, account: string, ip: string | null, now: Date): Refusal | null {
  const source = sourceOf(ip);
  const ceiling = peekLimit(db, authLimits.signInPerAccount, account, now);
  if (ceiling.limited) return refusal('account', ceiling);
  const pair = hitLimit(db, authLimits.signInPerAccountAndIp, pairKey(account, source), now);
  if (pair.limited) return refusal('account and ip', pair);
  const perIp = hitLimit(db, authLimits.signInPerIp, source, now);
  if (perIp.limited) return refusal('ip', perIp);
  const perAccount = hitLimit(db, authLimits.signInPerAccount, account, now);
  if (perAccount.limited) return refusal('account', perAccount);
  return null;
}

/** After the right password: that source's failures are forgiven. The ceiling is not, or the person's success would reset a guesser's count. */
export function signInSucceeded(db: Db, account: string, ip: string | null): void {
  clearLimit(db, authLimits.signInPerAccountAndIp, pairKey(account, sourceOf(ip)));
}

/** Whether a second-factor code may be tried now (failures are counted after the check, which does not await). */
export function secondFactorRefusal(db: Db, staffId: number, ip: string | null, now: Date): Refusal | null {
  const source = sourceOf(ip);
  const checks: [string, Limit, string][] = [
    ['second factor', authLimits.mfaPerAccountAndIp, pairKey(mfaAccount(staffId), source)],
    ['second factor from ip', authLimits.mfaPerIp, source],
    ['second factor for account', authLimits.mfaPerAccount, mfaAccount(staffId)],
  ];
  for (const [reason, limit, key] of checks) {
    const state = peekLimit(db, limit, key, now);
    if (state.limited) return refusal(reason, state);
  }
  return null;
}

export function countSecondFactorFailure(db: Db, staffId: number, ip: string | null, now: Date): void {
  const source = sourceOf(ip);
  hitLimit(db, authLimits.mfaPerAccountAndIp, pairKey(mfaAccount(staffId), source), now);
  hitLimit(db, authLimits.mfaPerIp, source, now);
  hitLimit(db, authLimits.mfaPerAccount, mfaAccount(staffId), now);
}

export function secondFactorSucceeded(db: Db, staffId: number, ip: string | null): void {
  clearLimit(db, authLimits.mfaPerAccountAndIp, pairKey(mfaAccount(staffId), sourceOf(ip)));
}

/** One side (password or second factor) of a member's lock-out. */
export interface LimitedSide {
  /** source addresses refused for this account */
  addresses: number;
  /** when the last of them may try again */
  until: Date | null;
  /** when the account's ceiling (all sources) opens again, or null when it is not reached */
  ceilingUntil: Date | null;
}

export interface Lockout {
  signIn: LimitedSide;
  secondFactor: LimitedSide;
}

function sideOf(db: Db, pairLimit: Limit, ceilingLimit: Limit, account: string, now: Date): LimitedSide {
  const limited = openLimits(db, pairLimit, pairPrefix(account), now).filter((s) => s.limited);
  const ceiling = peekLimit(db, ceilingLimit, account, now);
  const at = (ms: number) => new Date(now.getTime() + ms);
  return {
    addresses: limited.length,
    until: limited.length > 0 ? at(Math.max(...limited.map((s) => s.retryAfterMs))) : null,
    ceilingUntil: ceiling.limited ? at(ceiling.retryAfterMs) : null,
  };
}

/** Who cannot sign in, from how many addresses and until when; null when nothing is limited. */
export function lockoutOf(db: Db, member: { id: number; email: string }, now: Date): Lockout | null {
  const lockout = {
    signIn: sideOf(db, authLimits.signInPerAccountAndIp, authLimits.signInPerAccount, member.email, now),
    secondFactor: sideOf(db, authLimits.mfaPerAccountAndIp, authLimits.mfaPerAccount, mfaAccount(member.id), now),
  };
  const locked = (side: LimitedSide) => side.addresses > 0 || side.ceilingUntil !== null;
  return locked(lockout.signIn) || locked(lockout.secondFactor) ? lockout : null;
}

/** Forgets every count against the member's account (not the counts of addresses across accounts). */
export function clearLockoutCounts(db: Db, member: { id: number; email: string }): void {
  clearLimits(db, authLimits.signInPerAccountAndIp, pairPrefix(member.email));
  clearLimit(db, authLimits.signInPerAccount, member.email);
  clearLimits(db, authLimits.mfaPerAccountAndIp, pairPrefix(mfaAccount(member.id)));
  clearLimit(db, authLimits.mfaPerAccount, mfaAccount(member.id));
}
