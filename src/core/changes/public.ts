import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import { publishedCounts } from '../../stores/change-history.ts';
import { locationLabel } from '../content/locations.ts';
import type { Subprocessor } from '../content/schema.ts';
import type { FeedEntry } from '../feeds/sources.ts';
import { renderMarkdown } from '../incidents/markdown.ts';
import { escapeHtml } from '../text/escape.ts';
import { type PublishedAnnouncement, publishedAnnouncements } from './announcements.ts';
import type { StoredSubprocessor } from './diff.ts';
import { type PublishedNotice, parseDay, publishedNotices, subprocessorsAsOf, today } from './history.ts';
import { longDate, noticeFacts, noticeHeading, stripPlaceholders } from './messages.ts';

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
export function subprocessorList(database: Database, asOf: string | null, now: Date): Promise<SubprocessorListAnswer> {
  return database.read((r) => listOf(r, asOf, now));
}

async function listOf(r: Reader | Tx, asOf: string | null, now: Date): Promise<SubprocessorListAnswer> {
  const current = today(now);
  let day = current;
  let problem: string | null = null;
  if (asOf !== null && asOf !== '') {
    const asked = parseDay(asOf);
    if (!asked) return { ok: false, status: 400, message: asOfFormat(asOf) };
    if (asked > current) problem = `${asked} is in the future: the list below is today's, with the changes already announced.`;
    else day = asked;
  }
  const state = await subprocessorsAsOf(r, day);
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
export function currentSubprocessors(database: Database, now: Date): Promise<SubprocessorListView> {
  return database.read((r) => currentOf(r, now));
}

async function currentOf(r: Reader | Tx, now: Date): Promise<SubprocessorListView> {
  const answer = await listOf(r, null, now);
  if (!answer.ok) throw new Error(`no current subprocessor list: ${answer.message}`);
  return answer.view;
}

/** Newest first: the changelog of /changes, the feeds and the JSON history. */
async function changeLog(r: Reader | Tx, limit = 200): Promise<PublishedNotice[]> {
  return (await publishedNotices(r)).sort((a, b) => b.publishedAt.getTime() - a.publishedAt.getTime() || b.id - a.id).slice(0, limit);
}

/** One entry of the public changelog: a change notice or a free-form announcement. */
export type ChangeEntry =
  | { type: 'notice'; anchor: string; publishedAt: Date; notice: PublishedNotice }
  | { type: 'announcement'; anchor: string; publishedAt: Date; announcement: PublishedAnnouncement };

/** Notices and announcements together, newest first: /changes, the change feeds and /api/v1/changes.json. */
export async function changelog(database: Database, limit = 200): Promise<ChangeEntry[]> {
  // notices and announcements from one snapshot
  const [notices, announcements] = await database.read(
    async (r) => [await changeLog(r, limit), await publishedAnnouncements(r, limit)] as const,
  );
  const entries: ChangeEntry[] = [
    ...notices.map((notice) => ({
      type: 'notice' as const,
      anchor: `notice-${notice.id}`,
      publishedAt: notice.publishedAt,
      notice,
    })),
    ...announcements.map((announcement) => ({
      type: 'announcement' as const,
      anchor: `announcement-${announcement.id}`,
      publishedAt: announcement.publishedAt,
      announcement,
    })),
  ];
  return entries.sort((a, b) => b.publishedAt.getTime() - a.publishedAt.getTime() || b.anchor.localeCompare(a.anchor)).slice(0, limit);
}

/** "Effective Tue, 22 Dec 2026" after an announcement's title when it has a date. */
export const announcementHeading = (a: Pick<PublishedAnnouncement, 'title' | 'effectiveOn'>) =>
  a.effectiveOn ? `${a.title} (effective ${longDate(a.effectiveOn)})` : a.title;

export async function changeFeedEntries(database: Database, publicUrl: URL): Promise<FeedEntry[]> {
  return (await changelog(database, 50)).map((entry) => {
    const url = new URL(`changes#${entry.anchor}`, publicUrl).href;
    if (entry.type === 'announcement') {
      const a = entry.announcement;
      const body = renderMarkdown(stripPlaceholders(a.body));
      return {
        id: url,
        title: announcementHeading(a),
        url,
        summary: body.text.slice(0, 500),
        contentHtml: `${body.html}${a.effectiveOn ? `<p><strong>Effective:</strong> ${escapeHtml(longDate(a.effectiveOn))}</p>` : ''}`,
        published: a.publishedAt,
        updated: a.publishedAt,
        categories: ['Announcements'],
      };
    }
    const n = entry.notice;
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

/**
 * /api/v1/changes.json: the changelog for machines, notices and announcements in one shape, newest
 * first. An announcement has no `change` or `name`, and may have no effective date.
 */
export async function changesDocument(database: Database, publicUrl: URL, now: Date) {
  const entries = await changelog(database);
  return {
    version: '1.0',
    generatedAt: now.toISOString(),
    changes: entries.map((entry) => {
      const url = new URL(`changes#${entry.anchor}`, publicUrl).href;
      if (entry.type === 'announcement') {
        const a = entry.announcement;
        return {
          id: entry.anchor,
          type: 'announcement',
          url,
          title: a.title,
          topics: a.topics,
          publishedAt: a.publishedAt.toISOString(),
          effectiveOn: a.effectiveOn,
          objectionDeadline: null,
          change: null,
          name: null,
          text: renderMarkdown(stripPlaceholders(a.body)).text,
        };
      }
      const n = entry.notice;
      return {
        id: entry.anchor,
        type: n.subject === 'subprocessor' ? 'subprocessor-notice' : 'document-notice',
        url,
        title: noticeHeading(n.details),
        topics: [n.subject === 'subprocessor' ? 'subprocessors' : 'docs'],
        publishedAt: n.publishedAt.toISOString(),
        effectiveOn: n.effectiveOn,
        objectionDeadline: n.objectionDeadline,
        change: n.change,
        name: n.subjectName,
        text: renderMarkdown(stripPlaceholders(n.intro)).text,
      };
    }),
  };
}

/** /api/v1/subprocessors.json: the list in effect, what is coming, and every published change. */
export async function subprocessorsDocument(database: Database, publicUrl: URL, now: Date) {
  const { view, history } = await database.read(async (r) => ({ view: await currentOf(r, now), history: await changeLog(r) }));
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
    history: history
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

/**
 * Changes when a notice or an announcement is published or the UTC day turns (a notice may take
 * effect): a cache key for published lists and the changelog. Published ones are never unpublished,
 * so the two counts only grow.
 */
export async function changesVersion(r: Reader | Tx, now: Date): Promise<string> {
  return changesVersionOf(await changesFacts(r), now);
}

/** What the changes version is made of: how many notices and announcements are published. */
export interface ChangesFacts {
  notices: number;
  announcements: number;
}

export function changesFacts(r: Reader | Tx): Promise<ChangesFacts> {
  return publishedCounts(r);
}

export function changesVersionOf(facts: ChangesFacts, now: Date): string {
  return `${facts.notices}:${facts.announcements}:${today(now)}`;
}
