/**
 * Customers' sessions for reading gated documents, after Lucia's guide like staff sessions
 * (src/core/auth/session.ts) but entirely apart from them: their own table (`reader_sessions`), their own
 * cookie scoped to /documents, their own lifetimes (12 hours at most, 2 hours idle). The token is
 * `<id>.<secret>`; only SHA-256(secret) is kept. A customer signs in with a `sign_in` link
 * (src/core/access/reader-links.ts) sent only to an address that holds an active grant; the answer to
 * the request is the same either way.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  activeGrantsOf,
  deleteReaderSession,
  insertReaderSession,
  type ReaderSessionRow,
  readerSessionById,
  touchReaderSession,
} from '../../stores/reader-access.ts';
import { writeAudit } from '../audit/log.ts';
import { sourceOf } from '../auth/lockouts.ts';
import { hitLimit, type Limit } from '../auth/rate-limit.ts';
import { randomToken } from '../crypto/random.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { addressHash, findRecipient, type Keys } from '../notify/recipients.ts';
import { checkEmail } from '../subscriptions/addresses.ts';
import { escapeHtml } from '../text/escape.ts';
import { consumeReaderLink, issueReaderLink, READER_LINK_TTL_MS } from './reader-links.ts';

export type ReaderSession = ReaderSessionRow;

export const READER_SESSION = { absoluteMs: 12 * 3_600_000, idleMs: 2 * 3_600_000 } as const;

/** Activity is written at most this often, so reading a page is not a write per request. */
const TOUCH_INTERVAL_MS = 60_000;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

/** Sign-in links asked for: per source address (visible refusal), per email address (silent: the same answer). */
export const readerLinkLimits = {
  perIp: { bucket: 'reader-link:ip', max: 10, windowMs: 15 * 60_000 },
  perAddress: { bucket: 'reader-link:address', max: 3, windowMs: 60 * 60_000 },
} as const satisfies Record<string, Limit>;

export interface ReaderClient {
  ip: string | null;
  userAgent: string | null;
}

export interface ReaderContext {
  database: Database;
  keys: Keys;
  now: Date;
  client: ReaderClient;
  publicUrl: URL;
  organisation: string;
}

export interface ReaderCookie {
  name: string;
  secure: boolean;
  path: '/documents';
}

/** Scoped to /documents, so it never reaches /console; `__Secure-` over https (`__Host-` would need Path=/). */
export function readerCookie(https: boolean): ReaderCookie {
  return { name: https ? '__Secure-candor_reader' : 'candor_reader', secure: https, path: '/documents' };
}

/**
 * Opens a session for the recipient in the caller's transaction (after a sign-in link, or after a flow of
 * another part proved the address, e.g. verifying an access request): the token for the cookie.
 */
export async function openReaderSession(
  tx: Tx,
  recipientId: number,
  client: ReaderClient,
  now: Date,
): Promise<{ token: string; expiresAt: Date }> {
  const id = randomToken();
  const secret = randomToken();
  const expiresAt = new Date(now.getTime() + READER_SESSION.absoluteMs);
  await insertReaderSession(tx, {
    id,
    recipientId,
    secretHash: hashSecret(secret),
    createdAt: now,
    lastActiveAt: now,
    expiresAt,
    ip: client.ip,
    userAgent: client.userAgent?.slice(0, 512) ?? null,
  });
  return { token: `${id}.${secret}`, expiresAt };
}

export function readerSessionEnd(session: Pick<ReaderSession, 'expiresAt' | 'lastActiveAt'>): Date {
  return new Date(Math.min(session.expiresAt.getTime(), session.lastActiveAt.getTime() + READER_SESSION.idleMs));
}

/** The session of the token, or null (and an ended session removed). Reads; writes activity at most once a minute. */
export async function validateReaderSession(database: Database, token: string, now: Date): Promise<ReaderSession | null> {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 64 || secret.length > 64) return null;
  const session = await database.read((r) => readerSessionById(r, id));
  if (!session || !timingSafeEqual(hashSecret(secret), session.secretHash)) return null;
  if (readerSessionEnd(session) <= now) {
    await database.transaction((tx) => deleteReaderSession(tx, session.id));
    return null;
  }
  if (now.getTime() - session.lastActiveAt.getTime() >= TOUCH_INTERVAL_MS) {
    await database.transaction((tx) => touchReaderSession(tx, session.id, now, new Date(now.getTime() - TOUCH_INTERVAL_MS)));
    session.lastActiveAt = now;
  }
  return session;
}

