/**
 * One-time links (first owner, invitations, password resets): the token is
 * `<id>.<secret>`, only SHA-256(secret) is kept, and a link works once,
 * before it expires.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { staffLinks } from '../../../db/schema.ts';
import { randomToken } from '../crypto/random.ts';

export type LinkPurpose = (typeof staffLinks.$inferSelect)['purpose'];
export type StaffLink = typeof staffLinks.$inferSelect;

export const LINK_TTL_MS = 24 * 3_600_000;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

export function createLink(
  db: Db,
  staffId: number,
  purpose: LinkPurpose,
  createdBy: number | null,
  now: Date,
): { token: string; link: StaffLink } {
  const id = randomToken();
  const secret = randomToken();
  // A new link replaces any earlier unused one for the same person.
  revokeLinksOf(db, staffId, now);
  const link = db
    .insert(staffLinks)
    .values({
      id,
      staffId,
      purpose,
      secretHash: hashSecret(secret),
      createdBy,
      createdAt: now,
      expiresAt: new Date(now.getTime() + LINK_TTL_MS),
    })
    .returning()
    .get();
  return { token: `${id}.${secret}`, link };
}

/** Marks every unused link of a person used. */
export function revokeLinksOf(db: Db, staffId: number, now: Date): void {
  db.update(staffLinks)
    .set({ usedAt: now })
    .where(and(eq(staffLinks.staffId, staffId), isNull(staffLinks.usedAt)))
    .run();
}

export type LinkCheck = { ok: true; link: StaffLink } | { ok: false; reason: 'invalid' | 'expired' | 'used' };

export function checkLink(db: Db, token: string, now: Date): LinkCheck {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 64 || secret.length > 64) return { ok: false, reason: 'invalid' };
  const link = db.select().from(staffLinks).where(eq(staffLinks.id, id)).get();
  if (!link || !timingSafeEqual(hashSecret(secret), link.secretHash)) return { ok: false, reason: 'invalid' };
  if (link.usedAt) return { ok: false, reason: 'used' };
  if (link.expiresAt <= now) return { ok: false, reason: 'expired' };
  return { ok: true, link };
}

/** Marks the link used; false when it was used meanwhile (two tabs), so only one completes. */
export function consumeLink(db: Db, linkId: string, now: Date): boolean {
  return (
    db
      .update(staffLinks)
      .set({ usedAt: now })
      .where(and(eq(staffLinks.id, linkId), isNull(staffLinks.usedAt)))
      .run().changes === 1
  );
}
