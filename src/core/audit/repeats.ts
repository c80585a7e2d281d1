import type { Database, Tx } from '../../../db/engine/types.ts';
import type { auditRepeats } from '../../../db/schema.ts';
import {
  closingEntryOf,
  countRepeat,
  deleteWindow,
  dueWindows,
  entryById,
  insertWindow,
  lockChain,
  repeatsCounted,
  timesLogged,
  windowByFingerprint,
  windowsWithRepeats,
} from '../../stores/audit.ts';
import { sourceOf } from '../auth/lockouts.ts';
import { type AuditAction, isRefusalAction, type RefusalAction } from './actions.ts';
import { refusalFingerprint } from './canonical.ts';
import { type AuditKeyring, boundAuditKeys, keyById } from './key.ts';
import { type AuditActor, type AuditEntry, type AuditInput, auditFields, entryMac, writeAudit } from './log.ts';

export const REPEAT_WINDOW_MS = 15 * 60_000;
/** Distinct addresses kept per window; a closing entry says "at least" beyond it. */
export const REPEAT_ADDRESSES_MAX = 64;

/** A refusal to record: only the refusal actions may be counted in a window. */
export type RefusalInput = AuditInput & { action: RefusalAction };

export type RepeatWindow = typeof auditRepeats.$inferSelect;

export interface RefusalRecord {
  /** the entry appended, or null when the refusal was counted in an open window */
  entry: AuditEntry | null;
  /** repeats counted in the window so far (0 for the refusal that opened it) */
  repeats: number;
}

/**
 * Records a refusal: appended when it opens a window, counted when an identical one is open. One
 * transaction under the chain's lock (src/stores/audit.ts): on PostgreSQL concurrent refusals run one
 * after the other, so the second of two identical ones finds the window the first opened and counts
 * in it (never a second window, never a lost count); on SQLite `BEGIN IMMEDIATE` does the same.
 */
export function recordRefusal(database: Database, input: RefusalInput, now: Date, windowMs = REPEAT_WINDOW_MS): Promise<RefusalRecord> {
  return database.transaction((tx) => recordRefusalIn(tx, input, now, windowMs));
}

/** `recordRefusal` in the caller's transaction (written when it commits). */
export async function recordRefusalIn(tx: Tx, input: RefusalInput, now: Date, windowMs = REPEAT_WINDOW_MS): Promise<RefusalRecord> {
  if (!isRefusalAction(input.action)) throw new Error(`not a refusal action: ${String(input.action)}`);
  const fields = auditFields(input, now);
  const fingerprint = refusalFingerprint(fields);
  // The lock first: the window read below stays the window until this transaction ends.
  await lockChain(tx);
  await closeDueIn(tx, now, false);
  const open = await windowByFingerprint(tx, fingerprint);
  if (open) {
    const newAddress =
      fields.ip !== null && !open.addresses.includes(fields.ip) && open.addresses.length < REPEAT_ADDRESSES_MAX ? fields.ip : null;
    // `now` was taken before the lock: a refusal that waited for a later one counts at the window's
    // latest time, so the window's times stay in order (a closing entry refuses a window whose are not).
    const at = new Date(Math.max(now.getTime(), (open.lastRepeatAt ?? open.openedAt).getTime()));
    const repeats = await countRepeat(
      tx,
      open.id,
      { firstRepeatAt: open.firstRepeatAt ?? at, now: at },
      newAddress === null ? null : [...open.addresses, newAddress],
    );
    if (repeats !== undefined) return { entry: null, repeats };
  }
  const entry = await writeAudit(tx, input, now);
  await insertWindow(tx, {
    fingerprint,
    action: fields.action,
    actorType: entry.actorType,
    actorId: entry.actorId,
    actorLabel: entry.actorLabel,
    ip: entry.ip,
    target: entry.target,
    summary: entry.summary,
    firstEntryId: entry.id,
    openedAt: now,
    closesAt: new Date(now.getTime() + windowMs),
    addresses: entry.ip === null ? [] : [entry.ip],
  });
  return { entry, repeats: 0 };
}

/**
 * Closes the windows that are due (every window with `all`, at shutdown),
 * appending the count of each that saw repeats. Returns the entries written.
 */
export function closeRepeatWindows(database: Database, now: Date, options: { all?: boolean } = {}): Promise<AuditEntry[]> {
  return database.transaction(async (tx) => {
    // The chain's lock first (src/stores/audit.ts): on PostgreSQL two nodes closing at once would otherwise
    // both read a window and both append its count; the second now waits, then finds the window gone.
    await lockChain(tx);
    return closeDueIn(tx, now, options.all === true);
  });
}

/** Closes the windows due at `now` (or all of them), oldest first; the caller holds the chain's lock. */
async function closeDueIn(tx: Tx, now: Date, all: boolean): Promise<AuditEntry[]> {
  const written: AuditEntry[] = [];
  for (const window of await dueWindows(tx, all ? null : now)) {
    if (window.repeats !== 0 && window.firstRepeatAt && window.lastRepeatAt) {
      // The key is looked up only when there is something to write.
      const first = await sealedFirstEntryIn(tx, boundAuditKeys(tx), window, now);
      written.push(await writeAudit(tx, closingInput(window, window.firstRepeatAt, window.lastRepeatAt, first), now));
    }
    await deleteWindow(tx, window.id);
  }
  return written;
}

