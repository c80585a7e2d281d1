/**
 * The values sealed with the encryption key (src/core/crypto/seal.ts) as key rotation re-seals them:
 * recipients' addresses and secrets, staff authenticator secrets. The store reads and writes them as
 * sealed text; opening and sealing is src/core/crypto/reseal.ts's. Convention: src/stores/rate-limits.ts.
 */
import { and, asc, eq, isNotNull } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';

export interface SealedRecipient {
  id: number;
  channel: string;
  address: string;
  secret: string | null;
}

/** Every recipient's sealed address and secret, in id order. */
export async function sealedRecipients(r: Reader | Tx): Promise<SealedRecipient[]> {
  const q = reading(r);
  const t = q.t.recipients;
  return q.db
    .select({ id: t.id, channel: t.channel, address: t.address, secret: t.secret })
    .from(t)
    .where(eq(t.trustCenterId, q.trustCenter))
    .orderBy(asc(t.id));
}

export async function setRecipientSealed(tx: Tx, id: number, sealed: { address: string; secret: string | null }): Promise<void> {
  const q = query(tx);
  const t = q.t.recipients;
  await q.db
    .update(t)
    .set(sealed)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id)));
}

/** Every staff member's sealed authenticator secret, where there is one, in id order. */
export async function sealedTotpSecrets(r: Reader | Tx): Promise<{ id: number; totpSecret: string }[]> {
  const q = reading(r);
  const t = q.t.staff;
  const rows = await q.db
    .select({ id: t.id, totpSecret: t.totpSecret })
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), isNotNull(t.totpSecret)))
    .orderBy(asc(t.id));
  return rows.flatMap((row) => (row.totpSecret === null ? [] : [{ id: row.id, totpSecret: row.totpSecret }]));
}

export async function setTotpSealed(tx: Tx, id: number, totpSecret: string): Promise<void> {
  const q = query(tx);
  const t = q.t.staff;
  await q.db
    .update(t)
    .set({ totpSecret })
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id)));
}
