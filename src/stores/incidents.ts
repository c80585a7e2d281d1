/**
 * Incidents, their services, updates, revisions and postmortems (`incidents`, `incident_components`,
 * `incident_updates`, `incident_revisions`, `postmortems`) on SQLite and PostgreSQL alike. What they
 * mean (the lifecycle, the audience, the notices) is src/core/incidents/'s. Convention:
 * src/stores/rate-limits.ts.
 *
 * Concurrency: everything that changes an incident (an update, an edit, a postmortem) first takes
 * the incident's row with `incidentForUpdate`, and an edit of an update also the update's row with
 * `updateForEdit`. On PostgreSQL these are `SELECT … FOR UPDATE`: a second writer of the same
 * incident waits there until the first commits, then reads the state the first left, so the
 * lifecycle checks (resolved takes no more updates, maintenance never goes back to scheduled) and
 * the "before" of every revision are decided on the latest state. SQLite's transactions never
 * interleave (`BEGIN IMMEDIATE`), so there the plain read is enough.
 */
import { and, asc, desc, eq, gte, inArray, isNotNull, isNull, lt, lte, max, ne, notInArray, or } from 'drizzle-orm';
import { query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { incidentRevisions, incidents, incidentUpdates } from '../../db/schema/incidents.ts';
import type { postmortems } from '../../db/schema/postmortems.ts';
import { incidents as pgIncidents, incidentUpdates as pgIncidentUpdates } from '../../db/schema-pg/incidents.ts';
import type { ComponentStatus, IncidentSeverity, IncidentStatus } from '../core/incidents/types.ts';

export type IncidentRow = typeof incidents.$inferSelect;
export type NewIncident = Omit<typeof incidents.$inferInsert, 'id' | 'trustCenterId'>;
export type UpdateRow = typeof incidentUpdates.$inferSelect;
export type NewRevision = Omit<typeof incidentRevisions.$inferInsert, 'id' | 'trustCenterId'>;
export type PostmortemRow = Omit<typeof postmortems.$inferSelect, 'trustCenterId'>;

// ---------------------------------------------------------------- incidents

/** One incident, or undefined. */
export async function incidentRow(r: Reader | Tx, id: number): Promise<IncidentRow | undefined> {
  const q = reading(r);
  const i = q.t.incidents;
  const rows = await q.db
    .select()
    .from(i)
    .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, id)))
    .limit(1);
  return rows[0];
}

/**
 * The incident, for the rest of the transaction to decide on and change: on PostgreSQL its row is
 * locked (`FOR UPDATE`) until the transaction ends, so changes to one incident run one after the
 * other, each on the state the one before left (see the header).
 */
export async function incidentForUpdate(tx: Tx, id: number): Promise<IncidentRow | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const i = pgIncidents;
    const rows = await tx.db
      .select()
      .from(i)
      .where(and(eq(i.trustCenterId, tx.trustCenter), eq(i.id, id)))
      .limit(1)
      .for('update');
    return rows[0];
  }
  return incidentRow(tx, id);
}

export async function insertIncident(tx: Tx, values: NewIncident): Promise<number> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.incidents)
    .values({ ...values, trustCenterId: q.trustCenter })
    .returning({ id: q.t.incidents.id });
  const row = rows[0];
  if (!row) throw new Error('the incident was not inserted');
  return row.id;
}

/** The incident's lifecycle state after an update (and, given, when it started). */
export async function setIncidentState(
  tx: Tx,
  id: number,
  state: { status: IncidentStatus; nextUpdateBy: Date | null; resolvedAt: Date | null; startedAt?: Date },
): Promise<void> {
  const q = query(tx);
  const i = q.t.incidents;
  await q.db
    .update(i)
    .set(state)
    .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, id)));
}

export async function setIncidentHeadline(tx: Tx, id: number, title: string, severity: IncidentSeverity): Promise<void> {
  const q = query(tx);
  const i = q.t.incidents;
  await q.db
    .update(i)
    .set({ title, severity })
    .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, id)));
}

export interface IncidentFilter {
  open?: boolean;
  publicOnly?: boolean;
  since?: Date;
  /** only resolved incidents (the staff API's `status=resolved`) */
  resolved?: boolean;
  /** keyset paging: incidents listed after this one (newest first: started earlier, or at once with a lower id) */
  before?: { startedAt: Date; id: number };
  /** only maintenance (true), or everything but maintenance (false) */
  maintenance?: boolean;
  limit: number;
}