/** Windows still open with repeats not yet in the chain, the busiest first: for the console. */
export function openRepeatWindows(database: Database, limit = 50): Promise<RepeatWindow[]> {
  return database.read((r) => windowsWithRepeats(r, limit));
}

/** "repeated N more times between T1 and T2 (after #id), from K addresses in S" for an entry that closed a window, else null. */
export function describeRepeats(summary: Record<string, unknown>): string | null {
  const r = summary.repeated;
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return null;
  const { times, from, to, after, source, addresses } = r as Record<string, unknown>;
  if (typeof times !== 'number' || typeof from !== 'string' || typeof to !== 'string') return null;
  const time = (iso: string) => `${iso.replace('T', ' ').slice(0, 19)} UTC`;
  const where =
    typeof addresses === 'number' && addresses > 1 && typeof source === 'string'
      ? `, from ${addresses >= REPEAT_ADDRESSES_MAX ? 'at least ' : ''}${addresses} addresses in ${source}`
      : '';
  return `repeated ${times} more ${times === 1 ? 'time' : 'times'} between ${time(from)} and ${time(to)}${typeof after === 'number' ? ` (after #${after})` : ''}${where}`;
}

/**
 * How many times an action was recorded since `since`, each "repeated N
 * more times" entry counting N and open windows their repeats so far.
 */
export function timesRecorded(database: Database, action: AuditAction, since: Date): Promise<number> {
  return database.read(async (r) => (await timesLogged(r, action, since)) + (await repeatsCounted(r, action)));
}

type FirstEntry = { entry: AuditEntry & { action: RefusalAction }; actor: AuditActor };

/** The entry closing a window: its count, repeating the first entry; or, when that cannot be trusted, why not. */
function closingInput(window: RepeatWindow, firstRepeatAt: Date, lastRepeatAt: Date, first: FirstEntry | string): AuditInput {
  const after = Number.isSafeInteger(window.firstEntryId) ? window.firstEntryId : null;
  if (typeof first === 'string') {
    return {
      // Nothing of the row's own text: only what Candor can vouch for.
      actor: { type: 'system' },
      action: 'audit.repeats_discarded',
      target: after === null ? null : `audit:${after}`,
      summary: { after, reason: first },
    };
  }
  return {
    actor: first.actor,
    ip: first.entry.ip,
    action: first.entry.action,
    target: first.entry.target,
    summary: {
      ...first.entry.summary,
      repeated: {
        times: window.repeats as number,
        from: firstRepeatAt.toISOString(),
        to: lastRepeatAt.toISOString(),
        after: first.entry.id,
        source: first.entry.ip === null ? null : sourceOf(first.entry.ip),
        addresses: Math.max(1, window.addresses.length),
      },
    },
  };
}

/** What the first entry as read says about the window (before asking whether it was closed already). */
function judgeFirstEntry(window: RepeatWindow, entry: AuditEntry | undefined, keyring: AuditKeyring): FirstEntry | string {
  if (!entry) return 'its first entry is no longer in the log';
  if (!isRefusalAction(entry.action) || entry.summary.repeated !== undefined)
    return `its first entry (${entry.action}) is not a refusal that may be repeated`;
  const key = entry.keyId === null ? undefined : keyById(keyring, entry.keyId);
  const content = { ...entry, at: entry.at.getTime() };
  if (!key || entryMac(key, entry.prevHash, content) !== entry.hash) return 'its first entry does not hold up under the audit key';
  if (refusalFingerprint(entry) !== window.fingerprint) return 'the window does not match its first entry';
  if (entry.at.getTime() !== window.openedAt.getTime()) return 'the window was not opened by its first entry';
  const actor: AuditActor =
    entry.actorType === 'staff' && entry.actorId !== null
      ? { type: 'staff', id: entry.actorId, label: entry.actorLabel ?? `staff #${entry.actorId}` }
      : { type: entry.actorType === 'system' ? 'system' : 'anonymous' };
  return { entry: { ...entry, action: entry.action }, actor };
}

/** `sealedFirstEntry` in a transaction of either engine. */
async function sealedFirstEntryIn(tx: Tx, keyring: AuditKeyring, window: RepeatWindow, now: Date): Promise<FirstEntry | string> {
  const problem = implausible(window, now);
  if (problem) return `the window row is not one Candor wrote (${problem})`;
  const first = judgeFirstEntry(window, await entryById(tx, window.firstEntryId), keyring);
  if (typeof first === 'string') return first;
  // A window closes once: a second closing entry for one first entry would be a count made up twice.
  const closed = await closingEntryOf(tx, first.entry.id, first.entry.action);
  if (closed !== undefined) return `its first entry's window was closed already (#${closed})`;
  return first;
}

/** What a row Candor wrote always satisfies: whole numbers, and times in order up to now. */
function implausible(window: RepeatWindow, now: Date): string | null {
  const whole = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n);
  if (!whole(window.firstEntryId) || !whole(window.repeats) || window.repeats < 1) return 'ids and counts are not whole numbers';
  const times = [window.openedAt, window.firstRepeatAt, window.lastRepeatAt, window.closesAt];
  if (times.some((t) => !(t instanceof Date) || Number.isNaN(t.getTime()))) return 'a time is not a time';
  const [opened, first, last] = times.map((t) => t?.getTime() ?? 0) as [number, number, number];
  if (!(opened <= first && first <= last && last <= now.getTime() && last < window.closesAt.getTime())) {
    return 'its times are out of order or in the future';
  }
  return null;
}
