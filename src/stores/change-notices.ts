/**
 * Change notices (`change_notices`): the drafts change detection writes, staff's edits, scheduling and
 * publication, on SQLite and PostgreSQL alike (issue 15; the convention is src/stores/rate-limits.ts's).
 * What a notice means — which difference it tells, which dates are allowed, what is sent and audited —
 * is src/core/changes/notices.ts's, which decides what is one transaction.
 *
 * How concurrent writers are kept apart (PostgreSQL runs transactions concurrently; SQLite's never
 * interleave):
 * - `noticeForChange` locks the notice's row on PostgreSQL (`FOR UPDATE`) for the rest of the
 *   transaction, so two staff members editing, scheduling or publishing one notice run one after the
 *   other and the second sees what the first did;
 * - every status change is a conditional UPDATE (`status IN ('draft', 'scheduled')`, or `'scheduled'`)
 *   whose `affected()` count the domain checks, so a notice is published, superseded or sent back to
 *   draft at most once even by a caller that did not lock it;
 * - drafting is guarded by the partial unique index `change_notices_open_fingerprint` (one open notice
 *   per difference) and by detection running `serializable` (src/core/changes/notices.ts).
 */
import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { changeNotices } from '../../db/schema.ts';
import { changeNotices as pgChangeNotices } from '../../db/schema-pg.ts';

/** A notice as stored; `details` is the difference as JSON (the domain reads it). */
export type NoticeRecord = typeof changeNotices.$inferSelect;
export type NoticeStatus = NoticeRecord['status'];

const OPEN: NoticeStatus[] = ['draft', 'scheduled'];

export async function noticeById(r: Reader | Tx, id: number): Promise<NoticeRecord | undefined> {
  const q = reading(r);
  const n = q.t.changeNotices;
  const rows = await q.db
    .select()
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id)))
    .limit(1);
  return rows[0];
}

/**
 * The notice, for the rest of the transaction to decide on and change: on PostgreSQL its row is locked
 * (`FOR UPDATE`) until the transaction ends, so a second editor or publisher of the same notice waits
 * for the first and then reads the notice as the first left it. SQLite needs no lock.
 */
export async function noticeForChange(tx: Tx, id: number): Promise<NoticeRecord | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const n = pgChangeNotices;
    const rows = await tx.db
      .select()
      .from(n)
      .where(and(eq(n.trustCenterId, tx.trustCenter), eq(n.id, id)))
      .limit(1)
      .for('update');
    return rows[0] as NoticeRecord | undefined;
  }
  return noticeById(tx, id);
}

/** Drafts and scheduled notices, oldest detected first. */
export async function openNotices(r: Reader | Tx): Promise<NoticeRecord[]> {
  const q = reading(r);
  const n = q.t.changeNotices;
  return q.db
    .select()
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), inArray(n.status, OPEN)))
    .orderBy(asc(n.detectedAt), asc(n.id));
}

/** The latest published notices, newest first. */
export async function latestPublishedNotices(r: Reader | Tx, limit = 100): Promise<NoticeRecord[]> {
  const q = reading(r);
  const n = q.t.changeNotices;
  return q.db
    .select()
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.status, 'published')))
    .orderBy(desc(n.publishedAt), desc(n.id))
    .limit(limit);
}

export interface NewDraft {
  subject: NoticeRecord['subject'];
  change: NoticeRecord['change'];
  subjectId: string;
  subjectName: string;
  /** the difference, stored as JSON */
  details: unknown;
  fingerprint: string;
  intro: string;
  detectedAt: Date;
}

/**
 * A new draft. A second open notice of the same fingerprint is refused by the partial unique index
 * (an error: the domain's serializable detection never gets there, see notices.ts).
 */
export async function insertDraft(tx: Tx, draft: NewDraft): Promise<NoticeRecord> {
  const q = query(tx);
  const rows = await q.db
    .insert(q.t.changeNotices)
    .values({ ...draft, status: 'draft', trustCenterId: q.trustCenter })
    .returning();
  const row = rows[0];
  if (!row) throw new Error('the draft was not inserted');
  return row;
}

/** An open notice whose difference is gone; how many were superseded (0 or 1). */
export async function supersedeNotice(tx: Tx, id: number): Promise<number> {
  const q = query(tx);
  const n = q.t.changeNotices;
  return affected(
    await q.db
      .update(n)
      .set({ status: 'superseded' })
      .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id), inArray(n.status, OPEN))),
  );
}

export interface NoticeText {
  intro: string;
  effectiveOn: string | null;
  objectionDeadline: string | null;
  overrideReason: string | null;
}

/** Staff's text and dates, on a notice still open; how many were written (0 or 1). */
export async function writeNoticeText(tx: Tx, id: number, text: NoticeText): Promise<number> {
  const q = query(tx);
  const n = q.t.changeNotices;
  return affected(
    await q.db
      .update(n)
      .set(text)
      .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id), inArray(n.status, OPEN))),
  );
}

export interface Publication {
  publishedAt: Date;
  publishedBy: number | null;
  effectiveOn: string;
  objectionDeadline: string | null;
}

/**
 * Marks an open notice published with its dates: 1 for the one caller that did, 0 for any other (it
 * was published, superseded or sent back already), whatever the engine and locks.
 */
export async function markPublished(tx: Tx, id: number, publication: Publication): Promise<number> {
  const q = query(tx);
  const n = q.t.changeNotices;
  return affected(
    await q.db
      .update(n)
      .set({ ...publication, status: 'published' })
      .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id), inArray(n.status, OPEN))),
  );
}

/** The notification a published notice went out as. */
export async function setNotification(tx: Tx, id: number, notificationId: number): Promise<void> {
  const q = query(tx);
  const n = q.t.changeNotices;
  await q.db
    .update(n)
    .set({ notificationId })
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id), eq(n.status, 'published')));
}

/** An open notice to go out at `at`; how many were scheduled (0 or 1). */
export async function markScheduled(tx: Tx, id: number, at: Date): Promise<number> {
  const q = query(tx);
  const n = q.t.changeNotices;
  return affected(
    await q.db
      .update(n)
      .set({ status: 'scheduled', publishAt: at })
      .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id), inArray(n.status, OPEN))),
  );
}

/** A scheduled notice back to draft; how many were (0 or 1). */
export async function markDraft(tx: Tx, id: number): Promise<number> {
  const q = query(tx);
  const n = q.t.changeNotices;
  return affected(
    await q.db
      .update(n)
      .set({ status: 'draft', publishAt: null })
      .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id), eq(n.status, 'scheduled'))),
  );
}
