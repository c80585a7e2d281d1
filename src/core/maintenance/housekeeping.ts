/**
 * Periodic clean-up: audit entries past their retention (the purge keeps
 * the chain verifiable), counts of repeated refusals whose window has
 * closed (written into the chain, src/core/audit/repeats.ts), records of sending past theirs (site.yaml
 * `policies.retention`), and expired sessions, links and rate-limit windows
 * that no longer protect anything.
 */
import { lt, or } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import { staffLinks, staffSessions } from '../../../db/schema.ts';
import { removeChallengesExpiredBefore } from '../../stores/challenges.ts';
import { removeCountersBefore } from '../../stores/rate-limits.ts';
import { purgeAudit } from '../audit/log.ts';
import { closeRepeatWindows } from '../audit/repeats.ts';
import { purgeUnconfirmed } from '../subscriptions/subscribers.ts';

export interface HousekeepingResult {
  auditRemoved: number;
  /** "repeated N more times" entries written for refusal windows that closed */
  repeatsRecorded: number;
  sessionsRemoved: number;
  linksRemoved: number;
  rateLimitsRemoved: number;
  unconfirmedRemoved: number;
  deliveryAttemptsRemoved: number;
  loggedMessagesRemoved: number;
}

export interface HousekeepingPolicy {
  auditRetentionDays: number;
  staffSessions: { idleMinutes: number };
  retention: { deliveryAttemptsDays: number; loggedMessagesDays: number };
}

const DAY = 86_400_000;
// Small transactions: the dispatcher writes to the same tables and must not wait behind one long delete.
const PURGE_BATCH = 2000;

/** Async for the rate-limit windows and the subscription challenges, which are on the stores (`databaseOf(db)`); the rest is still synchronous. */
export async function runHousekeeping(db: Db, policy: HousekeepingPolicy, now: Date): Promise<HousekeepingResult> {
  const repeatsRecorded = closeRepeatWindows(db, now).length;
  const purge = purgeAudit(db, policy.auditRetentionDays, now);
  const idleCutoff = new Date(now.getTime() - policy.staffSessions.idleMinutes * 60_000);
  const sessionsRemoved = db
    .delete(staffSessions)
    .where(or(lt(staffSessions.expiresAt, now), lt(staffSessions.lastActiveAt, idleCutoff)))
    .run().changes;
  // Used or expired links are kept a week, so "this link has already been used" stays true for a while.
  const linkCutoff = new Date(now.getTime() - 7 * DAY);
  const linksRemoved = db
    .delete(staffLinks)
    .where(or(lt(staffLinks.expiresAt, linkCutoff), lt(staffLinks.usedAt, linkCutoff)))
    .run().changes;
  const rateLimitsRemoved = await databaseOf(db).transaction((tx) => removeCountersBefore(tx, new Date(now.getTime() - DAY)));
  const unconfirmedRemoved = await purgeUnconfirmed(databaseOf(db), now);
  db.$client.prepare('DELETE FROM slack_oauth_states WHERE expires_at < ?').run(now.getTime() - DAY);
  await databaseOf(db).transaction((tx) => removeChallengesExpiredBefore(tx, new Date(now.getTime() - 7 * DAY)));
  const deliveryAttemptsRemoved = purgeOlder(db, 'delivery_attempts', now.getTime() - policy.retention.deliveryAttemptsDays * DAY);
  const loggedMessagesRemoved = purgeOlder(db, 'logged_messages', now.getTime() - policy.retention.loggedMessagesDays * DAY);
  return {
    auditRemoved: purge?.removed ?? 0,
    repeatsRecorded,
    sessionsRemoved,
    linksRemoved,
    rateLimitsRemoved,
    unconfirmedRemoved,
    deliveryAttemptsRemoved,
    loggedMessagesRemoved,
  };
}

/** Rows whose `at` is before the cutoff, oldest first, in small batches. */
function purgeOlder(db: Db, table: 'delivery_attempts' | 'logged_messages', cutoff: number): number {
  // Ids grow with time, so the oldest rows are found at the start of the rowid order, batch after batch.
  const batch = db.$client.prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE at < ? ORDER BY id LIMIT ?)`);
  let removed = 0;
  for (;;) {
    const { changes } = batch.run(cutoff, PURGE_BATCH);
    removed += changes;
    if (changes < PURGE_BATCH) return removed;
  }
}
