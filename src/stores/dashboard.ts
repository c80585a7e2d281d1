/**
 * The console dashboard's reads (src/core/console/dashboard.ts), on SQLite and PostgreSQL alike.
 * Read-only queries of other capabilities' tables (incidents, breach details, deliveries,
 * notifications, recipients, objections, the audit log) and of staff and sessions, each scoped to
 * `q.trustCenter`; the convention is src/stores/rate-limits.ts's. They change nothing, so they
 * take a `Reader` and run in the page's one snapshot. Rows come back unsorted where ORDER BY would
 * compare text (collations differ); time and number orders are the database's.
 */
import { and, asc, count, desc, eq, gte, isNotNull, lte, ne, notInArray } from 'drizzle-orm';
import { toInteger } from '../../db/engine/common.ts';
import { reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { incidents } from '../../db/schema.ts';

export type IncidentRow = typeof incidents.$inferSelect;

/** Audit entries written since `since`. */
export async function auditEntriesSince(r: Reader | Tx, since: Date): Promise<number> {
  const q = reading(r);
  const a = q.t.auditLog;
  return q.db.$count(a, and(eq(a.trustCenterId, q.trustCenter), gte(a.at, since)));
}

/** Incidents neither resolved nor scheduled, maintenance aside, oldest first. */
export async function openIncidentRows(r: Reader | Tx): Promise<IncidentRow[]> {
  const q = reading(r);
  const i = q.t.incidents;
  return q.db
    .select()
    .from(i)
    .where(and(eq(i.trustCenterId, q.trustCenter), notInArray(i.status, ['resolved', 'scheduled']), ne(i.kind, 'maintenance')))
    .orderBy(asc(i.startedAt), asc(i.id));
}

export interface BreachSummary {
  id: number;
  title: string;
  status: IncidentRow['status'];
  resolvedAt: Date | null;
}

/** The latest `limit` breaches with their details, newest first. */
export async function recentBreaches(r: Reader | Tx, limit: number): Promise<BreachSummary[]> {
  const q = reading(r);
  const { incidents: i, breachDetails: b } = q.t;
  return q.db
    .select({ id: i.id, title: i.title, status: i.status, resolvedAt: i.resolvedAt })
    .from(i)
    .innerJoin(b, and(eq(b.incidentId, i.id), eq(b.trustCenterId, q.trustCenter)))
    .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.kind, 'breach')))
    .orderBy(desc(i.startedAt), desc(i.id))
    .limit(limit);
}

/** Maintenance not resolved whose window starts by `startsBy`, soonest first. */
export async function maintenanceStartingBy(r: Reader | Tx, startsBy: Date): Promise<IncidentRow[]> {
  const q = reading(r);
  const i = q.t.incidents;
  return q.db
    .select()
    .from(i)
    .where(
      and(
        eq(i.trustCenterId, q.trustCenter),
        eq(i.kind, 'maintenance'),
        isNotNull(i.windowStartsAt),
        ne(i.status, 'resolved'),
        lte(i.windowStartsAt, startsBy),
      ),
    )
    .orderBy(asc(i.windowStartsAt), asc(i.id));
}

export interface FailedCount {
  notificationId: number;
  title: string;
  failed: number;
}

/** Notifications with deliveries that failed since `since`, most failures first. */
export async function failedDeliveriesSince(r: Reader | Tx, since: Date): Promise<FailedCount[]> {
  const q = reading(r);
  const { deliveries: d, notifications: n } = q.t;
  const rows = await q.db
    .select({ notificationId: d.notificationId, title: n.title, failed: count() })
    .from(d)
    .innerJoin(n, and(eq(n.id, d.notificationId), eq(n.trustCenterId, q.trustCenter)))
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.status, 'failed'), gte(d.finishedAt, since)))
    .groupBy(d.notificationId, n.title);
  // Counts are strings on PostgreSQL (query.ts); sorted here, ties by notification.
  return rows
    .map((row) => ({ ...row, failed: toInteger(row.failed) }))
    .sort((a, b) => b.failed - a.failed || a.notificationId - b.notificationId);
}

/** Addresses quarantined (suppressed), and those of them suppressed since `since`. */
export async function quarantinedCounts(r: Reader | Tx, since: Date): Promise<{ total: number; since: number }> {
  const q = reading(r);
  const rc = q.t.recipients;
  const suppressed = and(eq(rc.trustCenterId, q.trustCenter), eq(rc.status, 'suppressed'));
  return {
    total: await q.db.$count(rc, suppressed),
    since: await q.db.$count(rc, and(suppressed, gte(rc.suppressedAt, since))),
  };
}

export async function openObjectionCount(r: Reader | Tx): Promise<number> {
  const q = reading(r);
  const o = q.t.objections;
  return q.db.$count(o, and(eq(o.trustCenterId, q.trustCenter), eq(o.status, 'open')));
}
