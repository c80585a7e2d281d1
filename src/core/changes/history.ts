import type { Reader, Tx } from '../../../db/engine/types.ts';
import { type PublishedNoticeRow, publishedNoticeRows } from '../../stores/change-history.ts';
import { baselineOf } from '../../stores/content-snapshots.ts';
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

export const today = (now: Date) => now.toISOString().slice(0, 10);

/** `value` when it is a day written YYYY-MM-DD that the calendar has (no 2025-13-01, no 2025-02-30), else null. */
export function parseDay(value: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  const [year, month, date] = match.slice(1).map(Number) as [number, number, number];
  const day = new Date(Date.UTC(year, month - 1, date));
  return day.getUTCFullYear() === year && day.getUTCMonth() === month - 1 && day.getUTCDate() === date ? value : null;
}

const toPublished = (r: PublishedNoticeRow): PublishedNotice => ({
  id: r.id,
  subject: r.subject,
  change: r.change,
  subjectId: r.subjectId,
  subjectName: r.subjectName,
  details: upgradeDiff(r.details as ContentDiff),
  intro: r.intro,
  effectiveOn: r.effectiveOn ?? today(r.publishedAt ?? new Date(0)),
  objectionDeadline: r.objectionDeadline,
  publishedAt: r.publishedAt ?? new Date(0),
});

/** Published notices (of one subject, or all), in the order they were published. */
export async function publishedNotices(r: Reader | Tx, subject?: 'subprocessor' | 'doc'): Promise<PublishedNotice[]> {
  return (await publishedNoticeRows(r, subject)).map(toPublished);
}

type Kind = 'subprocessors' | 'docs';
const subjectOf = (kind: Kind) => (kind === 'subprocessors' ? 'subprocessor' : 'doc');

async function baseline<T>(r: Reader | Tx, kind: Kind): Promise<{ items: T[]; since: Date } | null> {
  const row = await baselineOf(r, kind);
  return row ? { items: row.data as T[], since: row.publishedAt } : null;
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

/** The baseline with the notices applied: all of them (`day` null), or as of `day`. */
function stateFrom<T>(
  base: { items: T[]; since: Date } | null,
  notices: readonly PublishedNotice[],
  id: (item: T) => string,
  day: string | null,
): ListState<T> {
  if (!base) return { items: [], coming: [], trackedSince: null };
  let items = base.items;
  const coming: ListState<T>['coming'] = [];
  for (const notice of notices) {
    if (day !== null && today(notice.publishedAt) > day) continue;
    if (day === null || notice.effectiveOn <= day) items = apply(items, id, notice);
    else coming.push({ notice, item: (notice.details.after as T | null) ?? (notice.details.before as T | null) });
  }
  return { items, coming, trackedSince: base.since };
}

async function stateOf<T>(r: Reader | Tx, kind: Kind, id: (item: T) => string, day: string | null): Promise<ListState<T>> {
  const base = await baseline<T>(r, kind);
  return stateFrom(base, base ? await publishedNotices(r, subjectOf(kind)) : [], id, day);
}

/** Everything published, whatever its effective date: what change detection compares content/ against. */
export async function publishedSubprocessors(r: Reader | Tx): Promise<StoredSubprocessor[]> {
  return (await stateOf<StoredSubprocessor>(r, 'subprocessors', (s) => s.id, null)).items.map(upgradeStoredSubprocessor);
}

export async function publishedDocs(r: Reader | Tx): Promise<StoredDoc[]> {
  return (await stateOf<StoredDoc>(r, 'docs', (d) => d.slug, null)).items;
}

/** The list as it stood on `day` (YYYY-MM-DD, UTC), and what had been announced for later. */
export async function subprocessorsAsOf(r: Reader | Tx, day: string): Promise<ListState<StoredSubprocessor>> {
  const state = await stateOf<StoredSubprocessor>(r, 'subprocessors', (s) => s.id, day);
  return {
    ...state,
    items: state.items.map(upgradeStoredSubprocessor).sort((a, b) => a.name.localeCompare(b.name)),
    coming: state.coming.map((c) => ({ ...c, item: c.item && upgradeStoredSubprocessor(c.item) })),
  };
}

/*
 * Synchronous twins on a SQLite connection, for change detection (notices.ts `detectChanges`), which
 * runs in a synchronous transaction still; remove them when it reads through `publishedSubprocessors`
 * / `publishedDocs` in its own transaction.
 */
