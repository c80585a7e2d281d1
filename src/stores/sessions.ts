/**
 * Staff sessions (`staff_sessions`), on SQLite and PostgreSQL alike. The convention is
 * src/stores/rate-limits.ts's; what a session means (its token, its end) is
 * src/core/auth/session.ts's.
 *
 * A session's activity is written by one conditional UPDATE (`touchSession`: only when the last
 * write is older than the interval), so the requests of one browser arriving together write it at
 * most once and never move it back.
 */
import { and, eq, gt, lte, ne, notInArray } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { staff, staffSessions } from '../../db/schema.ts';

export type SessionRow = typeof staffSessions.$inferSelect;
type StaffRow = typeof staff.$inferSelect;

/** `method` defaults to a password sign-in. */
export type NewSession = Omit<SessionRow, 'trustCenterId' | 'method'> & { method?: SessionRow['method'] };

export async function insertSession(tx: Tx, session: NewSession): Promise<SessionRow> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.staffSessions)
    .values({ ...session, trustCenterId: q.trustCenter })
    .returning();
  const row = rows[0];
  if (!row) throw new Error('the session was not inserted');
  return row;
}

/** The session of this id with its staff member. */
export async function sessionWithStaff(r: Reader | Tx, id: string): Promise<{ session: SessionRow; staff: StaffRow } | undefined> {
  const q = reading(r);
  const { staffSessions: ss, staff: s } = q.t;
  const rows = await q.db
    .select({ session: ss, staff: s })
    .from(ss)
    .innerJoin(s, and(eq(s.id, ss.staffId), eq(s.trustCenterId, q.trustCenter)))
    .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.id, id)))
    .limit(1);
  return rows[0];
}

/**
 * Marks the session active at `now` when its activity was last written at or before `staleBefore`;
 * whether it wrote. One conditional UPDATE: of concurrent touches one writes, the others find it fresh.
 */
export async function touchSession(tx: Tx, id: string, now: Date, staleBefore: Date): Promise<boolean> {
  const q = query(tx);
  const ss = q.t.staffSessions;
  const changed = affected(
    await q.db
      .update(ss)
      .set({ lastActiveAt: now })
      .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.id, id), lte(ss.lastActiveAt, staleBefore))),
  );
  return changed === 1;
}

export async function markSessionVerified(tx: Tx, id: string, now: Date): Promise<void> {
  const q = query(tx);
  const ss = q.t.staffSessions;
  await q.db
    .update(ss)
    .set({ mfaVerifiedAt: now })
    .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.id, id)));
}

/** Removes the session; how many (0 or 1). */
export async function deleteSession(tx: Tx, id: string): Promise<number> {
  const q = query(tx);
  const ss = q.t.staffSessions;
  return affected(await q.db.delete(ss).where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.id, id))));
}

/** Removes every session of the staff member but `keepId`; how many. */
export async function deleteSessionsOf(tx: Tx, staffId: number, keepId?: string): Promise<number> {
  const q = query(tx);
  const ss = q.t.staffSessions;
  return affected(
    await q.db
      .delete(ss)
      .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.staffId, staffId), keepId === undefined ? undefined : ne(ss.id, keepId))),
  );
}

/** The staff member's sessions, most recently active first. */
export async function sessionsOf(r: Reader | Tx, staffId: number): Promise<SessionRow[]> {
  const q = reading(r);
  const ss = q.t.staffSessions;
  const rows = await q.db
    .select()
    .from(ss)
    .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.staffId, staffId)));
  return rows.sort((a, b) => b.lastActiveAt.getTime() - a.lastActiveAt.getTime());
}

/** Sessions whose absolute end is after `now` (the dashboard). */
export async function unexpiredSessionCount(r: Reader | Tx, now: Date): Promise<number> {
  const q = reading(r);
  const ss = q.t.staffSessions;
  return q.db.$count(ss, and(eq(ss.trustCenterId, q.trustCenter), gt(ss.expiresAt, now)));
}

/**
 * Ends every password session but those of break-glass owners (active owners marked break-glass), in
 * one statement; how many. Single sign-on's sessions stay. For the moment single sign-on becomes
 * required (src/core/auth/sso-requirement.ts).
 */
export async function deletePasswordSessionsButBreakGlass(tx: Tx): Promise<number> {
  const q = query(tx);
  const ss = q.t.staffSessions;
  const s = q.t.staff;
  const breakGlassOwners = q.db
    .select({ id: s.id })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.role, 'owner'), eq(s.status, 'active'), eq(s.breakGlass, true)));
  return affected(
    await q.db
      .delete(ss)
      .where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.method, 'password'), notInArray(ss.staffId, breakGlassOwners))),
  );
}

/** Ends the member's password sessions (not their single sign-on ones); how many. */
export async function deletePasswordSessionsOf(tx: Tx, staffId: number): Promise<number> {
  const q = query(tx);
  const ss = q.t.staffSessions;
  return affected(
    await q.db.delete(ss).where(and(eq(ss.trustCenterId, q.trustCenter), eq(ss.staffId, staffId), eq(ss.method, 'password'))),
  );
}
