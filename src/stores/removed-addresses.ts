/**
 * Addresses that were subscribed and then removed (`removed_addresses`): only each one's channel and
 * blind index, the reason and when. An import never adds such an address again
 * (src/core/subscriptions/import.ts); the person signing up here again and confirming clears it
 * (src/core/subscriptions/consents.ts). The convention is src/stores/rate-limits.ts's.
 *
 * Recording is an upsert on the unique key (trust center, channel, blind index): removing an address
 * that was removed before, re-added and removed again keeps one row with the latest reason and time.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { removalReasons } from '../../db/schema/consents.ts';
import type { ChannelName } from '../../db/schema/notify.ts';

export type RemovalReason = (typeof removalReasons)[number];

export interface RemovedAddress {
  reason: RemovalReason;
  removedAt: Date;
}

/** Remembers these addresses (channel and blind index) as removed, for this reason, now. */
export async function rememberRemoved(
  tx: Tx,
  addresses: readonly { channel: ChannelName; addressHash: string }[],
  reason: RemovalReason,
  now: Date,
): Promise<void> {
  if (addresses.length === 0) return;
  const q = query(tx);
  const t = q.t.removedAddresses;
  await q.db
    .insert(t)
    .values(
      addresses.map((a) => ({ channel: a.channel, addressHash: a.addressHash, reason, removedAt: now, trustCenterId: q.trustCenter })),
    )
    .onConflictDoUpdate({
      target: [t.trustCenterId, t.channel, t.addressHash],
      set: { reason: sql`excluded.reason`, removedAt: sql`excluded.removed_at` },
    });
}

/** Which of these blind indexes of one channel were removed, by blind index (one query per batch). */
export async function removedByHash(r: Reader | Tx, channel: ChannelName, hashes: readonly string[]): Promise<Map<string, RemovedAddress>> {
  if (hashes.length === 0) return new Map();
  const q = reading(r);
  const t = q.t.removedAddresses;
  const rows = await q.db
    .select({ addressHash: t.addressHash, reason: t.reason, removedAt: t.removedAt })
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.channel, channel), inArray(t.addressHash, [...hashes])));
  return new Map(rows.map((row) => [row.addressHash, { reason: row.reason, removedAt: row.removedAt }]));
}

/** The address was confirmed here again: it is no longer one that withdrew. */
export async function forgetRemoved(tx: Tx, channel: ChannelName, addressHash: string): Promise<void> {
  const q = query(tx);
  const t = q.t.removedAddresses;
  await q.db.delete(t).where(and(eq(t.trustCenterId, q.trustCenter), eq(t.channel, channel), eq(t.addressHash, addressHash)));
}
