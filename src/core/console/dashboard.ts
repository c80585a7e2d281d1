/** The numbers on the console's dashboard: only what exists so far. */
import { count, eq, gt, gte } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { auditLog, staff, staffSessions } from '../../../db/schema.ts';
import { timesRecorded } from '../audit/repeats.ts';

export interface DashboardCounts {
  activeStaff: number;
  invitedStaff: number;
  activeSessions: number;
  auditEntriesToday: number;
  failedSignInsToday: number;
}

export function dashboardCounts(db: Db, now: Date): DashboardCounts {
  const dayAgo = new Date(now.getTime() - 86_400_000);
  const n = (rows: { n: number }[]) => rows[0]?.n ?? 0;
  return {
    activeStaff: n(db.select({ n: count() }).from(staff).where(eq(staff.status, 'active')).all()),
    invitedStaff: n(db.select({ n: count() }).from(staff).where(eq(staff.status, 'invited')).all()),
    activeSessions: n(db.select({ n: count() }).from(staffSessions).where(gt(staffSessions.expiresAt, now)).all()),
    auditEntriesToday: n(db.select({ n: count() }).from(auditLog).where(gte(auditLog.at, dayAgo)).all()),
    // Repeated failures are one entry and a count (audit/repeats.ts): the count is what happened.
    failedSignInsToday: timesRecorded(db, 'auth.sign_in.failed', dayAgo),
  };
}
