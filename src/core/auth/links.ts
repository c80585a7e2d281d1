/**
 * One-time links (first owner, invitations, password resets): the token is
 * `<id>.<secret>`, only SHA-256(secret) is kept, and a link works once,
 * before it expires. The rows are src/stores/staff.ts's (issue 15).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Reader, Tx } from '../../../db/engine/types.ts';
import {
  consumeLinkRow,
  insertLink,
  type LinkPurpose,
  type LinkRow,
  linkById,
  lockStaffMember,
  revokeLinkRows,
} from '../../stores/staff.ts';
import { randomToken } from '../crypto/random.ts';

export type { LinkPurpose };
export type StaffLink = LinkRow;

export const LINK_TTL_MS = 24 * 3_600_000;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

export async function createLink(
  tx: Tx,
  staffId: number,
  purpose: LinkPurpose,
  createdBy: number | null,
  now: Date,
): Promise<{ token: string; link: StaffLink }> {
  const id = randomToken();
  const secret = randomToken();
  // A new link replaces any earlier unused one for the same person. The account's row lock (PostgreSQL)
  // makes links issued for one person at once follow each other, so the last one revokes the others.
  await lockStaffMember(tx, staffId);
  await revokeLinksOf(tx, staffId, now);
  const link = await insertLink(tx, {
    id,
    staffId,
    purpose,
    secretHash: hashSecret(secret),
    createdBy,
    createdAt: now,
    expiresAt: new Date(now.getTime() + LINK_TTL_MS),
  });
  return { token: `${id}.${secret}`, link };
}

/** Marks every unused link of a person used. */
export async function revokeLinksOf(tx: Tx, staffId: number, now: Date): Promise<void> {
  await revokeLinkRows(tx, staffId, now);
}

export type LinkCheck = { ok: true; link: StaffLink } | { ok: false; reason: 'invalid' | 'expired' | 'used' };

export async function checkLink(r: Reader | Tx, token: string, now: Date): Promise<LinkCheck> {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 64 || secret.length > 64) return { ok: false, reason: 'invalid' };
  const link = await linkById(r, id);
  if (!link || !timingSafeEqual(hashSecret(secret), link.secretHash)) return { ok: false, reason: 'invalid' };
  if (link.usedAt) return { ok: false, reason: 'used' };
  if (link.expiresAt <= now) return { ok: false, reason: 'expired' };
  return { ok: true, link };
}

/** Marks the link used; false when it was used meanwhile (two tabs), so only one completes. */
export function consumeLink(tx: Tx, linkId: string, now: Date): Promise<boolean> {
  return consumeLinkRow(tx, linkId, now);
}
