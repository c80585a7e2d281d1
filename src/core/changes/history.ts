/**
 * The published history of the subprocessor list and the docs: the baseline
 * recorded on first start, then every published notice applied in order.
 * "As of" a day applies only the notices in effect by then; the rest are
 * coming, shown as "effective from".
 */
import type { Db } from '../../../db/client.ts';
import { type ContentDiff, type StoredDoc, type StoredSubprocessor, upgradeDiff, upgradeStoredSubprocessor } from './diff.ts';

export interface PublishedNotice {
  id: number;
  subject: 'subprocessor' | 'doc';
  change: ContentDiff['change'];
  subjectId: string;
  subjectName: string;
  details: ContentDiff;
  intro: string;
  effectiveOn: string;
  objectionDeadline: string | null;
  publishedAt: Date;
}

interface NoticeRow {
  id: number;
  subject: 'subprocessor' | 'doc';
  change: ContentDiff['change'];
  subject_id: string;
  subject_name: string;
  details: string;
  intro: string;
  effective_on: string | null;
  objection_deadline: string | null;
  published_at: number | null;
}

export const today = (now: Date) => now.toISOString().slice(0, 10);

/** `value` when it is a day written YYYY-MM-DD that the calendar has (no 2025-13-01, no 2025-02-30), else null. */
export function parseDay(value: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  const [year, month, date] = match.slice(1).map(Number) as [number, number, number];
  const day = new Date(Date.UTC(year, month - 1, date));
  return day.getUTCFullYear() === year && day.getUTCMonth() === month - 1 && day.getUTCDate() === date ? value : null;
}

export function publishedNotices(db: Db, subject?: 'subprocessor' | 'doc'): PublishedNotice[] {
  const rows = db.$client
    .prepare(
      `SELECT id, subject, change, subject_id, subject_name, details, intro, effective_on, objection_deadline, published_at
         FROM change_notices WHERE status = 'published' AND (? IS NULL OR subject = ?) ORDER BY published_at, id`,
    )
    .all(subject ?? null, subject ?? null) as NoticeRow[];
  return rows.map((r) => ({
    id: r.id,
    subject: r.subject,
    change: r.change,
    subjectId: r.subject_id,
    subjectName: r.subject_name,
    details: upgradeDiff(JSON.parse(r.details) as ContentDiff),
    intro: r.intro,
    effectiveOn: r.effective_on ?? today(new Date(r.published_at ?? 0)),
    objectionDeadline: r.objection_deadline,
    publishedAt: new Date(r.published_at ?? 0),
  }));
}

function baseline<T>(db: Db, kind: 'subprocessors' | 'docs'): { items: T[]; since: Date } | null {
  const row = db.$client
    .prepare('SELECT data, published_at FROM content_snapshots WHERE kind = ? ORDER BY published_at, id LIMIT 1')
    .get(kind) as { data: string; published_at: number } | undefined;
  return row ? { items: JSON.parse(row.data) as T[], since: new Date(row.published_at) } : null;
}

function apply<T>(items: T[], id: (item: T) => string, notice: PublishedNotice): T[] {
  const after = notice.details.after as T | null;
  const rest = items.filter((item) => id(item) !== notice.subjectId);
  return after ? [...rest, after] : rest;
}

export interface ListState<T> {
  /** in effect on the day */
  items: T[];
  /** announced, not yet in effect on the day: the change and its effective date */
  coming: { notice: PublishedNotice; item: T | null }[];
  /** when tracking began (the baseline), or null before the first start */
  trackedSince: Date | null;
}

function stateOf<T>(db: Db, kind: 'subprocessors' | 'docs', id: (item: T) => string, day: string | null): ListState<T> {
  const base = baseline<T>(db, kind);
  if (!base) return { items: [], coming: [], trackedSince: null };
  let items = base.items;
  const coming: ListState<T>['coming'] = [];
  const notices = publishedNotices(db, kind === 'subprocessors' ? 'subprocessor' : 'doc');
  for (const notice of notices) {
    if (day !== null && today(notice.publishedAt) > day) continue;
    if (day === null || notice.effectiveOn <= day) items = apply(items, id, notice);
    else coming.push({ notice, item: (notice.details.after as T | null) ?? (notice.details.before as T | null) });
  }
  return { items, coming, trackedSince: base.since };
}

/** Everything published, whatever its effective date: what change detection compares content/ against. */
export function publishedSubprocessors(db: Db): StoredSubprocessor[] {
  return stateOf<StoredSubprocessor>(db, 'subprocessors', (s) => s.id, null).items.map(upgradeStoredSubprocessor);
}

export function publishedDocs(db: Db): StoredDoc[] {
  return stateOf<StoredDoc>(db, 'docs', (d) => d.slug, null).items;
}

/** The list as it stood on `day` (YYYY-MM-DD, UTC), and what had been announced for later. */
export function subprocessorsAsOf(db: Db, day: string): ListState<StoredSubprocessor> {
  const state = stateOf<StoredSubprocessor>(db, 'subprocessors', (s) => s.id, day);
  return {
    ...state,
    items: state.items.map(upgradeStoredSubprocessor).sort((a, b) => a.name.localeCompare(b.name)),
    coming: state.coming.map((c) => ({ ...c, item: c.item && upgradeStoredSubprocessor(c.item) })),
  };
}
