/**
 * Confirmation secrets: a link token (`<id>.<secret>`) or a 6-digit code.
 * Only a keyed hash is stored; codes allow 5 tries.
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Db } from '../../../db/client.ts';
import { randomToken } from '../crypto/random.ts';

export const EMAIL_LINK_TTL_MS = 48 * 3_600_000;
export const SMS_CODE_TTL_MS = 10 * 60_000;
export const SMS_CODE_TRIES = 5;

const hash = (secret: string, value: string) => createHmac('sha256', secret).update(`challenge:${value}`).digest('hex');

export function createEmailChallenge(db: Db, serverSecret: string, recipientId: number, now: Date): string {
  const id = randomToken();
  const secret = randomToken();
  insert(db, id, recipientId, 'email_link', hash(serverSecret, secret), now, EMAIL_LINK_TTL_MS);
  return `${id}.${secret}`;
}

export function createSmsChallenge(db: Db, serverSecret: string, recipientId: number, now: Date): { id: string; code: string } {
  const id = randomToken();
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  insert(db, id, recipientId, 'sms_code', hash(serverSecret, `${id}:${code}`), now, SMS_CODE_TTL_MS);
  return { id, code };
}

function insert(
  db: Db,
  id: string,
  recipientId: number,
  kind: 'email_link' | 'sms_code',
  secretHash: string,
  now: Date,
  ttl: number,
): void {
  const sqlite = db.$client;
  sqlite.transaction(() => {
    // A new challenge replaces earlier unused ones for the same address.
    sqlite
      .prepare('UPDATE subscription_challenges SET used_at = ? WHERE recipient_id = ? AND used_at IS NULL')
      .run(now.getTime(), recipientId);
    sqlite
      .prepare(
        'INSERT INTO subscription_challenges (id, recipient_id, kind, secret_hash, attempts, created_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)',
      )
      .run(id, recipientId, kind, secretHash, now.getTime(), now.getTime() + ttl);
  })();
}

export type ChallengeCheck = { ok: true; recipientId: number } | { ok: false; reason: 'invalid' | 'expired' | 'used' | 'tries' };

interface Row {
  recipient_id: number;
  kind: string;
  secret_hash: string;
  attempts: number;
  expires_at: number;
  used_at: number | null;
}

const equal = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export function useEmailChallenge(db: Db, serverSecret: string, token: string, now: Date): ChallengeCheck {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 40 || secret.length > 40) return { ok: false, reason: 'invalid' };
  const row = db.$client.prepare('SELECT * FROM subscription_challenges WHERE id = ? AND kind = ?').get(id, 'email_link') as
    | Row
    | undefined;
  if (!row || !equal(row.secret_hash, hash(serverSecret, secret))) return { ok: false, reason: 'invalid' };
  return consume(db, id, row, now);
}

export function useSmsChallenge(db: Db, serverSecret: string, id: string, code: string, now: Date): ChallengeCheck {
  const row = db.$client.prepare('SELECT * FROM subscription_challenges WHERE id = ? AND kind = ?').get(id.slice(0, 40), 'sms_code') as
    | Row
    | undefined;
  if (!row) return { ok: false, reason: 'invalid' };
  if (row.used_at !== null) return { ok: false, reason: 'used' };
  if (row.expires_at <= now.getTime()) return { ok: false, reason: 'expired' };
  if (row.attempts >= SMS_CODE_TRIES) return { ok: false, reason: 'tries' };
  db.$client.prepare('UPDATE subscription_challenges SET attempts = attempts + 1 WHERE id = ?').run(id);
  const digits = code.replace(/\D/g, '');
  if (!equal(row.secret_hash, hash(serverSecret, `${id}:${digits}`)))
    return { ok: false, reason: row.attempts + 1 >= SMS_CODE_TRIES ? 'tries' : 'invalid' };
  return consume(db, id, row, now);
}

function consume(db: Db, id: string, row: Row, now: Date): ChallengeCheck {
  if (row.used_at !== null) return { ok: false, reason: 'used' };
  if (row.expires_at <= now.getTime()) return { ok: false, reason: 'expired' };
  const changed = db.$client
    .prepare('UPDATE subscription_challenges SET used_at = ? WHERE id = ? AND used_at IS NULL')
    .run(now.getTime(), id).changes;
  return changed === 1 ? { ok: true, recipientId: row.recipient_id } : { ok: false, reason: 'used' };
}
