/**
 * The console's dashboard: first what needs a person now (open incidents
 * and how late their next update is, breach clocks running, maintenance in
 * progress or starting soon, failed deliveries, quarantined addresses,
 * objections waiting, a failed or overdue backup), then the backups and
 * the counters of staff and sessions.
 */
import { and, asc, count, desc, eq, gt, gte, isNotNull, lte, ne, notInArray } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import {
  auditLog,
  breachDetails,
  deliveries,
  incidents,
  notifications,
  objections,
  recipients,
  staff,
  staffSessions,
} from '../../../db/schema.ts';
import { timesRecorded } from '../audit/repeats.ts';
import { type BackupStatus, backupStatus } from '../backup/runs.ts';
import type { Site } from '../content/schema.ts';
import { type BreachClock, clockNeedsAttention } from '../incidents/breach.ts';
import { breachClocksLegacy, breachRecordLegacy } from '../incidents/legacy.ts';
import type { IncidentKind, IncidentSeverity, IncidentStatus } from '../incidents/types.ts';

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

export interface OpenIncident {
  id: number;
  title: string;
  kind: IncidentKind;
  severity: IncidentSeverity;
  status: IncidentStatus;
  startedAt: Date;
  nextUpdateBy: Date | null;
  /** minutes past the promised next update; null when it is not late (or nothing was promised) */
  lateMinutes: number | null;
}

export interface RunningClock extends BreachClock {
  incidentId: number;
  title: string;
}

export interface MaintenanceSoon {
  id: number;
  title: string;
  status: IncidentStatus;
  startsAt: Date;
  endsAt: Date;
}

export interface FailedNotification {
  notificationId: number;
  title: string;
  failed: number;
}

export interface Attention {
  openIncidents: OpenIncident[];
  clocks: RunningClock[];
  maintenance: MaintenanceSoon[];
  failedDeliveries: { total: number; notifications: FailedNotification[] };
  quarantined: { total: number; lastWeek: number };
  objectionsWaiting: number;
  /** the last backup and verified restore; needsAttention when the latest failed or one is overdue */
  backups: BackupStatus;
}

const HOUR = 3_600_000;
/** How far ahead maintenance counts as "starting soon". */
const SOON_MS = 24 * HOUR;
/** How far back failed deliveries and recently closed breaches still ask for attention. */
const RECENT_MS = 7 * 24 * HOUR;

/** What needs a person now, most urgent first within each kind. */
export function attention(db: Db, site: Site, now: Date): Attention {
  const open = db
    .select()
    .from(incidents)
    .where(and(notInArray(incidents.status, ['resolved', 'scheduled']), ne(incidents.kind, 'maintenance')))
    .orderBy(asc(incidents.startedAt))
    .all()
    .map(
      (row): OpenIncident => ({
        id: row.id,
        title: row.title,
        kind: row.kind,
        severity: row.severity,
        status: row.status,
        startedAt: row.startedAt,
        nextUpdateBy: row.nextUpdateBy,
        lateMinutes: row.nextUpdateBy && row.nextUpdateBy < now ? Math.floor((now.getTime() - row.nextUpdateBy.getTime()) / 60_000) : null,
      }),
    )
    .sort(
      (a, b) =>
        (b.lateMinutes ?? -1) - (a.lateMinutes ?? -1) || (a.nextUpdateBy?.getTime() ?? Infinity) - (b.nextUpdateBy?.getTime() ?? Infinity),
    );

  // breaches still open, or closed within the week: a clock that is due or missed needs someone, and so
  // does a notice that reached no one or not everyone (incomplete, unreached)
  const breaches = db
    .select({ id: incidents.id, title: incidents.title, status: incidents.status, resolvedAt: incidents.resolvedAt })
    .from(incidents)
    .innerJoin(breachDetails, eq(breachDetails.incidentId, incidents.id))
    .where(eq(incidents.kind, 'breach'))
    .orderBy(desc(incidents.startedAt))
    .limit(50)
    .all()
    .filter((b) => b.status !== 'resolved' || (b.resolvedAt && now.getTime() - b.resolvedAt.getTime() < RECENT_MS));
  const clocks = breaches.flatMap((b) => {
    const record = breachRecordLegacy(db, b.id);
    if (!record) return [];
    return breachClocksLegacy(db, site, b.id, record, now)
      .filter(clockNeedsAttention)
      .map((c): RunningClock => ({ ...c, incidentId: b.id, title: b.title }));
  });
  clocks.sort((a, b) => (a.deadline?.getTime() ?? Infinity) - (b.deadline?.getTime() ?? Infinity));

  const maintenance = db
    .select()
    .from(incidents)
    .where(
      and(
        eq(incidents.kind, 'maintenance'),
        isNotNull(incidents.windowStartsAt),
        ne(incidents.status, 'resolved'),
        lte(incidents.windowStartsAt, new Date(now.getTime() + SOON_MS)),
      ),
    )
    .orderBy(asc(incidents.windowStartsAt))
    .all()
    .flatMap((row): MaintenanceSoon[] =>
      row.windowStartsAt && row.windowEndsAt
        ? [{ id: row.id, title: row.title, status: row.status, startsAt: row.windowStartsAt, endsAt: row.windowEndsAt }]
        : [],
    );

  const failedSince = new Date(now.getTime() - RECENT_MS);
  const failed = db
    .select({ notificationId: deliveries.notificationId, title: notifications.title, failed: count() })
    .from(deliveries)
    .innerJoin(notifications, eq(notifications.id, deliveries.notificationId))
    .where(and(eq(deliveries.status, 'failed'), gte(deliveries.finishedAt, failedSince)))
    .groupBy(deliveries.notificationId, notifications.title)
    .orderBy(desc(count()))
    .all();

  const n = (rows: { n: number }[]) => rows[0]?.n ?? 0;
  return {
    openIncidents: open,
    clocks,
    maintenance,
    failedDeliveries: { total: failed.reduce((sum, f) => sum + f.failed, 0), notifications: failed.slice(0, 5) },
    quarantined: {
      total: n(db.select({ n: count() }).from(recipients).where(eq(recipients.status, 'suppressed')).all()),
      lastWeek: n(
        db
          .select({ n: count() })
          .from(recipients)
          .where(and(eq(recipients.status, 'suppressed'), gte(recipients.suppressedAt, failedSince)))
          .all(),
      ),
    },
    objectionsWaiting: n(db.select({ n: count() }).from(objections).where(eq(objections.status, 'open')).all()),
    backups: backupStatus(db, site.policies.backups.enabled, now),
  };
}
