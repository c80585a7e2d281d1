/**
 * Customers' one-time links: `verify` proves an access request's email address, `sign_in` opens a
 * reader session. The token is `<id>.<secret>`; only SHA-256(secret) is kept (src/stores/reader-links.ts).
 * Opening a link only shows a page with a button: a link is consumed by the press (a POST), because mail
 * scanners open links but do not press buttons. A new sign-in link retires the address's earlier ones; a new verify link only its own request's.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Reader, Tx } from '../../../db/engine/types.ts';
import {
  consumeReaderLinkRow,
  insertReaderLink,
  type ReaderLinkPurpose,
  type ReaderLinkRow,
  readerLinkById,
  retireReaderLinks,
} from '../../stores/reader-links.ts';
import { randomToken } from '../crypto/random.ts';

export type { ReaderLinkPurpose, ReaderLinkRow };

/** How long a link works: a day to verify a request, 30 minutes to sign in. */
export const READER_LINK_TTL_MS: Record<ReaderLinkPurpose, number> = { verify: 24 * 3_600_000, sign_in: 30 * 60_000 };

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

/** A new link in the caller's transaction: the token to put in the email. */
export async function issueReaderLink(
  tx: Tx,
  recipientId: number,
  purpose: ReaderLinkPurpose,
  requestId: number | null,
  now: Date,
): Promise<string> {
  const id = randomToken();
  const secret = randomToken();
  await retireReaderLinks(tx, recipientId, purpose, requestId, now);
  await insertReaderLink(tx, {
    id,
    recipientId,
    purpose,
    requestId,
    secretHash: hashSecret(secret),
    createdAt: now,
    expiresAt: new Date(now.getTime() + READER_LINK_TTL_MS[purpose]),
  });
  return `${id}.${secret}`;
}

export type ReaderLinkCheck = { ok: true; link: ReaderLinkRow } | { ok: false; reason: 'invalid' | 'expired' | 'used' };

/** Whether the token is a live link of this purpose (for the page that shows the button; consumes nothing). */
export async function checkReaderLink(r: Reader | Tx, token: string, purpose: ReaderLinkPurpose, now: Date): Promise<ReaderLinkCheck> {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 64 || secret.length > 64) return { ok: false, reason: 'invalid' };
  const link = await readerLinkById(r, id);
  if (!link || link.purpose !== purpose || !timingSafeEqual(hashSecret(secret), link.secretHash)) return { ok: false, reason: 'invalid' };
  if (link.usedAt) return { ok: false, reason: 'used' };
  if (link.expiresAt <= now) return { ok: false, reason: 'expired' };
  return { ok: true, link };
}

/** Checks and consumes the link in the caller's transaction (the button's press): of two presses, one gets it. */
export async function consumeReaderLink(tx: Tx, token: string, purpose: ReaderLinkPurpose, now: Date): Promise<ReaderLinkCheck> {
  const check = await checkReaderLink(tx, token, purpose, now);
  if (!check.ok) return check;
  if (!(await consumeReaderLinkRow(tx, check.link.id, now))) return { ok: false, reason: 'used' };
  return check;
}
