/**
 * Housekeeping's deletes (src/core/maintenance/housekeeping.ts): expired staff sessions and links,
 * Slack sign-in states, and delivery records past their retention, on SQLite and PostgreSQL alike.
 * Convention: src/stores/rate-limits.ts.
 *
 * Every delete here is one statement whose condition is re-checked by the database on the rows it
 * removes, so two nodes running the same step at once cannot remove a row twice or a live one; the
 * step lock only keeps them from doing the same work twice.
 */
import { and, eq, inArray, lt, or, sql } from 'drizzle-orm';
import { affected, query } from '../../db/engine/query.ts';
import type { Tx } from '../../db/engine/types.ts';

/** First half of the advisory lock key: "HKSP" (housekeeping step); the second half is the step's number. */
const STEP_LOCK = 0x484b5350;

/**
 * Takes the lock of housekeeping step `step` for this transaction, or false when another node holds
 * it (it is running that step now: this one skips it). SQLite: always true, its transactions are
 * serialised and there is one node.
 */
export async function tryStepLock(tx: Tx, step: number): Promise<boolean> {
  if (tx.engine === 'sqlite') return true;
  // Raw SQL: the builder has no advisory-lock functions. Transaction-scoped: released at commit or rollback.
  const { rows } = await tx.db.execute<{ taken: boolean }>(sql`SELECT pg_try_advisory_xact_lock(${STEP_LOCK}, ${step}) AS taken`);
  return rows[0]?.taken === true;
}

/** Staff sessions expired, or idle since before `idleCutoff`; how many. */
export async function removeStaleSessions(tx: Tx, now: Date, idleCutoff: Date): Promise<number> {
  const q = query(tx);
  const s = q.t.staffSessions;
  return affected(
    await q.db.delete(s).where(and(eq(s.trustCenterId, q.trustCenter), or(lt(s.expiresAt, now), lt(s.lastActiveAt, idleCutoff)))),
  );
}

/** Staff links that expired, or were used, before `cutoff`; how many. */
export async function removeOldLinks(tx: Tx, cutoff: Date): Promise<number> {
  const q = query(tx);
  const l = q.t.staffLinks;
  return affected(await q.db.delete(l).where(and(eq(l.trustCenterId, q.trustCenter), or(lt(l.expiresAt, cutoff), lt(l.usedAt, cutoff)))));
}

/** Customers' sessions past their end (`expires_at`) or idle since before `idleCutoff`; how many. */
export async function removeStaleReaderSessions(tx: Tx, now: Date, idleCutoff: Date): Promise<number> {
  const q = query(tx);
  const s = q.t.readerSessions;
  return affected(
    await q.db.delete(s).where(and(eq(s.trustCenterId, q.trustCenter), or(lt(s.expiresAt, now), lt(s.lastActiveAt, idleCutoff)))),
  );
}

/** Customers' one-time links that expired, or were used, before `cutoff`; how many. */
export async function removeOldReaderLinks(tx: Tx, cutoff: Date): Promise<number> {
  const q = query(tx);
  const l = q.t.readerLinks;
  return affected(await q.db.delete(l).where(and(eq(l.trustCenterId, q.trustCenter), or(lt(l.expiresAt, cutoff), lt(l.usedAt, cutoff)))));
}

/** Slack sign-in states that expired before `cutoff`; how many. */
export async function removeExpiredSlackStates(tx: Tx, cutoff: Date): Promise<number> {
  const q = query(tx);
  const o = q.t.slackOauthStates;
  return affected(await q.db.delete(o).where(and(eq(o.trustCenterId, q.trustCenter), lt(o.expiresAt, cutoff))));
}

/** The delivery records housekeeping prunes by age. */
export type PrunedRecords = 'deliveryAttempts' | 'loggedMessages';

/**
 * Up to `batch` of the oldest records of `table` from before `cutoff`; how many. Ids grow with time,
 * so the oldest are found at the start of the id order, batch after batch.
 */
export async function removeOlderBatch(tx: Tx, table: PrunedRecords, cutoff: Date, batch: number): Promise<number> {
  const q = query(tx);
  const t = q.t[table];
  const mine = eq(t.trustCenterId, q.trustCenter);
  const oldest = q.db
    .select({ id: t.id })
    .from(t)
    .where(and(mine, lt(t.at, cutoff)))
    .orderBy(t.id)
    .limit(batch);
  return affected(await q.db.delete(t).where(and(mine, inArray(t.id, oldest))));
}
