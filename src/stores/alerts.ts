/**
 * Alerts from monitoring (`alert_drafts`, `alert_events`) on SQLite and PostgreSQL alike: the drafts
 * firing alerts open and fold into, and every notice received (append-only). What a draft means is
 * db/schema/automation.ts's and src/core/alerts/drafts.ts's. Convention: src/stores/rate-limits.ts.
 *
 * Two notices of one alert arriving together must fold into one draft, not open two: the caller takes
 * `lockAlerts` first in its transaction (an advisory lock on PostgreSQL; SQLite's `BEGIN IMMEDIATE`
 * already makes writers one at a time).
 */
import { and, asc, desc, eq, isNotNull, isNull, like, ne, or, sql } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import { alertSources } from '../../db/schema/automation.ts';
import type { alertDrafts, alertEvents } from '../../db/schema.ts';

export type AlertDraftRow = typeof alertDrafts.$inferSelect;
export type NewAlertDraft = Omit<typeof alertDrafts.$inferInsert, 'id' | 'trustCenterId'>;
export type AlertEventRow = typeof alertEvents.$inferSelect;
export type NewAlertEvent = Omit<typeof alertEvents.$inferInsert, 'id' | 'trustCenterId'>;

/** First half of the advisory lock key: "alerts" (the second half is the trust center). */
const ALERTS_LOCK = 0x414c5254;

/** Makes alert intake one writer at a time per trust center (see the file's comment). */
export async function lockAlerts(tx: Tx): Promise<void> {
  if (tx.engine === 'sqlite') return;
  // Raw SQL: the builder has no advisory-lock functions.
  await tx.db.execute(sql`SELECT pg_advisory_xact_lock(${ALERTS_LOCK}, ${tx.trustCenter})`);
}

export async function insertAlertEvent(tx: Tx, row: NewAlertEvent): Promise<number> {
  const q = query(tx);
  const [inserted] = await q.db
    .insert(q.t.alertEvents)
    .values({ ...row, trustCenterId: q.trustCenter })
    .returning({ id: q.t.alertEvents.id });
  if (!inserted) throw new Error('alert event insert returned no row');
  return inserted.id;
}

export async function insertAlertDraft(tx: Tx, row: NewAlertDraft): Promise<AlertDraftRow> {
  const q = query(tx);
  const [inserted] = await q.db
    .insert(q.t.alertDrafts)
    .values({ ...row, trustCenterId: q.trustCenter })
    .returning();
  if (!inserted) throw new Error('alert draft insert returned no row');
  return inserted;
}

/** The open draft (not closed) of an alert fingerprint, if any. */
export async function openDraftByFingerprint(r: Reader | Tx, fingerprint: string): Promise<AlertDraftRow | undefined> {
  const q = reading(r);
  const d = q.t.alertDrafts;
  const rows = await q.db
    .select()
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.fingerprint, fingerprint), isNull(d.closedAt)))
    .orderBy(desc(d.id))
    .limit(1);
  return rows[0];
}

export async function alertDraftById(r: Reader | Tx, id: number): Promise<AlertDraftRow | undefined> {
  const q = reading(r);
  const d = q.t.alertDrafts;
  const rows = await q.db
    .select()
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.id, id)))
    .limit(1);
  return rows[0];
}

/** Another firing notice of an open draft: counted; after a resolved notice it is a flap, and the alert fires again. */
export async function foldFiring(tx: Tx, id: number, now: Date): Promise<void> {
  const q = query(tx);
  const d = q.t.alertDrafts;
  await q.db
    .update(d)
    .set({
      firingCount: sql`${d.firingCount} + 1`,
      flaps: sql`${d.flaps} + CASE WHEN ${d.alertResolvedAt} IS NULL THEN 0 ELSE 1 END`,
      alertResolvedAt: null,
      lastFiringAt: now,
    })
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.id, id)));
}

export async function markAlertResolved(tx: Tx, id: number, now: Date): Promise<void> {
  const q = query(tx);
  const d = q.t.alertDrafts;
  await q.db
    .update(d)
    .set({ alertResolvedAt: now })
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.id, id)));
}

/**
 * Marks a waiting draft published with its incident; false when it was not waiting any more (another
 * person published or dismissed it first): the caller's transaction then declares nothing.
 */
