/**
 * Rows of the outbox written straight through the builder, on either engine, for the stores' tests:
 * recipients (sealed fields as plain stand-ins: the stores never open them), a notification and its
 * deliveries.
 */
import { query } from '../../db/engine/query.ts';
import type { Tx } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';

export async function recipientRows(tx: Tx, count: number, channel: ChannelName = 'email', prefix = 'r'): Promise<number[]> {
  if (count === 0) return [];
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.recipients)
    .values(
      Array.from({ length: count }, (_, i) => ({
        channel,
        address: `${prefix}${i}@example.test`,
        addressHash: `hash:${prefix}:${i}`,
        status: 'active' as const,
        createdAt: new Date(0),
        trustCenterId: q.trustCenter,
      })),
    )
    .returning({ id: q.t.recipients.id });
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

export async function notificationRow(tx: Tx, title = 'Update', kind = 'incident.update'): Promise<number> {
  const q = query(tx);
  const [row] = await q.db
    .insert(q.t.notifications)
    .values({
      kind,
      title,
      threadKey: null,
      content: { email: { subject: title, html: `<p>${title}</p>`, text: title } },
      audience: { kind: 'topic', topic: 'incidents' },
      recipientCount: 0,
      createdAt: new Date(0),
      trustCenterId: q.trustCenter,
    })
    .returning({ id: q.t.notifications.id });
  if (!row) throw new Error('no notification');
  return row.id;
}

/** One pending delivery per recipient, due at `due` (or per recipient), with optional batch keys; ids in recipient order. */
export async function deliveryRows(
  tx: Tx,
  notificationId: number,
  recipientIds: readonly number[],
  options: { channel?: ChannelName; due: Date | ((i: number) => Date); batchKey?: (i: number) => string | null },
): Promise<number[]> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.deliveries)
    .values(
      recipientIds.map((recipientId, i) => ({
        notificationId,
        recipientId,
        channel: options.channel ?? 'email',
        status: 'pending' as const,
        nextAttemptAt: typeof options.due === 'function' ? options.due(i) : options.due,
        batchKey: options.batchKey?.(i) ?? null,
        trustCenterId: q.trustCenter,
      })),
    )
    .returning({ id: q.t.deliveries.id, recipientId: q.t.deliveries.recipientId });
  const byRecipient = new Map(rows.map((r) => [r.recipientId, r.id]));
  return recipientIds.map((id) => byRecipient.get(id) ?? 0);
}
