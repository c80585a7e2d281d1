/**
 * Periodic clean-up: audit entries past their retention (the purge keeps
 * the chain verifiable), counts of repeated refusals whose window has
 * closed (written into the chain, src/core/audit/repeats.ts), records of sending past theirs (site.yaml
 * `policies.retention`), and expired sessions and links (staff's and customers'), and rate-limit windows
 * that no longer protect anything, and the staff API's kept `Idempotency-Key` replies past their 24 hours.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { removeChallengesExpiredBefore } from '../../stores/challenges.ts';
import {
  type PrunedRecords,
  removeExpiredSlackStates,
  removeOlderBatch,
  removeOldLinks,
  removeOldReaderLinks,
  removeStaleReaderSessions,
  removeStaleSessions,
  tryStepLock,
} from '../../stores/housekeeping.ts';
import { removeCountersBefore } from '../../stores/rate-limits.ts';
import { READER_SESSION } from '../access/reader-sessions.ts';
import { removeExpiredIdempotencyReplies } from '../api/idempotency.ts';
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
  /** staff API replies kept for retries, past their 24 hours */
  idempotencyRepliesRemoved: number;
}

export interface HousekeepingPolicy {
  auditRetentionDays: number;
  staffSessions: { idleMinutes: number };
  retention: { deliveryAttemptsDays: number; loggedMessagesDays: number };
}

const DAY = 86_400_000;
// Small transactions: the dispatcher writes to the same tables and must not wait behind one long delete.
const PURGE_BATCH = 2000;

/** The steps that take a step lock (src/stores/housekeeping.ts), by number: the lock key's second half. */
const STEP = {
  sessions: 1,
  links: 2,
  rateLimits: 3,
  slackStates: 4,
  challenges: 5,
  deliveryAttempts: 6,
  loggedMessages: 7,
  idempotency: 8,
} as const;

/**
 * Runs step `step` in a transaction of its own under its advisory lock, so that with several nodes one
 * runs each step at a time; a node that finds the step taken skips it (0: the other node removes the rows).
 */
function step(database: Database, number: number, fn: (tx: Tx) => Promise<number>): Promise<number> {
  return database.transaction(async (tx) => ((await tryStepLock(tx, number)) ? fn(tx) : 0));
}

export async function runHousekeeping(database: Database, policy: HousekeepingPolicy, now: Date): Promise<HousekeepingResult> {
  const repeatsRecorded = (await closeRepeatWindows(database, now)).length;
  // No step lock: the purge holds the audit chain's lock, and a second purge right after finds nothing old left.
  const purge = await purgeAudit(database, policy.auditRetentionDays, now);
  const idleCutoff = new Date(now.getTime() - policy.staffSessions.idleMinutes * 60_000);
  // staff sessions, and customers' sessions for gated documents (src/core/access/reader-sessions.ts: their own idle time)
  const readerIdleCutoff = new Date(now.getTime() - READER_SESSION.idleMs);
  const sessionsRemoved = await step(
    database,
    STEP.sessions,
    async (tx) => (await removeStaleSessions(tx, now, idleCutoff)) + (await removeStaleReaderSessions(tx, now, readerIdleCutoff)),
  );
  // Used or expired links are kept a week, so "this link has already been used" stays true for a while.
  const linkCutoff = new Date(now.getTime() - 7 * DAY);
  const linksRemoved = await step(
    database,
    STEP.links,
    async (tx) => (await removeOldLinks(tx, linkCutoff)) + (await removeOldReaderLinks(tx, linkCutoff)),
  );
  const rateLimitsRemoved = await step(database, STEP.rateLimits, (tx) => removeCountersBefore(tx, new Date(now.getTime() - DAY)));
  const unconfirmedRemoved = await purgeUnconfirmed(database, now);
  await step(database, STEP.slackStates, (tx) => removeExpiredSlackStates(tx, new Date(now.getTime() - DAY)));
  await step(database, STEP.challenges, async (tx) => {
    await removeChallengesExpiredBefore(tx, new Date(now.getTime() - 7 * DAY));
    return 0;
  });
  const deliveryAttemptsRemoved = await purgeOlder(
    database,
    'deliveryAttempts',
    new Date(now.getTime() - policy.retention.deliveryAttemptsDays * DAY),
  );
  const loggedMessagesRemoved = await purgeOlder(
    database,
    'loggedMessages',
    new Date(now.getTime() - policy.retention.loggedMessagesDays * DAY),
  );
  const idempotencyRepliesRemoved = await step(database, STEP.idempotency, (tx) => removeExpiredIdempotencyReplies(tx, now));
  return {
    auditRemoved: purge?.removed ?? 0,
    repeatsRecorded,
    sessionsRemoved,
    linksRemoved,
    rateLimitsRemoved,
    unconfirmedRemoved,
    deliveryAttemptsRemoved,
    loggedMessagesRemoved,
    idempotencyRepliesRemoved,
  };
}

/** Records from before the cutoff, oldest first, in small transactions of a batch each. */
async function purgeOlder(database: Database, table: PrunedRecords, cutoff: Date): Promise<number> {
  let removed = 0;
  for (;;) {
    const changes = await step(database, table === 'deliveryAttempts' ? STEP.deliveryAttempts : STEP.loggedMessages, (tx) =>
      removeOlderBatch(tx, table, cutoff, PURGE_BATCH),
    );
    removed += changes;
    if (changes < PURGE_BATCH) return removed;
  }
}