/** Incidents newest first. */
export async function incidentRows(r: Reader | Tx, filter: IncidentFilter): Promise<IncidentRow[]> {
  const q = reading(r);
  const i = q.t.incidents;
  return q.db
    .select()
    .from(i)
    .where(
      and(
        eq(i.trustCenterId, q.trustCenter),
        filter.open ? ne(i.status, 'resolved') : undefined,
        filter.publicOnly ? eq(i.public, true) : undefined,
        filter.since ? gte(i.startedAt, filter.since) : undefined,
        filter.resolved ? eq(i.status, 'resolved') : undefined,
        filter.before
          ? or(lt(i.startedAt, filter.before.startedAt), and(eq(i.startedAt, filter.before.startedAt), lt(i.id, filter.before.id)))
          : undefined,
        filter.maintenance === undefined ? undefined : filter.maintenance ? eq(i.kind, 'maintenance') : ne(i.kind, 'maintenance'),
      ),
    )
    .orderBy(desc(i.startedAt), desc(i.id))
    .limit(filter.limit);
}

/**
 * Public incidents begun by `to` (not maintenance still waiting) and not resolved before `from`,
 * newest first.
 */
export async function publicIncidentRowsBetween(r: Reader | Tx, from: Date, to: Date, limit: number): Promise<IncidentRow[]> {
  const q = reading(r);
  const i = q.t.incidents;
  return q.db
    .select()
    .from(i)
    .where(
      and(
        eq(i.trustCenterId, q.trustCenter),
        eq(i.public, true),
        ne(i.status, 'scheduled'),
        lte(i.startedAt, to),
        or(ne(i.status, 'resolved'), gte(i.resolvedAt, from), and(isNull(i.resolvedAt), gte(i.startedAt, from))),
      ),
    )
    .orderBy(desc(i.startedAt), desc(i.id))
    .limit(limit);
}

// ---------------------------------------------------------------- services

/** The services each of these incidents affects, with the state it leaves each in, by component id. */
export async function componentsOf(
  r: Reader | Tx,
  incidentIds: readonly number[],
): Promise<Map<number, { componentId: string; status: ComponentStatus }[]>> {
  const found = new Map<number, { componentId: string; status: ComponentStatus }[]>(incidentIds.map((id) => [id, []]));
  if (incidentIds.length === 0) return found;
  const q = reading(r);
  const c = q.t.incidentComponents;
  const rows = await q.db
    .select({ incidentId: c.incidentId, componentId: c.componentId, status: c.status })
    .from(c)
    .where(and(eq(c.trustCenterId, q.trustCenter), inArray(c.incidentId, [...incidentIds])));
  // Sorted here, by code point: ORDER BY follows the database's collation, which PostgreSQL's may set otherwise.
  rows.sort((a, b) => (a.componentId < b.componentId ? -1 : a.componentId > b.componentId ? 1 : 0));
  for (const row of rows) found.get(row.incidentId)?.push({ componentId: row.componentId, status: row.status });
  return found;
}

/** Sets the state the incident leaves a service in (adding the service to it). */
export async function setIncidentComponent(tx: Tx, incidentId: number, componentId: string, status: ComponentStatus): Promise<void> {
  const q = query(tx);
  const c = q.t.incidentComponents;
  await q.db
    .insert(c)
    .values({ incidentId, componentId, status, trustCenterId: q.trustCenter })
    .onConflictDoUpdate({
      target: [c.incidentId, c.componentId],
      set: { status },
      setWhere: eq(c.trustCenterId, q.trustCenter),
    });
}

/** Every service the incident touched back to operational (it is resolved). */
export async function resolveIncidentComponents(tx: Tx, incidentId: number): Promise<void> {
  const q = query(tx);
  const c = q.t.incidentComponents;
  await q.db
    .update(c)
    .set({ status: 'operational' })
    .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.incidentId, incidentId)));
}

/** The state of services in open (begun) public incidents, one row per incident and service. */
export async function openPublicComponentStates(r: Reader | Tx): Promise<{ componentId: string; status: ComponentStatus }[]> {
  const q = reading(r);
  const { incidentComponents: c, incidents: i } = q.t;
  return q.db
    .select({ componentId: c.componentId, status: c.status })
    .from(c)
    .innerJoin(i, eq(i.id, c.incidentId))
    .where(
      and(
        eq(c.trustCenterId, q.trustCenter),
        eq(i.trustCenterId, q.trustCenter),
        notInArray(i.status, ['resolved', 'scheduled']),
        eq(i.public, true),
      ),
    );
}

// ---------------------------------------------------------------- updates