export async function endReaderSession(ctx: ReaderContext, session: ReaderSession): Promise<void> {
  await ctx.database.transaction(async (tx) => {
    if ((await deleteReaderSession(tx, session.id)) === 0) return;
    await writeAudit(
      tx,
      {
        actor: { type: 'anonymous' },
        ip: ctx.client.ip,
        userAgent: ctx.client.userAgent,
        action: 'access.reader.signed_out',
        target: `recipient:${session.recipientId}`,
      },
      ctx.now,
    );
  });
}

export const READER_LINK_ANSWER =
  'If this address may read documents here, a sign-in link is on its way. It works once, for 30 minutes. Nothing arrived? Check the address, or ask for access.';
const TOO_MANY = 'Too many sign-in links were asked for from your network. Try again in a few minutes.';

export type ReaderResult<T> = ({ ok: true } & T) | { ok: false; message: string; tooMany?: true };

function signInEmail(organisation: string, url: string) {
  const minutes = READER_LINK_TTL_MS.sign_in / 60_000;
  const lines = [
    `Someone asked to sign in to read ${organisation}'s documents with this address.`,
    `Open the link and press the button to sign in. It works once, for ${minutes} minutes. If it was not you, ignore this message.`,
  ];
  return {
    subject: `Sign in to read ${organisation}'s documents`,
    html: `${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n')}\n<p><a href="${escapeHtml(url)}">Sign in</a></p>`,
    text: `${lines.join('\n\n')}\n\n${url}\n`,
  };
}

/**
 * A visitor asks for a sign-in link. The answer is the same whether or not the address holds an active
 * grant; the link is sent only when it does. Too many requests from one source are refused; too many for
 * one address are silently not sent.
 */
export async function requestReaderLink(ctx: ReaderContext, rawEmail: string): Promise<ReaderResult<{ message: string }>> {
  const checked = checkEmail(rawEmail);
  if (!checked.ok) return checked;
  const email = checked.value;
  return ctx.database.transaction(async (tx) => {
    if ((await hitLimit(tx, readerLinkLimits.perIp, sourceOf(ctx.client.ip), ctx.now)).limited)
      return { ok: false, message: TOO_MANY, tooMany: true };
    if ((await hitLimit(tx, readerLinkLimits.perAddress, addressHash(ctx.keys, 'email', email), ctx.now)).limited)
      return { ok: true, message: READER_LINK_ANSWER };
    const recipient = await findRecipient(tx, ctx.keys, 'email', email);
    if (!recipient || recipient.status === 'suppressed') return { ok: true, message: READER_LINK_ANSWER };
    if ((await activeGrantsOf(tx, recipient.id, ctx.now)).length === 0) return { ok: true, message: READER_LINK_ANSWER };
    const token = await issueReaderLink(tx, recipient.id, 'sign_in', null, ctx.now);
    const url = new URL(`documents/sign-in/${token}`, ctx.publicUrl).href;
    await enqueueNotification(
      tx,
      {
        kind: 'reader-sign-in',
        title: 'Sign-in link to read documents',
        content: { email: signInEmail(ctx.organisation, url) },
        audience: { kind: 'recipients', ids: [recipient.id], includePending: true },
      },
      ctx.now,
    );
    await writeAudit(
      tx,
      {
        actor: { type: 'anonymous' },
        ip: ctx.client.ip,
        userAgent: ctx.client.userAgent,
        action: 'access.reader.link_sent',
        target: `recipient:${recipient.id}`,
      },
      ctx.now,
    );
    return { ok: true, message: READER_LINK_ANSWER };
  });
}

const LINK_REFUSED = {
  invalid: 'This sign-in link is not valid. Ask for a new one.',
  expired: 'This sign-in link has expired. Ask for a new one.',
  used: 'This sign-in link was already used. Ask for a new one.',
} as const;

/** The button's press: consumes the link and opens a session, in one transaction (of two presses, one signs in). */
export async function completeReaderLink(ctx: ReaderContext, token: string): Promise<ReaderResult<{ token: string; expiresAt: Date }>> {
  return ctx.database.transaction(async (tx) => {
    const link = await consumeReaderLink(tx, token, 'sign_in', ctx.now);
    if (!link.ok) return { ok: false, message: LINK_REFUSED[link.reason] };
    const session = await openReaderSession(tx, link.link.recipientId, ctx.client, ctx.now);
    await writeAudit(
      tx,
      {
        actor: { type: 'anonymous' },
        ip: ctx.client.ip,
        userAgent: ctx.client.userAgent,
        action: 'access.reader.signed_in',
        target: `recipient:${link.link.recipientId}`,
      },
      ctx.now,
    );
    return { ok: true, ...session };
  });
}

export { LINK_REFUSED as readerLinkRefusals };
