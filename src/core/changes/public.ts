/**
 * What the public sees of changes: the subprocessor list as of a day (with
 * what is announced but not yet in effect), the changelog, its feed entries
 * and the machine-readable history. Drafts are never public: customers hear
 * of a change when its notice is published.
 */
import type { Db } from '../../../db/client.ts';
import { locationLabel } from '../content/locations.ts';
import type { Subprocessor } from '../content/schema.ts';
import type { FeedEntry } from '../feeds/sources.ts';
import { renderMarkdown } from '../incidents/markdown.ts';
import { escapeHtml } from '../text/escape.ts';
import type { StoredSubprocessor } from './diff.ts';
import { type PublishedNotice, publishedNotices, subprocessorsAsOf, today } from './history.ts';
import { longDate, noticeFacts, noticeHeading } from './messages.ts';

const asSubprocessor = (s: StoredSubprocessor): Subprocessor => ({ ...s, since: new Date(s.since) });

export interface ComingChange {
  noticeId: number;
  change: PublishedNotice['change'];
  effectiveOn: string;
  subprocessor: Subprocessor;
  /** for a change: the fields that will differ */
  fields: string[];
}

export interface SubprocessorListView {
  /** the day shown, YYYY-MM-DD */
  day: string;
  /** an as_of day was asked for (an archived version) */
  archived: boolean;
  /** why the as_of value was not used, or null */
  problem: string | null;
  items: Subprocessor[];
  coming: ComingChange[];
  trackedSince: Date | null;
}

/** `asOf` as given in the query string; anything but a past or present YYYY-MM-DD is named and today shown. */
export function subprocessorList(db: Db, asOf: string | null, now: Date): SubprocessorListView {
  const current = today(now);
  let day = current;
  let problem: string | null = null;
  if (asOf !== null && asOf !== '') {
    const valid = /^\d{4}-\d{2}-\d{2}$/.test(asOf) && new Date(`${asOf}T00:00:00Z`).toISOString().startsWith(asOf);
    if (!valid) problem = `"${asOf.slice(0, 30)}" is not a date: write as_of=YYYY-MM-DD. Showing today's list.`;
    else if (asOf > current) problem = `${asOf} is in the future: the list below is today's, with the changes already announced.`;
    else day = asOf;
  }
  const state = subprocessorsAsOf(db, day);
  return {
    day,
    archived: day !== current,
    problem,
    items: state.items.map(asSubprocessor),
    coming: state.coming
      .filter((c) => c.notice.subject === 'subprocessor' && c.item)
      .map((c) => ({
        noticeId: c.notice.id,
        change: c.notice.change,
        effectiveOn: c.notice.effectiveOn,
        subprocessor: asSubprocessor(c.item as StoredSubprocessor),
        fields: c.notice.details.subject === 'subprocessor' ? c.notice.details.fields : [],
      })),
    trackedSince: state.trackedSince,
  };
}

/** Newest first: the changelog of /changes, the feeds and the JSON history. */
export function changeLog(db: Db, limit = 200): PublishedNotice[] {
  return publishedNotices(db)
    .sort((a, b) => b.publishedAt.getTime() - a.publishedAt.getTime() || b.id - a.id)
    .slice(0, limit);
}

export function changeFeedEntries(db: Db, publicUrl: URL): FeedEntry[] {
  return changeLog(db, 50).map((n) => {
    const url = new URL(`changes#notice-${n.id}`, publicUrl).href;
    const facts = noticeFacts({ diff: n.details, effectiveOn: n.effectiveOn, objectionDeadline: n.objectionDeadline });
    const intro = renderMarkdown(n.intro);
    return {
      id: url,
      title: `${noticeHeading(n.details)} (effective ${longDate(n.effectiveOn)})`,
      url,
      summary: intro.text.slice(0, 500),
      contentHtml: `${intro.html}<ul>${facts.map((f) => `<li><strong>${escapeHtml(f.label)}:</strong> ${escapeHtml(f.value)}</li>`).join('')}</ul>`,
      published: n.publishedAt,
      updated: n.publishedAt,
      categories: [n.subject === 'subprocessor' ? 'Subprocessors' : 'Documents', n.change],
    };
  });
}

/** /api/v1/subprocessors.json: the list in effect, what is coming, and every published change. */
export function subprocessorsDocument(db: Db, publicUrl: URL, now: Date) {
  const view = subprocessorList(db, null, now);
  const entry = (s: Subprocessor) => ({ ...s, location: locationLabel(s), since: s.since.toISOString().slice(0, 10) });
  return {
    version: '1.0',
    generatedAt: now.toISOString(),
    asOf: view.day,
    subprocessors: view.items.map(entry),
    coming: view.coming.map((c) => ({
      notice: c.noticeId,
      change: c.change,
      effectiveOn: c.effectiveOn,
      fields: c.fields,
      subprocessor: entry(c.subprocessor),
    })),
    history: changeLog(db)
      .filter((n) => n.subject === 'subprocessor')
      .map((n) => ({
        notice: n.id,
        url: new URL(`changes#notice-${n.id}`, publicUrl).href,
        change: n.change,
        subprocessorId: n.subjectId,
        name: n.subjectName,
        publishedAt: n.publishedAt.toISOString(),
        effectiveOn: n.effectiveOn,
        objectionDeadline: n.objectionDeadline,
        fields: n.details.subject === 'subprocessor' ? n.details.fields : [],
      })),
  };
}

/** Changes when a notice is published or the UTC day turns (a notice may take effect): a cache key for published lists. */
export function changesVersion(db: Db, now: Date): string {
  const { n } = db.$client.prepare(`SELECT count(*) AS n FROM change_notices WHERE status = 'published'`).get() as { n: number };
  return `${n}:${today(now)}`;
}