export async function insertUpdate(
  tx: Tx,
  values: { incidentId: number; status: IncidentStatus; body: string; publishedAt: Date; createdBy: number | null },
): Promise<number> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.incidentUpdates)
    .values({ ...values, trustCenterId: q.trustCenter })
    .returning({ id: q.t.incidentUpdates.id });
  const row = rows[0];
  if (!row) throw new Error('the update was not inserted');
  return row.id;
}

/** Records the notification an update went out with (null: none) and whether subscribers were told. */
export async function setUpdateNotification(tx: Tx, updateId: number, notificationId: number | null, notified: boolean): Promise<void> {
  const q = query(tx);
  const u = q.t.incidentUpdates;
  await q.db
    .update(u)
    .set({ notificationId, notified })
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.id, updateId)));
}

/** An update as the pages show it: with when its text was last edited. */
export interface UpdateWithEdit {
  id: number;
  status: IncidentStatus;
  body: string;
  publishedAt: Date;
  notified: boolean;
  notificationId: number | null;
  editedAt: Date | null;
}

/** What a read of updates selects: each update as the pages show it. */
const updateColumns = (u: ReturnType<typeof reading>['t']['incidentUpdates']) => ({
  id: u.id,
  status: u.status,
  body: u.body,
  publishedAt: u.publishedAt,
  notified: u.notified,
  notificationId: u.notificationId,
});

/** The incident's updates, newest first (all, or the newest `limit`), each with when it was last edited. */
export async function updatesOf(r: Reader | Tx, incidentId: number, limit?: number): Promise<UpdateWithEdit[]> {
  const q = reading(r);
  const { incidentUpdates: u, incidentRevisions: v } = q.t;
  const base = q.db
    .select(updateColumns(u))
    .from(u)
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, incidentId)))
    .orderBy(desc(u.publishedAt), desc(u.id));
  const rows = limit === undefined ? await base : await base.limit(limit);
  if (rows.length === 0) return [];
  const edits = await q.db
    .select({ updateId: v.updateId, at: max(v.at) })
    .from(v)
    .where(
      and(
        eq(v.trustCenterId, q.trustCenter),
        eq(v.incidentId, incidentId),
        inArray(
          v.updateId,
          rows.map((row) => row.id),
        ),
      ),
    )
    .groupBy(v.updateId);
  const editedAt = new Map(edits.map((e) => [e.updateId, e.at]));
  return rows.map((row) => ({ ...row, editedAt: editedAt.get(row.id) ?? null }));
}

/** The updates of several incidents at once (newest first within each), each with when it was last edited: two queries for a list, not two per incident. */
export async function updatesOfIncidents(r: Reader | Tx, incidentIds: readonly number[]): Promise<Map<number, UpdateWithEdit[]>> {
  const q = reading(r);
  const { incidentUpdates: u, incidentRevisions: v } = q.t;
  const byIncident = new Map<number, UpdateWithEdit[]>(incidentIds.map((id) => [id, []]));
  // in chunks: an IN list stays far below either engine's limit on bound parameters
  for (let i = 0; i < incidentIds.length; i += 500) {
    const ids = incidentIds.slice(i, i + 500);
    const rows = await q.db
      .select({ incidentId: u.incidentId, ...updateColumns(u) })
      .from(u)
      .where(and(eq(u.trustCenterId, q.trustCenter), inArray(u.incidentId, ids)))
      .orderBy(desc(u.publishedAt), desc(u.id));
    const edits = await q.db
      .select({ updateId: v.updateId, at: max(v.at) })
      .from(v)
      .where(and(eq(v.trustCenterId, q.trustCenter), inArray(v.incidentId, ids), isNotNull(v.updateId)))
      .groupBy(v.updateId);
    const editedAt = new Map(edits.map((e) => [e.updateId, e.at]));
    for (const { incidentId, ...row } of rows) byIncident.get(incidentId)?.push({ ...row, editedAt: editedAt.get(row.id) ?? null });
  }
  return byIncident;
}

/** The incident's updates oldest first, as the breach notices count them. */
export async function updatesInOrder(
  r: Reader | Tx,
  incidentId: number,
): Promise<{ id: number; status: IncidentStatus; publishedAt: Date; notificationId: number | null }[]> {
  const q = reading(r);
  const u = q.t.incidentUpdates;
  return q.db
    .select({ id: u.id, status: u.status, publishedAt: u.publishedAt, notificationId: u.notificationId })
    .from(u)
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, incidentId)))
    .orderBy(asc(u.publishedAt), asc(u.id));
}

/**
 * The update of this incident, for an edit to decide on and change: on PostgreSQL its row is locked
 * (`FOR UPDATE`) until the transaction ends, so two edits of one update each revise the text the
 * other left. Call it after `incidentForUpdate` (always the incident first: one lock order).
 */
