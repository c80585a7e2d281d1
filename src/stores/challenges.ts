/**
 * Subscription confirmation challenges (`subscription_challenges`): the keyed hash of an email link's
 * secret or an SMS code, its tries, expiry and use, on SQLite and PostgreSQL alike (issue 15; the
 * convention is src/stores/rate-limits.ts's). What a row means — which secret matches, when a
 * challenge is spent — is the domain's (src/core/subscriptions/challenges.ts), which runs a check
 * and its consumption in one transaction: `challengeForUse` locks the row on PostgreSQL, so a
 * second use of the same challenge waits for the first and then sees it used.
 */
import { and, eq, isNull, lt, sql } from 'drizzle-orm';
import { affected, query } from '../../db/engine/query.ts';
import type { Tx } from '../../db/engine/types.ts';
import { subscriptionChallenges as pgChallenges } from '../../db/schema-pg.ts';

export type ChallengeKind = 'email_link' | 'sms_code';

export interface NewChallenge {
  id: string;
  recipientId: number;
  kind: ChallengeKind;
  secretHash: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface Challenge {
  recipientId: number;
  secretHash: string;
  attempts: number;
  expiresAt: Date;
  usedAt: Date | null;
}

/** Marks the address's unused challenges used at `now` (a new one replaces them); how many. */
export async function retireChallenges(tx: Tx, recipientId: number, now: Date): Promise<number> {
  const q = query(tx);
  const c = q.t.subscriptionChallenges;
  return affected(
    await q.db
      .update(c)
      .set({ usedAt: now })
      .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.recipientId, recipientId), isNull(c.usedAt))),
  );
}

export async function insertChallenge(tx: Tx, challenge: NewChallenge): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.subscriptionChallenges).values({ ...challenge, attempts: 0, trustCenterId: q.trustCenter });
}

/**
 * The challenge of this id and kind, for the rest of the transaction to decide on and change: on
 * PostgreSQL the row is locked (`FOR UPDATE`) until the transaction ends, so concurrent uses of one
 * challenge run one after the other; SQLite's transactions never interleave, so it needs no lock.
 */
export async function challengeForUse(tx: Tx, id: string, kind: ChallengeKind): Promise<Challenge | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const c = pgChallenges;
    const rows = await tx.db
      .select({ recipientId: c.recipientId, secretHash: c.secretHash, attempts: c.attempts, expiresAt: c.expiresAt, usedAt: c.usedAt })
      .from(c)
      .where(and(eq(c.trustCenterId, tx.trustCenter), eq(c.id, id), eq(c.kind, kind)))
      .limit(1)
      .for('update');
    return rows[0];
  }
  const q = query(tx);
  const c = q.t.subscriptionChallenges;
  const rows = await q.db
    .select({ recipientId: c.recipientId, secretHash: c.secretHash, attempts: c.attempts, expiresAt: c.expiresAt, usedAt: c.usedAt })
    .from(c)
    .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.id, id), eq(c.kind, kind)))
    .limit(1);
  return rows[0];
}

/** Counts one try of the challenge's code. */
export async function countAttempt(tx: Tx, id: string): Promise<void> {
  const q = query(tx);
  const c = q.t.subscriptionChallenges;
  await q.db
    .update(c)
    .set({ attempts: sql`${c.attempts} + 1` })
    .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.id, id)));
}

/** Marks the challenge used at `now` unless it already was; whether this call did. */
export async function markUsed(tx: Tx, id: string, now: Date): Promise<boolean> {
  const q = query(tx);
  const c = q.t.subscriptionChallenges;
  const changed = affected(
    await q.db
      .update(c)
      .set({ usedAt: now })
      .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.id, id), isNull(c.usedAt))),
  );
  return changed === 1;
}

/** Removes the challenges that expired before `cutoff`; how many. */
export async function removeChallengesExpiredBefore(tx: Tx, cutoff: Date): Promise<number> {
  const q = query(tx);
  const c = q.t.subscriptionChallenges;
  return affected(await q.db.delete(c).where(and(eq(c.trustCenterId, q.trustCenter), lt(c.expiresAt, cutoff))));
}
