/**
 * Refusals (locked sign-ins, wrong codes, refused links) recorded without
 * letting a flood fill the audit log.
 *
 * The first refusal of its kind opens a window (15 minutes): it is appended
 * to the chain as usual. Identical refusals within the window (same action,
 * actor, client address, target and summary; the user agent does not
 * count) only increment a counter in `audit_repeats`, outside the chain.
 * When the window has closed, one entry with the same action, actor,
 * address and target and `summary.repeated = { times, from, to, after }`
 * ("repeated N more times between T1 and T2 after entry #id") is appended
 * and the counter removed, in one transaction. Windows are closed by the
 * next refusal after them (any refusal closes every window that is due),
 * by housekeeping, and at shutdown; the counters are rows in the database,
 * so a crash loses none, it only delays the entry.
 *
 * An open window's count is not sealed by the chain until it is closed:
 * someone who can write the database file could lower it. What is sealed
 * is that the refusal happened (the first entry) and, once closed, how many
 * times.
 */
import { createHash } from 'node:crypto';
import { asc, desc, eq, gt, lte, sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { auditRepeats } from '../../../db/schema.ts';
import type { AuditAction } from './actions.ts';
import { type AuditKeyring, boundAuditKeys } from './key.ts';
import { type AuditEntry, type AuditInput, type AuditTx, appendAudit, auditFields, canonicalJson } from './log.ts';

export const REPEAT_WINDOW_MS = 15 * 60_000;

export type RepeatWindow = typeof auditRepeats.$inferSelect;

export interface RefusalRecord {
  /** the entry appended, or null when the refusal was counted in an open window */
  entry: AuditEntry | null;
  /** repeats counted in the window so far (0 for the refusal that opened it) */
  repeats: number;
}

/** Records a refusal: appended when it opens a window, counted when an identical one is open. */
export function recordRefusal(db: Db, input: AuditInput, now: Date, windowMs = REPEAT_WINDOW_MS): RefusalRecord {
  const keyring = boundAuditKeys(db);
  const keys = () => keyring;
  const fields = auditFields(input, now);
  const fingerprint = createHash('sha256')
    .update(
      canonicalJson({
        action: fields.action,
        actorType: fields.actorType,
        actorId: fields.actorId,
        ip: fields.ip,
        target: fields.target,
        summary: fields.summary,
      }),
    )
    .digest('hex');
  return db.transaction(
    (tx) => {
      closeDue(tx, keys, now, false);
      const counted = tx
        .update(auditRepeats)
        .set({
          repeats: sql`${auditRepeats.repeats} + 1`,
          firstRepeatAt: sql`COALESCE(${auditRepeats.firstRepeatAt}, ${now.getTime()})`,
          lastRepeatAt: now,
        })
        .where(eq(auditRepeats.fingerprint, fingerprint))
        .returning({ repeats: auditRepeats.repeats })
        .get();
      if (counted) return { entry: null, repeats: counted.repeats };
      const entry = appendAudit(tx, keyring, input, now);
      tx.insert(auditRepeats)
        .values({
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
        })
        .run();
      return { entry, repeats: 0 };
    },
    { behavior: 'immediate' },
  );
}

/**
 * Closes the windows that are due (every window with `all`, at shutdown),
 * appending the count of each that saw repeats. Returns the entries written.
 */
export function closeRepeatWindows(db: Db, now: Date, options: { all?: boolean } = {}): AuditEntry[] {
  // The key is looked up only when there is something to write.
  return db.transaction((tx) => closeDue(tx, () => boundAuditKeys(db), now, options.all ?? false), { behavior: 'immediate' });
}

/** Windows still open with repeats not yet in the chain, the busiest first: for the console. */
export function openRepeatWindows(db: Db, limit = 50): RepeatWindow[] {
  return db
    .select()
    .from(auditRepeats)
    .where(gt(auditRepeats.repeats, 0))
    .orderBy(desc(auditRepeats.repeats), asc(auditRepeats.id))
    .limit(limit)
    .all();
}

/** "repeated N more times between T1 and T2 (after #id)" for an entry that closed a window, else null. */
export function describeRepeats(summary: Record<string, unknown>): string | null {
  const r = summary.repeated;
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return null;
  const { times, from, to, after } = r as Record<string, unknown>;
  if (typeof times !== 'number' || typeof from !== 'string' || typeof to !== 'string') return null;
  const time = (iso: string) => `${iso.replace('T', ' ').slice(0, 19)} UTC`;
  return `repeated ${times} more ${times === 1 ? 'time' : 'times'} between ${time(from)} and ${time(to)}${typeof after === 'number' ? ` (after #${after})` : ''}`;
}

/**
 * How many times an action was recorded since `since`, each "repeated N
 * more times" entry counting N and open windows their repeats so far.
 */
export function timesRecorded(db: Db, action: AuditAction, since: Date): number {
  const sqlite = db.$client;
  // json_extract: the count sits inside the summary's JSON text; the query builder has no word for it.
  const logged = sqlite
    .prepare(
      `SELECT COALESCE(SUM(COALESCE(json_extract(summary, '$.repeated.times'), 1)), 0) AS n FROM audit_log WHERE action = ? AND at >= ?`,
    )
    .get(action, since.getTime()) as { n: number };
  const open = sqlite.prepare('SELECT COALESCE(SUM(repeats), 0) AS n FROM audit_repeats WHERE action = ?').get(action) as { n: number };
  return logged.n + open.n;
}

/** Closes the windows due at `now` (or all of them), oldest first. */
function closeDue(tx: AuditTx, keys: () => AuditKeyring, now: Date, all: boolean): AuditEntry[] {
  const due = tx
    .select()
    .from(auditRepeats)
    .where(all ? undefined : lte(auditRepeats.closesAt, now))
    .orderBy(asc(auditRepeats.id))
    .all();
  const written: AuditEntry[] = [];
  for (const window of due) {
    if (window.repeats > 0 && window.firstRepeatAt && window.lastRepeatAt) {
      written.push(
        appendAudit(
          tx,
          keys(),
          {
            actor:
              window.actorType === 'staff' && window.actorId !== null
                ? { type: 'staff', id: window.actorId, label: window.actorLabel ?? `staff #${window.actorId}` }
                : { type: window.actorType === 'system' ? 'system' : 'anonymous' },
            ip: window.ip,
            action: window.action as AuditAction,
            target: window.target,
            summary: {
              ...window.summary,
              repeated: {
                times: window.repeats,
                from: window.firstRepeatAt.toISOString(),
                to: window.lastRepeatAt.toISOString(),
                after: window.firstEntryId,
              },
            },
          },
          // Never before the last repeat it counts, whatever the caller's clock says.
          new Date(Math.max(now.getTime(), window.lastRepeatAt.getTime())),
        ),
      );
    }
    tx.delete(auditRepeats).where(eq(auditRepeats.id, window.id)).run();
  }
  return written;
}