export async function claimDraftPublished(
  tx: Tx,
  id: number,
  published: { incidentId: number; by: number; at: Date; title: string; body: string },
): Promise<boolean> {
  const q = query(tx);
  const d = q.t.alertDrafts;
  const result = await q.db
    .update(d)
    .set({
      state: 'published',
      incidentId: published.incidentId,
      publishedBy: published.by,
      publishedAt: published.at,
      title: published.title,
      body: published.body,
    })
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.id, id), eq(d.state, 'waiting')));
  return affected(result) === 1;
}

/** Closes an open draft (dismissed, or its incident resolved); false when it was already closed. */
export async function closeDraft(tx: Tx, id: number, close: { by: number | null; at: Date; dismissed: boolean }): Promise<boolean> {
  const q = query(tx);
  const d = q.t.alertDrafts;
  const result = await q.db
    .update(d)
    .set({ closedAt: close.at, closedBy: close.by, ...(close.dismissed ? { state: 'dismissed' as const } : {}) })
    .where(
      and(
        eq(d.trustCenterId, q.trustCenter),
        eq(d.id, id),
        isNull(d.closedAt),
        close.dismissed ? eq(d.state, 'waiting') : ne(d.state, 'dismissed'),
      ),
    );
  return affected(result) === 1;
}

/** The states the component's open, still firing drafts put it in (not dismissed, alert not resolved). */
export async function firingStatusesOf(r: Reader | Tx, componentId: string): Promise<AlertDraftRow['componentStatus'][]> {
  const q = reading(r);
  const d = q.t.alertDrafts;
  const rows = await q.db
    .select({ status: d.componentStatus })
    .from(d)
    .where(
      and(
        eq(d.trustCenterId, q.trustCenter),
        eq(d.componentId, componentId),
        isNull(d.closedAt),
        isNull(d.alertResolvedAt),
        ne(d.state, 'dismissed'),
      ),
    );
  return rows.map((row) => row.status);
}

/** Drafts waiting for a person, oldest first. */
export async function waitingDrafts(r: Reader | Tx, limit = 100): Promise<AlertDraftRow[]> {
  const q = reading(r);
  const d = q.t.alertDrafts;
  return q.db
    .select()
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.state, 'waiting'), isNull(d.closedAt)))
    .orderBy(asc(d.firstFiringAt), asc(d.id))
    .limit(limit);
}

/** Published drafts still open (their incident not resolved through the proposal), newest first. */
export async function openPublishedDrafts(r: Reader | Tx, limit = 100): Promise<AlertDraftRow[]> {
  const q = reading(r);
  const d = q.t.alertDrafts;
  return q.db
    .select()
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.state, 'published'), isNull(d.closedAt)))
    .orderBy(desc(d.id))
    .limit(limit);
}

/** Closed drafts, most recently closed first. */
export async function recentClosedDrafts(r: Reader | Tx, limit = 20): Promise<AlertDraftRow[]> {
  const q = reading(r);
  const d = q.t.alertDrafts;
  return q.db
    .select()
    .from(d)
    .where(and(eq(d.trustCenterId, q.trustCenter), isNotNull(d.closedAt)))
    .orderBy(desc(d.closedAt), desc(d.id))
    .limit(limit);
}

/** A draft's notices, oldest first. */
export async function draftEvents(r: Reader | Tx, draftId: number, limit = 200): Promise<AlertEventRow[]> {
  const q = reading(r);
  const e = q.t.alertEvents;
  return q.db
    .select()
    .from(e)
    .where(and(eq(e.trustCenterId, q.trustCenter), eq(e.draftId, draftId)))
    .orderBy(asc(e.id))
    .limit(limit);
}

/** Notices that matched no service, newest first: what a sender's configuration must fix. */
export async function unmatchedEvents(r: Reader | Tx, limit = 20): Promise<AlertEventRow[]> {
  const q = reading(r);
  const e = q.t.alertEvents;
  return (
    q.db
      .select()
      .from(e)
      // Unmatched notices' fingerprints start `<source>:?:` where a service id stands otherwise (src/core/alerts/drafts.ts;
      // service ids never hold a `?`); anchored at the start, so an alert named with `:?:` is not taken for one.
      // A resolved notice with no open draft has no draft either.
      .where(
        and(
          eq(e.trustCenterId, q.trustCenter),
          isNull(e.draftId),
          or(...alertSources.map((source) => like(e.fingerprint, `${source}:?:%`))),
        ),
      )
      .orderBy(desc(e.id))
      .limit(limit)
  );
}
