/**
 * Announcements (`announcements`): staff's free-form news, drafted, scheduled, published or discarded,
 * on SQLite and PostgreSQL alike (issue 15; the convention is src/stores/rate-limits.ts's). What one
 * means — which text may go out, to whom, what is audited — is src/core/changes/announcements.ts's.
 *
 * How concurrent writers are kept apart:
 * - `announcementForChange` locks the row on PostgreSQL (`FOR UPDATE`), by id or by the composer's
 *   form key, so two posts about one announcement run one after the other;
 * - every status change is a conditional UPDATE (`status IN ('draft', 'scheduled')`) whose
 *   `affected()` count the domain checks: one announcement is published (or discarded) once;
 * - a new announcement's form key is unique (`announcements_form_key`), and the domain inserts under
 *   `serializable`, so the same form posted twice at once makes one announcement.
 */
import { and, asc, desc, eq, inArray, type SQL } from 'drizzle-orm';
import { affected, query, reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { announcements } from '../../db/schema.ts';
import { announcements as pgAnnouncements } from '../../db/schema-pg.ts';

/** An announcement as stored; `topics` is the JSON array of topics (the domain reads it). */
export type AnnouncementRecord = typeof announcements.$inferSelect;
export type AnnouncementStatus = AnnouncementRecord['status'];

const OPEN: AnnouncementStatus[] = ['draft', 'scheduled'];

export async function announcementById(r: Reader | Tx, id: number): Promise<AnnouncementRecord | undefined> {
  const q = reading(r);
  const a = q.t.announcements;
  const rows = await q.db
    .select()
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id)))
    .limit(1);
  return rows[0];
}

/**
 * The announcement of this id or of this form key, for the rest of the transaction to decide on and
 * change: on PostgreSQL its row is locked (`FOR UPDATE`) until the transaction ends; SQLite needs no lock.
 */
export async function announcementForChange(tx: Tx, by: { id: number } | { formKey: string }): Promise<AnnouncementRecord | undefined> {
  if (tx.engine === 'postgres') {
    // The one place the engines differ: SQLite's builder has no `.for()` (nor needs it).
    const a = pgAnnouncements;
    const which: SQL = 'id' in by ? eq(a.id, by.id) : eq(a.formKey, by.formKey);
    const rows = await tx.db
      .select()
      .from(a)
      .where(and(eq(a.trustCenterId, tx.trustCenter), which))
      .limit(1)
      .for('update');
    return rows[0] as AnnouncementRecord | undefined;
  }
  const q = query(tx);
  const a = q.t.announcements;
  const which: SQL = 'id' in by ? eq(a.id, by.id) : eq(a.formKey, by.formKey);
  const rows = await q.db
    .select()
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), which))
    .limit(1);
  return rows[0];
}

/** Drafts and scheduled ones, oldest first. */
export async function openAnnouncements(r: Reader | Tx): Promise<AnnouncementRecord[]> {
  const q = reading(r);
  const a = q.t.announcements;
  return q.db
    .select()
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), inArray(a.status, OPEN)))
    .orderBy(asc(a.createdAt), asc(a.id));
}

/** The latest published, newest first. */
export async function latestPublishedAnnouncements(r: Reader | Tx, limit: number): Promise<AnnouncementRecord[]> {
  const q = reading(r);
  const a = q.t.announcements;
  return q.db
    .select()
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.status, 'published')))
    .orderBy(desc(a.publishedAt), desc(a.id))
    .limit(limit);
}

export interface AnnouncementText {
  title: string;
  body: string;
  topics: string[];
  effectiveOn: string | null;
}

/** A new draft or scheduled announcement; its id. A form key used before is refused by the unique index. */
export async function insertAnnouncement(
  tx: Tx,
  text: AnnouncementText,
  state: { status: 'draft' | 'scheduled'; publishAt: Date | null; formKey: string | null; createdBy: number | null; at: Date },
): Promise<number> {
  const q = query(tx);
  const a = q.t.announcements;
  const rows = await q.db
    .insert(a)
    .values({
      ...text,
      status: state.status,
      publishAt: state.publishAt,
      formKey: state.formKey,
      createdBy: state.createdBy,
      createdAt: state.at,
      updatedAt: state.at,
      trustCenterId: q.trustCenter,
    })
    .returning({ id: a.id });
  const row = rows[0];
  if (!row) throw new Error('the announcement was not inserted');
  return row.id;
}

/** New text and state for an announcement still open; how many were written (0 or 1). */
export async function updateAnnouncement(
  tx: Tx,
  id: number,
  text: AnnouncementText,
  state: { status: 'draft' | 'scheduled'; publishAt: Date | null; at: Date },
): Promise<number> {
  const q = query(tx);
  const a = q.t.announcements;
  return affected(
    await q.db
      .update(a)
      .set({ ...text, status: state.status, publishAt: state.publishAt, updatedAt: state.at })
      .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id), inArray(a.status, OPEN))),
  );
}

/** Marks an open announcement published: 1 for the one caller that did, 0 for any other. */
export async function markAnnouncementPublished(tx: Tx, id: number, by: number | null, at: Date): Promise<number> {
  const q = query(tx);
  const a = q.t.announcements;
  return affected(
    await q.db
      .update(a)
      .set({ status: 'published', publishAt: null, publishedAt: at, publishedBy: by, updatedAt: at })
      .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id), inArray(a.status, OPEN))),
  );
}

/** The notification a published announcement went out as. */
export async function setAnnouncementNotification(tx: Tx, id: number, notificationId: number): Promise<void> {
  const q = query(tx);
  const a = q.t.announcements;
  await q.db
    .update(a)
    .set({ notificationId })
    .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id), eq(a.status, 'published')));
}

/** An open announcement dropped; how many were (0 or 1). */
export async function markAnnouncementDiscarded(tx: Tx, id: number, at: Date): Promise<number> {
  const q = query(tx);
  const a = q.t.announcements;
  return affected(
    await q.db
      .update(a)
      .set({ status: 'discarded', publishAt: null, updatedAt: at })
      .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id), inArray(a.status, OPEN))),
  );
}

/** A scheduled announcement back to draft as it is stored; how many were (0 or 1). */
export async function markAnnouncementDraft(tx: Tx, id: number, at: Date): Promise<number> {
  const q = query(tx);
  const a = q.t.announcements;
  return affected(
    await q.db
      .update(a)
      .set({ status: 'draft', publishAt: null, updatedAt: at })
      .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id), eq(a.status, 'scheduled'))),
  );
}
