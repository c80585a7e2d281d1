/**
 * Objections to change notices and staff's notes on them (`objections`, `objection_notes`), with the
 * little of the notice and of the link's recipient that filing and listing need, on SQLite and
 * PostgreSQL alike (issue 15; the convention is src/stores/rate-limits.ts's). What an objection
 * means (who may file, what is acknowledged and audited) is src/core/changes/objections.ts's.
 *
 * Two read-then-writes, each safe on PostgreSQL's concurrent transactions:
 * - filing: one objection per (notice, link recipient), a unique key on both engines.
 *   `insertObjection` inserts with ON CONFLICT DO NOTHING: a concurrent second filing waits for the
 *   first to commit and then inserts nothing, and reads the first's row (`filedFrom`, a new
 *   statement, so a new snapshot under READ COMMITTED);
 * - deciding (a status change, a note): `objectionForUpdate` locks the row (`FOR UPDATE`) on
 *   PostgreSQL until the transaction ends, so two staff deciding at once run one after the other
 *   and the second sees (and audits) the status the first left. SQLite never interleaves them.
 */
import { and, desc, eq } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { changeNotices, objections } from '../../db/schema/changes.ts';
import { objections as pgObjections } from '../../db/schema-pg.ts';

export type ObjectionStatus = (typeof objections.$inferSelect)['status'];
type NoticeStatus = (typeof changeNotices.$inferSelect)['status'];

/** What an objection link shows of its notice. */
export interface ObjectionNoticeRow {
  id: number;
  status: NoticeStatus;
  /** the difference as stored (JSON) */
  details: unknown;
  intro: string;
  effectiveOn: string | null;
  objectionDeadline: string | null;
}

export async function objectionNotice(r: Reader | Tx, noticeId: number): Promise<ObjectionNoticeRow | undefined> {
  const q = reading(r);
  const n = q.t.changeNotices;
  const rows = await q.db
    .select({
      id: n.id,
      status: n.status,
      details: n.details,
      intro: n.intro,
      effectiveOn: n.effectiveOn,
      objectionDeadline: n.objectionDeadline,
    })
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, noticeId)))
    .limit(1);
  return rows[0];
}

/** The recipient a link was signed for, while it exists: its subscriber and the organisation they gave. */
export async function linkRecipient(
  r: Reader | Tx,
  recipientId: number,
): Promise<{ subscriberId: number | null; organisation: string | null } | undefined> {
  const q = reading(r);
  const { recipients: rc, subscribers: s } = q.t;
  const rows = await q.db
    .select({ subscriberId: rc.subscriberId, organisation: s.organisation })
    .from(rc)
    .leftJoin(s, and(eq(s.id, rc.subscriberId), eq(s.trustCenterId, q.trustCenter)))
    .where(and(eq(rc.trustCenterId, q.trustCenter), eq(rc.id, recipientId)))
    .limit(1);
  return rows[0];
}

export interface Filed {
  id: number;
  late: boolean;
  createdAt: Date;
}

/** The objection filed from this notice's link for this recipient, if any. */
export async function filedFrom(r: Reader | Tx, noticeId: number, linkRecipientId: number): Promise<Filed | undefined> {
  const q = reading(r);
  const o = q.t.objections;
  const rows = await q.db
    .select({ id: o.id, late: o.late, createdAt: o.createdAt })
    .from(o)
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.noticeId, noticeId), eq(o.linkRecipient, linkRecipientId)))
    .limit(1);
  return rows[0];
}

export interface NewObjection {
  noticeId: number;
  /** the recipient, while it exists */
  recipientId: number | null;
  linkRecipient: number;
  subscriberId: number | null;
  organisation: string | null;
  contactName: string | null;
  reasons: string;
  late: boolean;
  createdAt: Date;
}

/**
 * Files an open objection; its id, or undefined when one was filed from this link already (the
 * unique key on notice and link recipient: see the header).
 */
export async function insertObjection(tx: Tx, objection: NewObjection): Promise<number | undefined> {
  const q = query(tx);
  const o = q.t.objections;
  const rows = await q.db
    .insert(o)
    .values({ ...objection, status: 'open', updatedAt: objection.createdAt, trustCenterId: q.trustCenter })
    .onConflictDoNothing({ target: [o.noticeId, o.linkRecipient] })
    .returning({ id: o.id });
  return rows[0]?.id;
}

