/**
 * What providers report after a send, on the deliveries they name by their own message id
 * (`deliveries.provider_message_id`) and recipient, on SQLite and PostgreSQL alike (the convention is
 * src/stores/rate-limits.ts's). What each report means is src/core/notify/callbacks.ts's.
 */
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { DeliveryStatus } from '../../db/schema/notify.ts';

export interface ReportedDelivery {
  id: number;
  recipientId: number | null;
  status: DeliveryStatus;
}

/**
 * The delivery a provider's message id names, among those sent to these recipients (a report names the
 * message and whom it went to; the index is by recipient, `deliveries_recipient_sent`, whose
 * `provider_message_id IS NOT NULL` both engines read as implied by the equality on it).
 */
export async function deliveryByProviderId(
  r: Reader | Tx,
  recipientIds: readonly number[],
  providerMessageId: string,
): Promise<ReportedDelivery | undefined> {
  if (recipientIds.length === 0) return undefined;
  const q = reading(r);
  const d = q.t.deliveries;
  const rows = await q.db
    .select({ id: d.id, recipientId: d.recipientId, status: d.status })
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), inArray(d.recipientId, [...recipientIds]), eq(d.providerMessageId, providerMessageId)))
    .limit(1);
  return rows[0];
}

/**
 * Whether one of these addresses has a delivery being sent whose provider id is not recorded yet: a
 * provider's report about it may have overtaken the dispatcher's record of the send.
 */
export async function sendUnrecordedTo(r: Reader | Tx, recipientIds: readonly number[]): Promise<boolean> {
  if (recipientIds.length === 0) return false;
  const q = reading(r);
  const d = q.t.deliveries;
  const rows = await q.db
    .select({ id: d.id })
    .from(d)
    .where(
      and(
        eq(d.trustCenterId, q.trustCenter),
        inArray(d.recipientId, [...recipientIds]),
        eq(d.status, 'sending'),
        isNull(d.providerMessageId),
      ),
    )
    .limit(1);
  return rows.length > 0;
}

/**
 * Records the provider's final word on a delivery it accepted (or is being sent: the report can
 * overtake the dispatcher's own record), keeping an earlier error when this one has none. One
 * conditional statement; rows changed (0 when the delivery is in no such state).
 */
export async function finishReported(tx: Tx, id: number, status: 'delivered' | 'failed', error: string | null, at: Date): Promise<number> {
  const q = query(tx);
  const d = q.t.deliveries;
  return affected(
    await q.db
      .update(d)
      .set({ status, finishedAt: at, lastError: error === null ? sql`${d.lastError}` : error })
      .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.id, id), inArray(d.status, ['sent', 'delivered', 'sending']))),
  );
}
