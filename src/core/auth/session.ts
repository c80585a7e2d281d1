/**
 * Staff sessions, after Lucia's current guide: the token given to the
 * browser is `<id>.<secret>`; the database keeps only SHA-256(secret), and
 * the comparison is constant-time. A session ends after a period of
 * inactivity or at an absolute lifetime, whichever comes first. The rows are
 * src/stores/sessions.ts's (issue 15): functions that write take the
 * caller's `Tx`, so a flow's session change commits with the rest of it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  deleteSession,
  deleteSessionsOf,
  insertSession,
  markSessionVerified,
  type SessionRow,
  sessionsOf,
  sessionWithStaff,
  touchSession,
} from '../../stores/sessions.ts';
import type { StaffRow } from '../../stores/staff.ts';
import { randomToken } from '../crypto/random.ts';

export interface SessionPolicy {
  idleMinutes: number;
  absoluteHours: number;
}

export type Session = SessionRow;
export type StaffMember = StaffRow;

/** Activity is written at most this often, so reading a page is not a write per request. */
const TOUCH_INTERVAL_MS = 60_000;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

export async function createSession(
  tx: Tx,
  staffId: number,
  client: ClientInfo,
  policy: SessionPolicy,
  now: Date,
  method: Session['method'] = 'password',
): Promise<{ token: string; session: Session }> {
  const id = randomToken();
  const secret = randomToken();
  const session = await insertSession(tx, {
    id,
    staffId,
    secretHash: hashSecret(secret),
    createdAt: now,
    lastActiveAt: now,
    expiresAt: new Date(now.getTime() + policy.absoluteHours * 3_600_000),
    // single sign-on: the provider gave the second factor (src/core/auth/sso.ts)
    mfaVerifiedAt: method === 'sso' ? now : null,
    method,
    ip: client.ip,
    userAgent: client.userAgent?.slice(0, 512) ?? null,
  });
  return { token: `${id}.${secret}`, session };
}

export function sessionEnd(session: Session, policy: SessionPolicy): Date {
  return new Date(Math.min(session.expiresAt.getTime(), session.lastActiveAt.getTime() + policy.idleMinutes * 60_000));
}

/**
 * The session and its staff member, or null (and the session deleted) when the token is wrong,
 * expired or the account disabled. Most requests only read; a write transaction runs only to
 * remove an ended session or, at most once a minute, to mark the session active.
 */
export async function validateSessionToken(
  database: Database,
  token: string,
  policy: SessionPolicy,
  now: Date,
): Promise<{ session: Session; staff: StaffMember } | null> {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 64 || secret.length > 64) return null;
  const row = await database.read((r) => sessionWithStaff(r, id));
  if (!row) return null;
  const { session, staff: member } = row;
  if (!timingSafeEqual(hashSecret(secret), session.secretHash)) return null;
  if (sessionEnd(session, policy) <= now || member.status === 'disabled') {
    await database.transaction((tx) => deleteSession(tx, session.id));
    return null;
  }
  if (now.getTime() - session.lastActiveAt.getTime() >= TOUCH_INTERVAL_MS) {
    // A conditional UPDATE: concurrent requests of one session write it once (src/stores/sessions.ts).
    await database.transaction((tx) => touchSession(tx, session.id, now, new Date(now.getTime() - TOUCH_INTERVAL_MS)));
    session.lastActiveAt = now;
  }
  return { session, staff: member };
}

export function markSessionMfaVerified(tx: Tx, sessionId: string, now: Date): Promise<void> {
  return markSessionVerified(tx, sessionId, now);
}

export async function invalidateSession(tx: Tx, sessionId: string): Promise<void> {
  await deleteSession(tx, sessionId);
}

/** Ends every session of a staff member except `keepId` (if given); returns how many ended. */
export function invalidateSessionsOf(tx: Tx, staffId: number, keepId?: string): Promise<number> {
  return deleteSessionsOf(tx, staffId, keepId);
}

/** The staff member's sessions, most recently active first. */
export function listSessions(database: Database, staffId: number): Promise<Session[]> {
  return database.read((r) => sessionsOf(r, staffId));
}

export interface SessionCookie {
  name: string;
  secure: boolean;
}

/** `__Host-` pins the cookie to this origin over https; plain http (local use) cannot carry the prefix. */
export function sessionCookie(https: boolean): SessionCookie {
  return { name: https ? '__Host-candor_session' : 'candor_session', secure: https };
}