export interface ObjectionRow {
  id: number;
  noticeId: number;
  /** the notice's difference as stored (JSON), for its heading; null when the notice is gone */
  noticeDetails: unknown;
  organisation: string | null;
  contactName: string | null;
  reasons: string;
  status: ObjectionStatus;
  late: boolean;
  createdAt: Date;
  updatedAt: Date;
}

function objectionColumns(q: ReturnType<typeof reading>) {
  const { objections: o, changeNotices: n } = q.t;
  return {
    id: o.id,
    noticeId: o.noticeId,
    noticeDetails: n.details,
    organisation: o.organisation,
    contactName: o.contactName,
    reasons: o.reasons,
    status: o.status,
    late: o.late,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
  };
}

/** Objections (of one status, or all), newest first, at most `limit`. */
export async function objectionRows(r: Reader | Tx, status: ObjectionStatus | undefined, limit: number): Promise<ObjectionRow[]> {
  const q = reading(r);
  const { objections: o, changeNotices: n } = q.t;
  // Ordered by the database (a time, then an integer: alike on both engines), since it limits.
  return q.db
    .select(objectionColumns(q))
    .from(o)
    .leftJoin(n, and(eq(n.id, o.noticeId), eq(n.trustCenterId, q.trustCenter)))
    .where(and(eq(o.trustCenterId, q.trustCenter), status ? eq(o.status, status) : undefined))
    .orderBy(desc(o.createdAt), desc(o.id))
    .limit(limit);
}

export async function objectionRow(r: Reader | Tx, id: number): Promise<ObjectionRow | undefined> {
  const q = reading(r);
  const { objections: o, changeNotices: n } = q.t;
  const rows = await q.db
    .select(objectionColumns(q))
    .from(o)
    .leftJoin(n, and(eq(n.id, o.noticeId), eq(n.trustCenterId, q.trustCenter)))
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id)))
    .limit(1);
  return rows[0];
}

export interface NoteRow {
  body: string;
  /** the staff member's email, while they exist */
  staff: string | null;
  createdAt: Date;
}

/** The objection's notes, in the order they were written. */
export async function notesOf(r: Reader | Tx, objectionId: number): Promise<NoteRow[]> {
  const q = reading(r);
  const { objectionNotes: n, staff: s } = q.t;
  const rows = await q.db
    .select({ id: n.id, body: n.body, staff: s.email, createdAt: n.createdAt })
    .from(n)
    .leftJoin(s, and(eq(s.id, n.staffId), eq(s.trustCenterId, q.trustCenter)))
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.objectionId, objectionId)));
  return rows.sort((a, b) => a.id - b.id).map(({ body, staff, createdAt }) => ({ body, staff, createdAt }));
}

/**
 * The objection's status, for the rest of the transaction to decide on and change: on PostgreSQL
 * the row is locked (`FOR UPDATE`) until the transaction ends (see the header).
 */
export async function objectionForUpdate(tx: Tx, id: number): Promise<{ status: ObjectionStatus } | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const o = pgObjections;
    const rows = await tx.db
      .select({ status: o.status })
      .from(o)
      .where(and(eq(o.trustCenterId, tx.trustCenter), eq(o.id, id)))
      .limit(1)
      .for('update');
    return rows[0];
  }
  const q = query(tx);
  const o = q.t.objections;
  const rows = await q.db
    .select({ status: o.status })
    .from(o)
    .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id)))
    .limit(1);
  return rows[0];
}

/** Sets the status (when given) and marks the objection changed at `at`; rows changed (0 or 1). */
export async function changeObjection(tx: Tx, id: number, change: { status?: ObjectionStatus; at: Date }): Promise<number> {
  const q = query(tx);
  const o = q.t.objections;
  return affected(
    await q.db
      .update(o)
      .set({ ...(change.status ? { status: change.status } : {}), updatedAt: change.at })
      .where(and(eq(o.trustCenterId, q.trustCenter), eq(o.id, id))),
  );
}

export async function insertNote(tx: Tx, note: { objectionId: number; staffId: number; body: string; createdAt: Date }): Promise<void> {
  const q = query(tx);
  await q.db.insert(q.t.objectionNotes).values({ ...note, trustCenterId: q.trustCenter });
}
