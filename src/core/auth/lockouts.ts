/**
 * How guesses at the console's sign-in and second factor are counted and
 * limited, and who is locked out. Three counters per attempt
 * (src/core/auth/rate-limit.ts `authLimits`): the account from one source
 * (small), the source across accounts, and the account across every source
 * (a ceiling ten times higher). A stranger who knows a staff address and
 * fails on purpose from one source locks only that source out of that
 * account; closing the account to every source takes many, and owners see
 * it (lockoutOf) and may clear it.
 *
 * Even then the member's recognised devices (devices.ts: a signed cookie
 * from an earlier complete sign-in) are spared the ceiling, so a stranger
 * cannot shut them out of the console from the browsers they use; the
 * per-source counters apply to those devices as to anyone, and each device
 * has a small count of its own, past which it is treated as any other.
 *
 * A source is an IPv4 address, or the /48 network of an IPv6 address: a
 * /48 is an ordinary allocation (65,536 /64s), so counting by anything
 * smaller would let one site pose as thousands of sources.
 *
 * The functions take the caller's transaction (or read), so a flow checks and counts as one unit
 * (console-auth.ts opens them); `lockoutsOf` reads on its own, for the staff page.
 */
import { isIP } from 'node:net';
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
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

/**
 * The source address an attempt is counted under. An IPv6 address that carries an IPv4 one, in any
 * spelling, counts as that IPv4 address: IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`,
 * deprecated) and NAT64 (`64:ff9b::/96`, IPv4 clients of an IPv6-only server); otherwise a whole
 * prefix of such clients would share one /48 and one client could lock out the rest. Loopback and
 * the unspecified address are themselves.
 */
export function sourceOf(ip: string | null): string {
  if (!ip) return 'unknown';
  const address = ip.replace(/%.*$/, '');
  if (isIP(address) !== 6) return address;
  const groups = ipv6Groups(address).map((g) => Number.parseInt(g, 16));
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0] = groups;
  const v4 = () => `${g >> 8}.${g & 255}.${h >> 8}.${h & 255}`;
  const zeroUpTo = (n: number) => groups.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(5) && f === 0xffff) return v4();
  if (zeroUpTo(6) && (g !== 0 || h > 1)) return v4();
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return v4();
  if (zeroUpTo(7)) return h === 1 ? '::1' : '::';
  return `${groups
    .slice(0, 3)
    .map((x) => x.toString(16))
    .join(':')}::/48`;
}

/** Keys of the per-account-and-source counters: JSON, so no account text can pose as another's prefix. */
const pairKey = (account: string, source: string) => JSON.stringify([account, source]);
const pairPrefix = (account: string) => `${JSON.stringify([account]).slice(0, -1)},`;
const mfaAccount = (staffId: number) => `staff:${staffId}`;

const refusal = (reason: string, state: LimitState): Refusal => ({ reason, retryAfterMs: state.retryAfterMs });

/**
 * Counts a sign-in attempt before the password is checked (the check awaits: attempts made in
 * parallel must each see the others), and answers a refusal when a limit is reached. An attempt
 * refused by the narrower counters never reaches the account's ceiling: one source failing on
 * purpose cannot close the account to every other. `device` is the id of the member's recognised
 * device the attempt presented (devices.ts), or null: such an attempt is spared the ceiling while
 * the device's own count is not reached (a stolen cookie is worth a few guesses, no more).
 */
export async function countSignInAttempt(
  tx: Tx,
  account: string,
  ip: string | null,
  now: Date,
  device: string | null = null,
): Promise<Refusal | null> {
  const source = sourceOf(ip);
  const spared = device !== null && !(await hitLimit(tx, authLimits.signInPerDevice, pairKey(account, device), now)).limited;
  if (!spared) {
    const ceiling = await peekLimit(tx, authLimits.signInPerAccount, account, now);
    if (ceiling.limited) return refusal('account', ceiling);
  }
  const pair = await hitLimit(tx, authLimits.signInPerAccountAndIp, pairKey(account, source), now);
  if (pair.limited) return refusal('account and ip', pair);
  const perIp = await hitLimit(tx, authLimits.signInPerIp, source, now);
  if (perIp.limited) return refusal('ip', perIp);
  const perAccount = await hitLimit(tx, authLimits.signInPerAccount, account, now);
  if (perAccount.limited && !spared) return refusal('account', perAccount);
  return null;
}

/** After the right password: that source's and that device's failures are forgiven. The ceiling is not, or the person's success would reset a guesser's count. */
export async function signInSucceeded(tx: Tx, account: string, ip: string | null, device: string | null = null): Promise<void> {
  await clearLimit(tx, authLimits.signInPerAccountAndIp, pairKey(account, sourceOf(ip)));
  if (device !== null) await clearLimit(tx, authLimits.signInPerDevice, pairKey(account, device));
}

