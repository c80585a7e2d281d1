/**
 * Updates written now and published later (`scheduled_updates`), on SQLite and PostgreSQL alike,
 * with the few reads of other tables the scheduler needs about them (the incident's status and
 * promise, the author's address). When and how one is published is src/core/incidents/schedule.ts's.
 * Convention: src/stores/rate-limits.ts.
 *
 * A scheduled update is published at most once however many nodes (or retried jobs) reach it:
 * `claimScheduledUpdate` is a conditional UPDATE of its row that only a pending one (neither
 * cancelled nor published) matches, in the transaction that then publishes it and marks it
 * published. On PostgreSQL the UPDATE takes the row lock, so a second claimer waits for the first
 * to end and then, re-checking the condition on the committed row, finds it published and claims
 * nothing (READ COMMITTED re-evaluates the WHERE of an UPDATE that waited); if the first rolled
 * back, the second claims it. SQLite runs one transaction at a time. Cancelling is the same kind of
 * conditional UPDATE, so a cancel and a publish never both succeed.
 */
import { and, asc, eq, isNull } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { IncidentStatus } from '../core/incidents/types.ts';

type ScheduledUpdateRow = ReturnType<typeof query>['t']['scheduledUpdates']['$inferSelect'];
export type ScheduledUpdate = Omit<ScheduledUpdateRow, 'trustCenterId'>;
export type NewScheduledUpdate = Omit<ScheduledUpdateRow, 'id' | 'trustCenterId' | 'cancelledAt' | 'publishedUpdateId'>;

const columns = (q: ReturnType<typeof reading>) => {
  const s = q.t.scheduledUpdates;
  return {
    id: s.id,
    incidentId: s.incidentId,
    status: s.status,
    body: s.body,
    components: s.components,
    runAt: s.runAt,
    createdBy: s.createdBy,
    createdAt: s.createdAt,
    cancelledAt: s.cancelledAt,
    publishedUpdateId: s.publishedUpdateId,
    notify: s.notify,
    nextUpdateBy: s.nextUpdateBy,
  };
};

export async function insertScheduledUpdate(tx: Tx, values: NewScheduledUpdate): Promise<number> {
  const q = query(tx);
  const s = q.t.scheduledUpdates;
  const [row] = await q.db
    .insert(s)
    .values({ ...values, trustCenterId: q.trustCenter })
    .returning({ id: s.id });
  if (!row) throw new Error('the scheduled update was not stored');
  return row.id;
}

export async function scheduledUpdateById(r: Reader | Tx, id: number): Promise<ScheduledUpdate | undefined> {
  const q = reading(r);
  const s = q.t.scheduledUpdates;
  const rows = await q.db
    .select(columns(q))
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id)))
    .limit(1);
  return rows[0];
}

/** The pending ones (neither cancelled nor published) of an incident, by time. */
export async function pendingScheduledUpdatesOf(r: Reader | Tx, incidentId: number): Promise<ScheduledUpdate[]> {
  const q = reading(r);
  const s = q.t.scheduledUpdates;
  return q.db
    .select(columns(q))
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.incidentId, incidentId), isNull(s.cancelledAt), isNull(s.publishedUpdateId)))
    .orderBy(asc(s.runAt), asc(s.id));
}

const pending = (q: ReturnType<typeof query>, id: number) => {
  const s = q.t.scheduledUpdates;
  return and(eq(s.trustCenterId, q.trustCenter), eq(s.id, id), isNull(s.cancelledAt), isNull(s.publishedUpdateId));
};

/**
 * Claims a pending scheduled update for publishing in this transaction: its row when this
 * transaction is the one to publish it, undefined when it is cancelled, published, or claimed by a
 * transaction that committed first (see the header). The UPDATE changes nothing but locks the row.
 */
export async function claimScheduledUpdate(tx: Tx, id: number): Promise<ScheduledUpdate | undefined> {
  const q = query(tx);
  const s = q.t.scheduledUpdates;
  const rows = await q.db.update(s).set({ publishedUpdateId: null }).where(pending(q, id)).returning(columns(q));
  return rows[0];
}

/** Records the update a claimed scheduled update became. */
export async function markScheduledPublished(tx: Tx, id: number, updateId: number): Promise<void> {
  const q = query(tx);
  const s = q.t.scheduledUpdates;
  const changed = affected(await q.db.update(s).set({ publishedUpdateId: updateId }).where(pending(q, id)));
  if (changed !== 1) throw new Error(`scheduled update ${id} is no longer pending`);
}

/** Cancels a pending scheduled update; false when it was not pending (cancelled, published, or another trust center's). */
export async function cancelPendingUpdate(tx: Tx, id: number, now: Date): Promise<boolean> {
  const q = query(tx);
  const s = q.t.scheduledUpdates;
  return affected(await q.db.update(s).set({ cancelledAt: now }).where(pending(q, id))) === 1;
}

/** The incident's status, for deciding whether it takes updates; undefined when there is none. */
export async function incidentStatusOf(r: Reader | Tx, incidentId: number): Promise<IncidentStatus | undefined> {
  const q = reading(r);
  const i = q.t.incidents;
  const rows = await q.db
    .select({ status: i.status })
    .from(i)
    .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, incidentId)))
    .limit(1);
  return rows[0]?.status;
}

/** What a reminder of the promised update needs: the incident's title, status and promise. */
export async function reminderTarget(
  r: Reader | Tx,
  incidentId: number,
): Promise<{ title: string; status: IncidentStatus; nextUpdateBy: Date | null } | undefined> {
  const q = reading(r);
  const i = q.t.incidents;
  const rows = await q.db
    .select({ title: i.title, status: i.status, nextUpdateBy: i.nextUpdateBy })
    .from(i)
    .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, incidentId)))
    .limit(1);
  return rows[0];
}

/** The address of the staff member who scheduled an update, for the audit label of its publishing. */
export async function staffEmailOf(r: Reader | Tx, staffId: number): Promise<string | undefined> {
  const q = reading(r);
  const s = q.t.staff;
  const rows = await q.db
    .select({ email: s.email })
    .from(s)
    .where(and(eq(s.trustCenterId, q.trustCenter), eq(s.id, staffId)))
    .limit(1);
  return rows[0]?.email;
}
