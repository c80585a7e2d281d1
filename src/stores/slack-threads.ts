/**
 * Slack thread roots (`slack_threads`): per recipient and thread key, the message later ones reply to,
 * and while it is being posted, which Slack channel instance claimed posting it
 * (src/core/notify/channels/slack.ts says what the claims mean). The convention is
 * src/stores/rate-limits.ts's.
 *
 * A thread's row is made once across the cluster: its key is (recipient, thread key), and
 * `claimThread` inserts with `ON CONFLICT DO NOTHING`, so of two dispatchers claiming at once one
 * inserts and the other inserts nothing, without an error (on PostgreSQL it waits for the winner's
 * transaction and then reads its row: READ COMMITTED gives each statement a fresh snapshot). Taking over
 * a claim and recording a root are conditional UPDATEs (`affected()`), so only one of several wins.
 */
import { and, eq, isNull, lt } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';

export interface ThreadRow {
  /** null while the root is being posted */
  channelId: string | null;
  ts: string | null;
  claimedBy: string | null;
  claimExpiresAt: Date | null;
}

function thread(q: ReturnType<typeof reading>, recipientId: number, threadKey: string) {
  const s = q.t.slackThreads;
  return and(eq(s.trustCenterId, q.trustCenter), eq(s.recipientId, recipientId), eq(s.threadKey, threadKey));
}

export async function threadRow(r: Reader | Tx, recipientId: number, threadKey: string): Promise<ThreadRow | undefined> {
  const q = reading(r);
  const s = q.t.slackThreads;
  const rows = await q.db
    .select({ channelId: s.channelId, ts: s.ts, claimedBy: s.claimedBy, claimExpiresAt: s.claimExpiresAt })
    .from(s)
    .where(thread(q, recipientId, threadKey))
    .limit(1);
  return rows[0];
}

/** Makes the thread's row, claimed by `owner` until `expiresAt`; false when it exists already (another's). */
export async function claimThread(tx: Tx, recipientId: number, threadKey: string, owner: string, expiresAt: Date): Promise<boolean> {
  const q = query(tx);
  const s = q.t.slackThreads;
  const made = await q.db
    .insert(s)
    .values({ recipientId, threadKey, claimedBy: owner, claimExpiresAt: expiresAt, trustCenterId: q.trustCenter })
    .onConflictDoNothing({ target: [s.recipientId, s.threadKey] })
    .returning({ recipientId: s.recipientId });
  return made.length === 1;
}

/** Takes over the claim on a root not yet recorded whose claim expired before `now` (its poster crashed). */
export async function takeExpiredClaim(
  tx: Tx,
  recipientId: number,
  threadKey: string,
  owner: string,
  expiresAt: Date,
  now: Date,
): Promise<boolean> {
  const q = query(tx);
  const s = q.t.slackThreads;
  return (
    affected(
      await q.db
        .update(s)
        .set({ claimedBy: owner, claimExpiresAt: expiresAt })
        .where(and(thread(q, recipientId, threadKey), isNull(s.ts), lt(s.claimExpiresAt, now))),
    ) === 1
  );
}

/** The root was posted: later messages go in its thread (a root recorded already stands). */
export async function recordRoot(tx: Tx, recipientId: number, threadKey: string, channelId: string, ts: string): Promise<boolean> {
  const q = query(tx);
  const s = q.t.slackThreads;
  return (
    affected(
      await q.db
        .update(s)
        .set({ channelId, ts, claimedBy: null, claimExpiresAt: null })
        .where(and(thread(q, recipientId, threadKey), isNull(s.ts))),
    ) === 1
  );
}

/** `owner` could not post the root: its claim goes, and the next message of the thread claims it afresh. */
export async function releaseClaim(tx: Tx, recipientId: number, threadKey: string, owner: string): Promise<void> {
  const q = query(tx);
  const s = q.t.slackThreads;
  await q.db.delete(s).where(and(thread(q, recipientId, threadKey), eq(s.claimedBy, owner), isNull(s.ts)));
}