export async function updateForEdit(
  tx: Tx,
  incidentId: number,
  updateId: number,
): Promise<{ id: number; body: string; publishedAt: Date } | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const u = pgIncidentUpdates;
    const rows = await tx.db
      .select({ id: u.id, body: u.body, publishedAt: u.publishedAt })
      .from(u)
      .where(and(eq(u.trustCenterId, tx.trustCenter), eq(u.id, updateId), eq(u.incidentId, incidentId)))
      .limit(1)
      .for('update');
    return rows[0];
  }
  const q = query(tx);
  const u = q.t.incidentUpdates;
  const rows = await q.db
    .select({ id: u.id, body: u.body, publishedAt: u.publishedAt })
    .from(u)
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.id, updateId), eq(u.incidentId, incidentId)))
    .limit(1);
  return rows[0];
}

export async function setUpdateBody(tx: Tx, updateId: number, body: string): Promise<void> {
  const q = query(tx);
  const u = q.t.incidentUpdates;
  await q.db
    .update(u)
    .set({ body })
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.id, updateId)));
}

/** Each update's notification and how many recipients it was enqueued for. */
export async function updateNotificationCounts(
  r: Reader | Tx,
  incidentId: number,
): Promise<{ updateId: number; notificationId: number; recipients: number }[]> {
  const q = reading(r);
  const { incidentUpdates: u, notifications: n } = q.t;
  return q.db
    .select({ updateId: u.id, notificationId: n.id, recipients: n.recipientCount })
    .from(u)
    .innerJoin(n, eq(n.id, u.notificationId))
    .where(and(eq(u.trustCenterId, q.trustCenter), eq(n.trustCenterId, q.trustCenter), eq(u.incidentId, incidentId)));
}

// ---------------------------------------------------------------- revisions

export async function insertRevisions(tx: Tx, revisions: readonly NewRevision[]): Promise<void> {
  if (revisions.length === 0) return;
  const q = query(tx);
  await q.db.insert(q.t.incidentRevisions).values(revisions.map((r) => ({ ...r, trustCenterId: q.trustCenter })));
}

/** When the incident's own fields (title, severity) were last edited, or null. */
export async function incidentEditedAt(r: Reader | Tx, incidentId: number): Promise<Date | null> {
  const q = reading(r);
  const v = q.t.incidentRevisions;
  const rows = await q.db
    .select({ at: max(v.at) })
    .from(v)
    .where(and(eq(v.trustCenterId, q.trustCenter), eq(v.incidentId, incidentId), isNull(v.updateId)));
  return rows[0]?.at ?? null;
}

/** The revisions of an incident in the order they were made. */
export async function revisionsOf(
  r: Reader | Tx,
  incidentId: number,
): Promise<Omit<typeof incidentRevisions.$inferSelect, 'trustCenterId'>[]> {
  const q = reading(r);
  const v = q.t.incidentRevisions;
  return q.db
    .select({
      id: v.id,
      incidentId: v.incidentId,
      updateId: v.updateId,
      field: v.field,
      before: v.before,
      after: v.after,
      notified: v.notified,
      at: v.at,
      by: v.by,
    })
    .from(v)
    .where(and(eq(v.trustCenterId, q.trustCenter), eq(v.incidentId, incidentId)))
    .orderBy(asc(v.id));
}

// ---------------------------------------------------------------- postmortems

export async function postmortemRow(r: Reader | Tx, incidentId: number): Promise<PostmortemRow | undefined> {
  const q = reading(r);
  const p = q.t.postmortems;
  const rows = await q.db
    .select({
      incidentId: p.incidentId,
      body: p.body,
      publishedAt: p.publishedAt,
      publishedBy: p.publishedBy,
      notificationId: p.notificationId,
    })
    .from(p)
    .where(and(eq(p.trustCenterId, q.trustCenter), eq(p.incidentId, incidentId)))
    .limit(1);
  return rows[0];
}

/**
 * The incident's postmortem. Its key is the incident: callers hold the incident's row lock
 * (`incidentForUpdate`) and checked there is none, so the insert does not race another.
 */
export async function insertPostmortem(tx: Tx, row: PostmortemRow): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.postmortems).values({ ...row, trustCenterId: q.trustCenter });
}

/** How many incidents there are. */
export async function countIncidents(r: Reader | Tx): Promise<number> {
  const q = reading(r);
  return q.db.$count(q.t.incidents, eq(q.t.incidents.trustCenterId, q.trustCenter));
}
