/**
 * The addresses Candor delivers to (`recipients`), on SQLite and PostgreSQL alike (the convention is
 * src/stores/rate-limits.ts's). Rows hold addresses sealed and found by their blind index; sealing,
 * opening and what a status means are src/core/notify/recipients.ts's.
 */
import { and, asc, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import type { recipients } from '../../db/schema.ts';

export type RecipientRow = typeof recipients.$inferSelect;
export type NewRecipientRow = Omit<typeof recipients.$inferInsert, 'id' | 'trustCenterId'>;

/** Adds an address; a second one with the same channel and blind index fails on the unique key. */
export async function insertRecipient(tx: Tx, row: NewRecipientRow): Promise<RecipientRow> {
  const q = query(tx);
  const [made] = await q.db
    .insert(q.t.recipients)
    .values({ ...row, trustCenterId: q.trustCenter })
    .returning();
  if (!made) throw new Error('the recipient was not written');
  return made;
}

/**
 * Adds an address unless one with the same channel and blind index exists; either way the row.
 * Safe against a concurrent adder on both engines: the insert does nothing on the unique key, and
 * then the row the other one committed is read (READ COMMITTED sees it once its insert returned).
 */
export async function insertRecipientOnce(tx: Tx, row: NewRecipientRow): Promise<RecipientRow> {
  const q = query(tx);
  const r = q.t.recipients;
  const [made] = await q.db
    .insert(r)
    .values({ ...row, trustCenterId: q.trustCenter })
    .onConflictDoNothing({ target: [r.channel, r.addressHash] })
    .returning();
  if (made) return made;
  const existing = await recipientByHash(tx, row.channel, row.addressHash);
  if (!existing) throw new Error('the address belongs to another trust center');
  return existing;
}

export async function recipientByHash(r: Reader | Tx, channel: ChannelName, addressHash: string): Promise<RecipientRow | undefined> {
  const q = reading(r);
  const t = q.t.recipients;
  const rows = await q.db
    .select()
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.channel, channel), eq(t.addressHash, addressHash)))
    .limit(1);
  return rows[0];
}

export interface SealedEmail {
  id: number;
  channel: 'email';
  address: string;
  domainHash: string | null;
}

/** One page of email addresses by id after `afterId` (those without a domain index only, unless `all`). */
export async function emailPage(r: Reader | Tx, afterId: number, limit: number, all: boolean): Promise<SealedEmail[]> {
  const q = reading(r);
  const t = q.t.recipients;
  const rows = await q.db
    .select({ id: t.id, address: t.address, domainHash: t.domainHash })
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.channel, 'email'), gt(t.id, afterId), all ? undefined : isNull(t.domainHash)))
    .orderBy(asc(t.id))
    .limit(limit);
  return rows.map((row) => ({ ...row, channel: 'email' as const }));
}

export async function setDomainHash(tx: Tx, id: number, domainHash: string | null): Promise<void> {
  const q = query(tx);
  const t = q.t.recipients;
  await q.db
    .update(t)
    .set({ domainHash })
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id)));
}

/**
 * Suppresses an address that is active, pending or suppressed already (a second suppression updates
 * the reason), remembering the status it had; one statement, so a concurrent confirmation cannot
 * slip between reading the status and writing it. Rows changed (0 or 1).
 */
export async function suppressRow(tx: Tx, id: number, reason: string, at: Date): Promise<number> {
  const q = query(tx);
  const t = q.t.recipients;
  return affected(
    await q.db
      .update(t)
      .set({
        status: 'suppressed',
        suppressedAt: at,
        suppressedReason: reason,
        suppressedFrom: sql`CASE WHEN ${t.status} IN ('active', 'pending') THEN ${t.status} ELSE ${t.suppressedFrom} END`,
      })
      .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id), inArray(t.status, ['active', 'pending', 'suppressed']))),
  );
}

/** Lifts a suppression, back to the status it had (active when none was recorded). Rows changed (0 or 1). */
export async function unsuppressRow(tx: Tx, id: number): Promise<number> {
  const q = query(tx);
  const t = q.t.recipients;
  return affected(
    await q.db
      .update(t)
      .set({
        status: sql`coalesce(${t.suppressedFrom}, 'active')`,
        suppressedAt: null,
        suppressedReason: null,
        suppressedFrom: null,
      })
      .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id), eq(t.status, 'suppressed'))),
  );
}
