/**
 * Confirmation secrets: a link token (`<id>.<secret>`) or a 6-digit code.
 * Only a keyed hash is stored; codes allow 5 tries. The rows are src/stores/challenges.ts's;
 * each issue and each use is one transaction (of its own, or the caller's with the `…In` forms), so
 * a challenge's check and its consumption are atomic on both engines (two uses of one code: one
 * succeeds, the other finds it used).
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  type Challenge,
  type ChallengeKind,
  challengeForUse,
  countAttempt,
  insertChallenge,
  markUsed,
  retireChallenges,
} from '../../stores/challenges.ts';
import { randomToken } from '../crypto/random.ts';

export const EMAIL_LINK_TTL_MS = 48 * 3_600_000;
export const SMS_CODE_TTL_MS = 10 * 60_000;
export const SMS_CODE_TRIES = 5;

const hash = (secret: string, value: string) => createHmac('sha256', secret).update(`challenge:${value}`).digest('hex');

export function createEmailChallenge(database: Database, serverSecret: string, recipientId: number, now: Date): Promise<string> {
  return database.transaction((tx) => createEmailChallengeIn(tx, serverSecret, recipientId, now));
}

/** A new email link for the address, in the caller's transaction: the token to send. */
export async function createEmailChallengeIn(tx: Tx, serverSecret: string, recipientId: number, now: Date): Promise<string> {
  const id = randomToken();
  const secret = randomToken();
  await issue(tx, id, recipientId, 'email_link', hash(serverSecret, secret), now, EMAIL_LINK_TTL_MS);
  return `${id}.${secret}`;
}

export function createSmsChallenge(
  database: Database,
  serverSecret: string,
  recipientId: number,
  now: Date,
): Promise<{ id: string; code: string }> {
  return database.transaction((tx) => createSmsChallengeIn(tx, serverSecret, recipientId, now));
}

/** A new SMS code for the address, in the caller's transaction. */
export async function createSmsChallengeIn(
  tx: Tx,
  serverSecret: string,
  recipientId: number,
  now: Date,
): Promise<{ id: string; code: string }> {
  const id = randomToken();
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  await issue(tx, id, recipientId, 'sms_code', hash(serverSecret, `${id}:${code}`), now, SMS_CODE_TTL_MS);
  return { id, code };
}

async function issue(
  tx: Tx,
  id: string,
  recipientId: number,
  kind: ChallengeKind,
  secretHash: string,
  now: Date,
  ttl: number,
): Promise<void> {
  // A new challenge replaces earlier unused ones for the same address.
  await retireChallenges(tx, recipientId, now);
  await insertChallenge(tx, { id, recipientId, kind, secretHash, createdAt: now, expiresAt: new Date(now.getTime() + ttl) });
}

export type ChallengeCheck = { ok: true; recipientId: number } | { ok: false; reason: 'invalid' | 'expired' | 'used' | 'tries' };

const equal = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export function useEmailChallenge(database: Database, serverSecret: string, token: string, now: Date): Promise<ChallengeCheck> {
  return database.transaction((tx) => useEmailChallengeIn(tx, serverSecret, token, now));
}

/** Checks and spends an email link in the caller's transaction (which may then act on the address). */
export async function useEmailChallengeIn(tx: Tx, serverSecret: string, token: string, now: Date): Promise<ChallengeCheck> {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 40 || secret.length > 40) return { ok: false, reason: 'invalid' };
  const row = await challengeForUse(tx, id, 'email_link');
  if (!row || !equal(row.secretHash, hash(serverSecret, secret))) return { ok: false, reason: 'invalid' };
  return consume(tx, id, row, now);
}

export function useSmsChallenge(database: Database, serverSecret: string, id: string, code: string, now: Date): Promise<ChallengeCheck> {
  return database.transaction((tx) => useSmsChallengeIn(tx, serverSecret, id, code, now));
}

/** Checks an SMS code in the caller's transaction: a wrong one counts a try, which the transaction must commit. */
export async function useSmsChallengeIn(tx: Tx, serverSecret: string, id: string, code: string, now: Date): Promise<ChallengeCheck> {
  const row = await challengeForUse(tx, id.slice(0, 40), 'sms_code');
  if (!row) return { ok: false, reason: 'invalid' };
  if (row.usedAt !== null) return { ok: false, reason: 'used' };
  if (row.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
  if (row.attempts >= SMS_CODE_TRIES) return { ok: false, reason: 'tries' };
  await countAttempt(tx, id);
  const digits = code.replace(/\D/g, '');
  if (!equal(row.secretHash, hash(serverSecret, `${id}:${digits}`)))
    return { ok: false, reason: row.attempts + 1 >= SMS_CODE_TRIES ? 'tries' : 'invalid' };
  return consume(tx, id, row, now);
}

async function consume(tx: Tx, id: string, row: Challenge, now: Date): Promise<ChallengeCheck> {
  if (row.usedAt !== null) return { ok: false, reason: 'used' };
  if (row.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
  return (await markUsed(tx, id, now)) ? { ok: true, recipientId: row.recipientId } : { ok: false, reason: 'used' };
}
