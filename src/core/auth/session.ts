/**
 * Staff sessions, after Lucia's current guide: the token given to the
 * browser is `<id>.<secret>`; the database keeps only SHA-256(secret), and
 * the comparison is constant-time. A session ends after a period of
 * inactivity or at an absolute lifetime, whichever comes first.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { and, eq, ne } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { staff, staffSessions } from '../../../db/schema.ts';
import { randomToken } from '../crypto/random.ts';

export interface SessionPolicy {
  idleMinutes: number;
  absoluteHours: number;
}

export type Session = typeof staffSessions.$inferSelect;
export type StaffMember = typeof staff.$inferSelect;

/** Activity is written at most this often, so reading a page is not a write per request. */
const TOUCH_INTERVAL_MS = 60_000;

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

export function createSession(
  db: Db,
  staffId: number,
  client: ClientInfo,
  policy: SessionPolicy,
  now: Date,
): { token: string; session: Session } {
  const id = randomToken();
  const secret = randomToken();
  const session = db
    .insert(staffSessions)
    .values({
      id,
      staffId,
      secretHash: hashSecret(secret),
      createdAt: now,
      lastActiveAt: now,
      expiresAt: new Date(now.getTime() + policy.absoluteHours * 3_600_000),
      mfaVerifiedAt: null,
      ip: client.ip,
      userAgent: client.userAgent?.slice(0, 512) ?? null,
    })
    .returning()
    .get();
  return { token: `${id}.${secret}`, session };
}

export function sessionEnd(session: Session, policy: SessionPolicy): Date {
  return new Date(Math.min(session.expiresAt.getTime(), session.lastActiveAt.getTime() + policy.idleMinutes * 60_000));
}

/** The session and its staff member, or null (and the session deleted) when the token is wrong, expired or the account disabled. */
export function validateSessionToken(
  db: Db,
  token: string,
  policy: SessionPolicy,
  now: Date,
): { session: Session; staff: StaffMember } | null {
  const [id, secret, extra] = token.split('.');
  if (!id || !secret || extra !== undefined || id.length > 64 || secret.length > 64) return null;
  const row = db.select().from(staffSessions).innerJoin(staff, eq(staff.id, staffSessions.staffId)).where(eq(staffSessions.id, id)).get();
  if (!row) return null;
  const { staff_sessions: session, staff: member } = row;
  if (!timingSafeEqual(hashSecret(secret), session.secretHash)) return null;
  if (sessionEnd(session, policy) <= now || member.status === 'disabled') {
    invalidateSession(db, session.id);
    return null;
  }
  if (now.getTime() - session.lastActiveAt.getTime() >= TOUCH_INTERVAL_MS) {
    db.update(staffSessions).set({ lastActiveAt: now }).where(eq(staffSessions.id, session.id)).run();
    session.lastActiveAt = now;
  }
  return { session, staff: member };
}

export function markSessionMfaVerified(db: Db, sessionId: string, now: Date): void {
  db.update(staffSessions).set({ mfaVerifiedAt: now }).where(eq(staffSessions.id, sessionId)).run();
}

export function invalidateSession(db: Db, sessionId: string): void {
  db.delete(staffSessions).where(eq(staffSessions.id, sessionId)).run();
}

/** Ends every session of a staff member except `keepId` (if given); returns how many ended. */
export function invalidateSessionsOf(db: Db, staffId: number, keepId?: string): number {
  const where = keepId ? and(eq(staffSessions.staffId, staffId), ne(staffSessions.id, keepId)) : eq(staffSessions.staffId, staffId);
  return db.delete(staffSessions).where(where).run().changes;
}

export function listSessions(db: Db, staffId: number): Session[] {
  return db.select().from(staffSessions).where(eq(staffSessions.staffId, staffId)).all();
}

export interface SessionCookie {
  name: string;
  secure: boolean;
}

/** `__Host-` pins the cookie to this origin over https; plain http (local use) cannot carry the prefix. */
export function sessionCookie(https: boolean): SessionCookie {
  return { name: https ? '__Host-candor_session' : 'candor_session', secure: https };
}
