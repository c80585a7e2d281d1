/**
 * Customers' one-time links (`reader_links`): verifying an access request's email, signing in to read
 * gated documents. On SQLite and PostgreSQL alike, in the convention of src/stores/rate-limits.ts (async
 * functions on the caller's `Tx` or `Reader`, scoped to `q.trustCenter`). A link is consumed by one
 * conditional UPDATE (`used_at IS NULL`), so of two presses one wins. What a link means is
 * src/core/access/reader-links.ts's.
 */
import { and, eq, isNull } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { readerLinks } from '../../db/schema.ts';

export type ReaderLinkRow = typeof readerLinks.$inferSelect;
export type ReaderLinkPurpose = ReaderLinkRow['purpose'];

export interface NewReaderLink {
  id: string;
  recipientId: number;
  purpose: ReaderLinkPurpose;
  requestId: number | null;
  secretHash: Buffer;
  createdAt: Date;
  expiresAt: Date;
}

export async function insertReaderLink(tx: Tx, link: NewReaderLink): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.readerLinks).values({ ...link, usedAt: null, trustCenterId: q.trustCenter });
}

export async function readerLinkById(r: Reader | Tx, id: string): Promise<ReaderLinkRow | undefined> {
  const q = reading(r);
  const l = q.t.readerLinks;
  const rows = await q.db
    .select()
    .from(l)
    .where(and(eq(l.trustCenterId, q.trustCenter), eq(l.id, id)))
    .limit(1);
  return rows[0];
}

/**
 * Marks the unused links a new one replaces used; how many. A sign-in link replaces the address's earlier
 * sign-in links; a verify link only the earlier links of its own request (`requestId`), so a stranger's
 * request for the same address never voids the link of a request the owner made.
 */
export async function retireReaderLinks(
  tx: Tx,
  recipientId: number,
  purpose: ReaderLinkPurpose,
  requestId: number | null,
  now: Date,
): Promise<number> {
  const q = query(tx);
  const l = q.t.readerLinks;
  const sameRequest = requestId === null ? isNull(l.requestId) : eq(l.requestId, requestId);
  return affected(
    await q.db
      .update(l)
      .set({ usedAt: now })
      .where(
        and(
          eq(l.trustCenterId, q.trustCenter),
          eq(l.recipientId, recipientId),
          eq(l.purpose, purpose),
          ...(purpose === 'verify' ? [sameRequest] : []),
          isNull(l.usedAt),
        ),
      ),
  );
}

/** Marks the link used: false when it was used meanwhile, so of two presses one completes. */
export async function consumeReaderLinkRow(tx: Tx, id: string, now: Date): Promise<boolean> {
  const q = query(tx);
  const l = q.t.readerLinks;
  const changed = affected(
    await q.db
      .update(l)
      .set({ usedAt: now })
      .where(and(eq(l.trustCenterId, q.trustCenter), eq(l.id, id), isNull(l.usedAt))),
  );
  return changed === 1;
}
