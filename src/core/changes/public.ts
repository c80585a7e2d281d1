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
import { type PublishedNotice, parseDay, publishedNotices, subprocessorsAsOf, today } from './history.ts';
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
  /** a note on the as_of value (a day still to come: today's list is shown), or null */
  problem: string | null;
  items: Subprocessor[];
  coming: ComingChange[];
  trackedSince: Date | null;
}

/**
 * The list, or why there is none for the as_of asked: 400 for anything but a day written YYYY-MM-DD
 * that the calendar has, 404 for a day before the published history begins (`historyStarts`, the first
 * day with a list).
 */
export type SubprocessorListAnswer =
  | { ok: true; view: SubprocessorListView }
  | { ok: false; status: 400; message: string }
  | { ok: false; status: 404; message: string; historyStarts: string };

/** What a wrong `as_of` is told: the parameter, the form, an example. */
export const asOfFormat = (given: string) =>
  `The as_of parameter must be a day written YYYY-MM-DD, for example 2025-03-01; "${given.slice(0, 30)}" is not one.`;

/** `asOf` as given in the query string (null or empty: today). A day still to come shows today's list, with what is announced. */
export function subprocessorList(db: Db, asOf: string | null, now: Date): SubprocessorListAnswer {
  const current = today(now);
  let day = current;
  let problem: string | null = null;
  if (asOf !== null && asOf !== '') {
    const asked = parseDay(asOf);
    if (!asked) return { ok: false, status: 400, message: asOfFormat(asOf) };
    if (asked > current) problem = `${asked} is in the future: the list below is today's, with the changes already announced.`;
    else day = asked;
  }
  const state = subprocessorsAsOf(db, day);
  if (day !== current && state.trackedSince && day < today(state.trackedSince)) {
    const historyStarts = today(state.trackedSince);
    return {
      ok: false,
      status: 404,
      message: `The published history of this list begins on ${longDate(historyStarts)}; there is no list for ${longDate(day)}.`,
      historyStarts,
    };
  }
  return {
    ok: true,
    view: {
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
    },
  };
}

/** The list in effect today: there is always one. */
export function currentSubprocessors(db: Db, now: Date): SubprocessorListView {
  const answer = subprocessorList(db, null, now);
  if (!answer.ok) throw new Error(`no current subprocessor list: ${answer.message}`);
  return answer.view;
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
  const view = currentSubprocessors(db, now);
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