/**
 * Whether a second-factor code may be tried now. Failures are counted after the check: run both in
 * one transaction (console-auth.ts `verifySecondFactor`), so attempts made in parallel each see the
 * others' failures. A recognised device (`device`, as for sign-in) is spared the account's ceiling
 * while its own count is not reached.
 */
export async function secondFactorRefusal(
  r: Reader | Tx,
  staffId: number,
  ip: string | null,
  now: Date,
  device: string | null = null,
): Promise<Refusal | null> {
  const source = sourceOf(ip);
  const account = mfaAccount(staffId);
  const spared = device !== null && !(await peekLimit(r, authLimits.mfaPerDevice, pairKey(account, device), now)).limited;
  const checks: [string, Limit, string][] = [
    ['second factor', authLimits.mfaPerAccountAndIp, pairKey(account, source)],
    ['second factor from ip', authLimits.mfaPerIp, source],
    ...(spared ? [] : [['second factor for account', authLimits.mfaPerAccount, account] as [string, Limit, string]]),
  ];
  for (const [reason, limit, key] of checks) {
    const state = await peekLimit(r, limit, key, now);
    if (state.limited) return refusal(reason, state);
  }
  return null;
}

export async function countSecondFactorFailure(
  tx: Tx,
  staffId: number,
  ip: string | null,
  now: Date,
  device: string | null = null,
): Promise<void> {
  const source = sourceOf(ip);
  const account = mfaAccount(staffId);
  await hitLimit(tx, authLimits.mfaPerAccountAndIp, pairKey(account, source), now);
  await hitLimit(tx, authLimits.mfaPerIp, source, now);
  await hitLimit(tx, authLimits.mfaPerAccount, account, now);
  if (device !== null) await hitLimit(tx, authLimits.mfaPerDevice, pairKey(account, device), now);
}

export async function secondFactorSucceeded(tx: Tx, staffId: number, ip: string | null, device: string | null = null): Promise<void> {
  await clearLimit(tx, authLimits.mfaPerAccountAndIp, pairKey(mfaAccount(staffId), sourceOf(ip)));
  if (device !== null) await clearLimit(tx, authLimits.mfaPerDevice, pairKey(mfaAccount(staffId), device));
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

async function sideOf(r: Reader | Tx, pairLimit: Limit, ceilingLimit: Limit, account: string, now: Date): Promise<LimitedSide> {
  const limited = (await openLimits(r, pairLimit, pairPrefix(account), now)).filter((s) => s.limited);
  const ceiling = await peekLimit(r, ceilingLimit, account, now);
  const at = (ms: number) => new Date(now.getTime() + ms);
  return {
    addresses: limited.length,
    until: limited.length > 0 ? at(Math.max(...limited.map((s) => s.retryAfterMs))) : null,
    ceilingUntil: ceiling.limited ? at(ceiling.retryAfterMs) : null,
  };
}

/** Who cannot sign in, from how many addresses and until when; null when nothing is limited. */
export async function lockoutOf(r: Reader | Tx, member: { id: number; email: string }, now: Date): Promise<Lockout | null> {
  const lockout = {
    signIn: await sideOf(r, authLimits.signInPerAccountAndIp, authLimits.signInPerAccount, member.email, now),
    secondFactor: await sideOf(r, authLimits.mfaPerAccountAndIp, authLimits.mfaPerAccount, mfaAccount(member.id), now),
  };
  const locked = (side: LimitedSide) => side.addresses > 0 || side.ceilingUntil !== null;
  return locked(lockout.signIn) || locked(lockout.secondFactor) ? lockout : null;
}

/** The lock-outs of several members, by id, read in one snapshot; members not locked out are absent. */
export function lockoutsOf(
  database: Database,
  members: readonly { id: number; email: string }[],
  now: Date,
): Promise<Map<number, Lockout>> {
  return database.read(async (r) => {
    const found = new Map<number, Lockout>();
    for (const member of members) {
      const lockout = await lockoutOf(r, member, now);
      if (lockout) found.set(member.id, lockout);
    }
    return found;
  });
}

/** Forgets every count against the member's account and devices (not the counts of addresses across accounts). */
export async function clearLockoutCounts(tx: Tx, member: { id: number; email: string }): Promise<void> {
  await clearLimits(tx, authLimits.signInPerAccountAndIp, pairPrefix(member.email));
  await clearLimits(tx, authLimits.signInPerDevice, pairPrefix(member.email));
  await clearLimit(tx, authLimits.signInPerAccount, member.email);
  await clearLimits(tx, authLimits.mfaPerAccountAndIp, pairPrefix(mfaAccount(member.id)));
  await clearLimits(tx, authLimits.mfaPerDevice, pairPrefix(mfaAccount(member.id)));
  await clearLimit(tx, authLimits.mfaPerAccount, mfaAccount(member.id));
}
