/**
 * Staff API tokens (`api_tokens`) and the replies kept for `Idempotency-Key` (`api_idempotency_keys`),
 * on SQLite and PostgreSQL alike. The convention is src/stores/rate-limits.ts's: async functions on the
 * caller's `Tx` or `Reader`, every query scoped to `q.trustCenter`. What a token may do is
 * src/core/api/tokens.ts's; what a kept reply means is src/core/api/idempotency.ts's.
 */
import { and, desc, eq, isNull, lt } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { apiIdempotencyKeys, apiTokens } from '../../db/schema.ts';

export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type NewApiToken = Omit<typeof apiTokens.$inferInsert, 'id' | 'trustCenterId'>;
export type IdempotencyRow = typeof apiIdempotencyKeys.$inferSelect;

export async function insertApiToken(tx: Tx, row: NewApiToken): Promise<ApiTokenRow> {
  const q = query(tx);
  const [inserted] = await q.db
    .insert(q.t.apiTokens)
    .values({ ...row, trustCenterId: q.trustCenter })
    .returning();
  if (!inserted) throw new Error('api token insert returned no row');
  return inserted;
}

export async function apiTokenByHash(r: Reader | Tx, tokenHash: string): Promise<ApiTokenRow | undefined> {
  const q = reading(r);
  const t = q.t.apiTokens;
  const rows = await q.db
    .select()
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.tokenHash, tokenHash)))
    .limit(1);
  return rows[0];
}

export async function apiTokenById(r: Reader | Tx, id: number): Promise<ApiTokenRow | undefined> {
  const q = reading(r);
  const t = q.t.apiTokens;
  const rows = await q.db
    .select()
    .from(t)
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id)))
    .limit(1);
  return rows[0];
}

/** Every token, newest first (a deployment has tens, not thousands). */
export async function apiTokenRows(r: Reader | Tx): Promise<ApiTokenRow[]> {
  const q = reading(r);
  const t = q.t.apiTokens;
  return q.db.select().from(t).where(eq(t.trustCenterId, q.trustCenter)).orderBy(desc(t.id));
}

export async function markApiTokenUsed(tx: Tx, id: number, now: Date): Promise<void> {
  const q = query(tx);
  const t = q.t.apiTokens;
  await q.db
    .update(t)
    .set({ lastUsedAt: now })
    .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id)));
}

/** Revokes a live token; 0 when it was already revoked (or does not exist), so two revocations audit once. */
export async function revokeApiTokenRow(tx: Tx, id: number, by: number, now: Date): Promise<number> {
  const q = query(tx);
  const t = q.t.apiTokens;
  return affected(
    await q.db
      .update(t)
      .set({ revokedAt: now, revokedBy: by })
      .where(and(eq(t.trustCenterId, q.trustCenter), eq(t.id, id), isNull(t.revokedAt))),
  );
}

export async function idempotencyRow(r: Reader | Tx, tokenId: number, key: string): Promise<IdempotencyRow | undefined> {
  const q = reading(r);
  const k = q.t.apiIdempotencyKeys;
  const rows = await q.db
    .select()
    .from(k)
    .where(and(eq(k.trustCenterId, q.trustCenter), eq(k.tokenId, tokenId), eq(k.key, key)))
    .limit(1);
  return rows[0];
}

/**
 * Claims the key for a first request: one INSERT, which a concurrent request with the same key loses on
 * the primary key (true: claimed; false: the key was there already).
 */
export async function claimIdempotencyKey(
  tx: Tx,
  row: { tokenId: number; key: string; requestHash: string; createdAt: Date; expiresAt: Date },
): Promise<boolean> {
  const q = query(tx);
  const k = q.t.apiIdempotencyKeys;
  const inserted = await q.db
    .insert(k)
    .values({ ...row, state: 'pending', trustCenterId: q.trustCenter })
    .onConflictDoNothing()
    .returning({ key: k.key });
  return inserted.length === 1;
}

export async function completeIdempotencyKey(tx: Tx, tokenId: number, key: string, status: number, body: string): Promise<void> {
  const q = query(tx);
  const k = q.t.apiIdempotencyKeys;
  await q.db
    .update(k)
    .set({ state: 'done', responseStatus: status, responseBody: body })
    .where(and(eq(k.trustCenterId, q.trustCenter), eq(k.tokenId, tokenId), eq(k.key, key)));
}

/** Lets a key go again (its first request failed before it changed anything, e.g. a server error). */
export async function releaseIdempotencyKey(tx: Tx, tokenId: number, key: string): Promise<void> {
  const q = query(tx);
  const k = q.t.apiIdempotencyKeys;
  await q.db.delete(k).where(and(eq(k.trustCenterId, q.trustCenter), eq(k.tokenId, tokenId), eq(k.key, key), eq(k.state, 'pending')));
}

/** Housekeeping: replies past their 24 hours. */
export async function removeExpiredIdempotencyKeys(tx: Tx, now: Date): Promise<number> {
  const q = query(tx);
  const k = q.t.apiIdempotencyKeys;
  return affected(await q.db.delete(k).where(and(eq(k.trustCenterId, q.trustCenter), lt(k.expiresAt, now))));
}

/** A kept reply past its 24 hours that housekeeping has not removed yet: the key is free again. */
export async function removeExpiredIdempotencyKey(tx: Tx, tokenId: number, key: string, now: Date): Promise<void> {
  const q = query(tx);
  const k = q.t.apiIdempotencyKeys;
  await q.db.delete(k).where(and(eq(k.trustCenterId, q.trustCenter), eq(k.tokenId, tokenId), eq(k.key, key), lt(k.expiresAt, now)));
}
