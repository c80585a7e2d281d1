/**
 * Signed, per-recipient links that work without signing in: manage a
 * subscription, unsubscribe in one click. The token names the recipient
 * and carries an HMAC with CANDOR_SECRET; it cannot be guessed or altered.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const sign = (secret: string, purpose: string, id: number) =>
  createHmac('sha256', secret).update(`${purpose}:${id}`).digest('base64url').slice(0, 32);

export function recipientToken(secret: string, purpose: 'unsubscribe' | 'manage', recipientId: number): string {
  return `${recipientId.toString(36)}.${sign(secret, purpose, recipientId)}`;
}

/** The recipient id a token names, or null when it is not one we signed. */
export function readRecipientToken(secret: string, purpose: 'unsubscribe' | 'manage', token: string): number | null {
  const [idPart, mac, extra] = token.split('.');
  if (!idPart || !mac || extra !== undefined || !/^[0-9a-z]{1,11}$/.test(idPart)) return null;
  const id = Number.parseInt(idPart, 36);
  // One spelling per token: "01.<mac>" named recipient 1 as well as "1.<mac>" did.
  if (id.toString(36) !== idPart) return null;
  const expected = Buffer.from(sign(secret, purpose, id));
  const given = Buffer.from(mac);
  return given.length === expected.length && timingSafeEqual(given, expected) ? id : null;
}

export function recipientLinks(secret: string, publicUrl: URL, recipientId: number): { unsubscribe: string; manage: string } {
  const at = (path: string) => new URL(path, publicUrl).href;
  return {
    unsubscribe: at(`unsubscribe/${recipientToken(secret, 'unsubscribe', recipientId)}`),
    manage: at(`subscription/${recipientToken(secret, 'manage', recipientId)}`),
  };
}

const signObjection = (secret: string, noticeId: number, recipientId: number) =>
  createHmac('sha256', secret).update(`objection:${noticeId}:${recipientId}`).digest('base64url').slice(0, 32);

/** The link in a change notice that lets this recipient object to it: names the notice and the recipient. */
export function objectionToken(secret: string, noticeId: number, recipientId: number): string {
  return `${noticeId.toString(36)}.${recipientId.toString(36)}.${signObjection(secret, noticeId, recipientId)}`;
}

/**
 * The notice and recipient an objection token names, or null when it is not one we signed, spelled
 * exactly as we spell it: the whole token is compared with the one we would issue, so leading zeros,
 * case, padding, the other base64 alphabet or whitespace make it a token we never sent.
 */
export function readObjectionToken(secret: string, token: string): { noticeId: number; recipientId: number } | null {
  const [noticePart, recipientPart, mac, extra] = token.split('.');
  const id36 = /^[0-9a-z]{1,11}$/;
  if (!noticePart || !recipientPart || !mac || extra !== undefined || !id36.test(noticePart) || !id36.test(recipientPart)) return null;
  const noticeId = Number.parseInt(noticePart, 36);
  const recipientId = Number.parseInt(recipientPart, 36);
  const expected = Buffer.from(objectionToken(secret, noticeId, recipientId));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected) ? { noticeId, recipientId } : null;
}

export const objectionUrl = (secret: string, publicUrl: URL, noticeId: number, recipientId: number) =>
  new URL(`objections/${objectionToken(secret, noticeId, recipientId)}`, publicUrl).href;
