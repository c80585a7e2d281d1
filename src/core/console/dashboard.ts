/**
 * The console's dashboard: first what needs a person now (open incidents
 * and how late their next update is, breach clocks running, maintenance in
 * progress or starting soon, failed deliveries, quarantined addresses,
 * objections waiting, a failed or overdue backup), then the backups and
 * the counters of staff and sessions.
 */
import type { Database } from '../../../db/engine/types.ts';
import {
  auditEntriesSince,
  failedDeliveriesSince,
  maintenanceStartingBy,
  openIncidentRows,
  openObjectionCount,
  quarantinedCounts,
  recentBreaches,
} from '../../stores/dashboard.ts';
import { unexpiredSessionCount } from '../../stores/sessions.ts';
import { staffCountWithStatus } from '../../stores/staff.ts';
import { timesRecorded } from '../audit/repeats.ts';
import { type BackupStatus, backupStatus } from '../backup/runs.ts';
import type { Site } from '../content/schema.ts';
import { type BreachClock, clockNeedsAttention, clocksOf, readBreachNotices, readBreachRecord } from '../incidents/breach.ts';
import type { IncidentKind, IncidentSeverity, IncidentStatus } from '../incidents/types.ts';

export interface DashboardCounts {
  activeStaff: number;
  invitedStaff: number;
  activeSessions: number;
  auditEntriesToday: number;
  failedSignInsToday: number;
}

export async function dashboardCounts(database: Database, now: Date): Promise<DashboardCounts> {
  const dayAgo = new Date(now.getTime() - 86_400_000);
  const counts = await database.read(async (r) => ({
    activeStaff: await staffCountWithStatus(r, 'active'),
    invitedStaff: await staffCountWithStatus(r, 'invited'),
    activeSessions: await unexpiredSessionCount(r, now),
    auditEntriesToday: await auditEntriesSince(r, dayAgo),
  }));
  // Repeated failures are one entry and a count (audit/repeats.ts): the count is what happened.
  return { ...counts, failedSignInsToday: await timesRecorded(database, 'auth.sign_in.failed', dayAgo) };
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

/**
 * What needs a person now, most urgent first within each kind. The dashboard's own reads run in one
 * snapshot (src/stores/dashboard.ts); breach clocks and backups are read after it through their
 * capabilities, not on the stores yet (the legacy connection: SQLite only, issue 15).
 */
export async function attention(database: Database, site: Site, now: Date): Promise<Attention> {
  const failedSince = new Date(now.getTime() - RECENT_MS);
  const read = await database.read(async (r) => ({
    open: await openIncidentRows(r),
    // breaches still open, or closed within the week: a clock that is due or missed needs someone, and so
    // does a notice that reached no one or not everyone (incomplete, unreached)
    breaches: await recentBreaches(r, 50),
    maintenance: await maintenanceStartingBy(r, new Date(now.getTime() + SOON_MS)),
    failed: await failedDeliveriesSince(r, failedSince),
    quarantined: await quarantinedCounts(r, failedSince),
    objectionsWaiting: await openObjectionCount(r),
  }));
  const open = read.open
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

  const breaches = read.breaches.filter(
    (b) => b.status !== 'resolved' || (b.resolvedAt && now.getTime() - b.resolvedAt.getTime() < RECENT_MS),
  );
  // Each breach's record and notices in one snapshot, the clocks computed from them.
  const clocks = await database.read(async (r) => {
    const running: RunningClock[] = [];
    for (const b of breaches) {
      const record = await readBreachRecord(r, b.id);
      if (!record) continue;
      for (const c of clocksOf(site, await readBreachNotices(r, b.id), record, now))
        if (clockNeedsAttention(c)) running.push({ ...c, incidentId: b.id, title: b.title });
    }
    return running;
  });
  clocks.sort((a, b) => (a.deadline?.getTime() ?? Infinity) - (b.deadline?.getTime() ?? Infinity));

  const maintenance = read.maintenance.flatMap((row): MaintenanceSoon[] =>
    row.windowStartsAt && row.windowEndsAt
      ? [{ id: row.id, title: row.title, status: row.status, startsAt: row.windowStartsAt, endsAt: row.windowEndsAt }]
      : [],
  );

  return {
    openIncidents: open,
    clocks,
    maintenance,
    failedDeliveries: { total: read.failed.reduce((sum, f) => sum + f.failed, 0), notifications: read.failed.slice(0, 5) },
    quarantined: { total: read.quarantined.total, lastWeek: read.quarantined.since },
    objectionsWaiting: read.objectionsWaiting,
    backups: await backupStatus(database, site.policies.backups.enabled, now),
  };
}
