/**
 * The published change history as the public pages read it: published change notices in order, and
 * how many notices and announcements are published (the public pages' cache version), on SQLite and
 * PostgreSQL alike (issue 15; the convention is src/stores/rate-limits.ts's). Read-only: notices and
 * announcements are written by their own capability (src/core/changes/notices.ts, announcements.ts);
 * what the rows mean (the list as of a day, the changelog) is src/core/changes/history.ts's and
 * public.ts's.
 */
import { and, eq } from 'drizzle-orm';
import { reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { changeNotices } from '../../db/schema/changes.ts';

type NoticeRow = typeof changeNotices.$inferSelect;

export interface PublishedNoticeRow {
  id: number;
  subject: NoticeRow['subject'];
  change: NoticeRow['change'];
  subjectId: string;
  subjectName: string;
  /** the difference as stored (JSON) */
  details: unknown;
  intro: string;
  effectiveOn: string | null;
  objectionDeadline: string | null;
  publishedAt: Date | null;
}

/** Published notices (of one subject, or all), in the order they were published, then by id. */
export async function publishedNoticeRows(r: Reader | Tx, subject?: NoticeRow['subject']): Promise<PublishedNoticeRow[]> {
  const q = reading(r);
  const n = q.t.changeNotices;
  const rows = await q.db
    .select({
      id: n.id,
      subject: n.subject,
      change: n.change,
      subjectId: n.subjectId,
      subjectName: n.subjectName,
      details: n.details,
      intro: n.intro,
      effectiveOn: n.effectiveOn,
      objectionDeadline: n.objectionDeadline,
      publishedAt: n.publishedAt,
    })
    .from(n)
    .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.status, 'published'), subject ? eq(n.subject, subject) : undefined));
  // Ordered here: a NULL publication time (never written for a published notice) sorts first on SQLite
  // and last on PostgreSQL; here it is the epoch on both, as the history reads it.
  const at = (row: PublishedNoticeRow) => row.publishedAt?.getTime() ?? 0;
  return rows.sort((a, b) => at(a) - at(b) || a.id - b.id);
}

/** How many change notices and announcements are published. */
export async function publishedCounts(r: Reader | Tx): Promise<{ notices: number; announcements: number }> {
  const q = reading(r);
  const { changeNotices: n, announcements: a } = q.t;
  const [notices, announcements] = [
    await q.db.$count(n, and(eq(n.trustCenterId, q.trustCenter), eq(n.status, 'published'))),
    await q.db.$count(a, and(eq(a.trustCenterId, q.trustCenter), eq(a.status, 'published'))),
  ];
  return { notices, announcements };
}
