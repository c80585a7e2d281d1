/**
 * Free-form announcements: written by staff (a new data region, a policy
 * change), previewed per channel, published now or at a time (a durable
 * job), and fanned out like a change notice to the subscribers of the change
 * topics they name. Every button of the composer carries the whole form:
 * the text is checked first and stored in the same transaction as what the
 * button does (save, publish, schedule, back to draft), so a refusal changes
 * nothing and an edit is never dropped. Published ones join the public
 * changelog (/changes, the change feeds, /api/v1/changes.json). They carry
 * no objection link: a change customers may object to is a subprocessor
 * notice, drafted from content/.
 */
import type { Db } from '../../../db/client.ts';
import { recordAudit } from '../audit/log.ts';
import type { JobHandler } from '../jobs/jobs.ts';
import { cancelJob, scheduleJob } from '../jobs/legacy.ts';
import { countAudience, enqueueNotification, notifyStaff } from '../notify/legacy.ts';
import type { StaffAudience } from '../notify/staff-recipients.ts';
import type { ChannelName, NotificationContent } from '../notify/types.ts';
import type { Topic } from '../subscriptions/topics.ts';
import { announcementMessages } from './announcement-messages.ts';
import { parseDay, today } from './history.ts';
import type { NoticeContext } from './notices.ts';
import { scheduledPublication } from './scheduled.ts';

const DAY = 86_400_000;

/** The topics an announcement may go to: those of changes. Subscribers chose them; a new topic would reach no one yet. */
export const announcementTopics = ['subprocessors', 'docs'] as const satisfies readonly Topic[];
export type AnnouncementTopic = (typeof announcementTopics)[number];

export const TITLE_MAX = 200;
export const BODY_MAX = 20_000;

export type AnnouncementStatus = 'draft' | 'scheduled' | 'published' | 'discarded';

export interface Announcement {
  id: number;
  status: AnnouncementStatus;
  title: string;
  body: string;
  topics: AnnouncementTopic[];
  effectiveOn: string | null;
  publishAt: Date | null;
  publishedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What the composer posts. */
export interface AnnouncementInput {
  title: string;
  body: string;
  topics: readonly string[];
  /** YYYY-MM-DD, or empty for none */
  effectiveOn: string;
  /**
   * The composer's key for a new announcement (src/pages/console/announcements/compose.astro): the
   * same form posted twice finds what the first post made. Anything but 16 to 64 letters, digits,
   * `-` or `_` is ignored.
   */
  formKey?: string;
}

const FORM_KEY = /^[A-Za-z0-9_-]{16,64}$/;

export type AnnouncementContext = NoticeContext;

type Refusal = { ok: false; message: string };

interface Row {
  id: number;
  status: AnnouncementStatus;
  title: string;
  body: string;
  topics: string;
  effective_on: string | null;
  publish_at: number | null;
  published_at: number | null;
  created_at: number;
  updated_at: number;
}

const isAnnouncementTopic = (value: string): value is AnnouncementTopic => (announcementTopics as readonly string[]).includes(value);

const toAnnouncement = (r: Row): Announcement => ({
  id: r.id,
  status: r.status,
  title: r.title,
  body: r.body,
  topics: (JSON.parse(r.topics) as string[]).filter(isAnnouncementTopic),
  effectiveOn: r.effective_on,
  publishAt: r.publish_at === null ? null : new Date(r.publish_at),
  publishedAt: r.published_at === null ? null : new Date(r.published_at),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

function audit(
  ctx: AnnouncementContext,
  action: Parameters<typeof recordAudit>[1]['action'],
  id: number,
  summary: Record<string, unknown>,
) {
  recordAudit(
    ctx.db,
    {
      actor: ctx.actor ? { type: 'staff', id: ctx.actor.id, label: ctx.actor.label } : { type: 'system' },
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      action,
      target: `announcement:${id}`,
      summary,
    },
    ctx.now,
  );
}

export function getAnnouncement(db: Db, id: number): Announcement | null {
  const row = db.$client.prepare('SELECT * FROM announcements WHERE id = ?').get(id) as Row | undefined;
  return row ? toAnnouncement(row) : null;
}

/** Drafts and scheduled ones (oldest first), then the latest published. */
export function listAnnouncements(db: Db): { open: Announcement[]; published: Announcement[] } {
  const open = db.$client
    .prepare(`SELECT * FROM announcements WHERE status IN ('draft', 'scheduled') ORDER BY created_at, id`)
    .all() as Row[];
  const published = db.$client
    .prepare(`SELECT * FROM announcements WHERE status = 'published' ORDER BY published_at DESC, id DESC LIMIT 100`)
    .all() as Row[];
  return { open: open.map(toAnnouncement), published: published.map(toAnnouncement) };
}

export interface PublishedAnnouncement {
  id: number;
  title: string;
  body: string;
  topics: AnnouncementTopic[];
  effectiveOn: string | null;
  publishedAt: Date;
}

/** Published announcements, newest first: for the changelog, its feeds and its JSON. */
export function publishedAnnouncements(db: Db, limit = 200): PublishedAnnouncement[] {
  const rows = db.$client
    .prepare(`SELECT * FROM announcements WHERE status = 'published' ORDER BY published_at DESC, id DESC LIMIT ?`)
    .all(limit) as Row[];
  return rows.map(toAnnouncement).map((a) => ({
    id: a.id,
    title: a.title,
    body: a.body,
    topics: a.topics,
    effectiveOn: a.effectiveOn,
    publishedAt: a.publishedAt ?? a.updatedAt,
  }));
}

/** A stored announcement as the composer would post it. */
export const inputOf = (a: Announcement): AnnouncementInput => ({
  title: a.title,
  body: a.body,
  topics: a.topics,
  effectiveOn: a.effectiveOn ?? '',
});

/** An announcement as it will be stored, once every check passed. */
interface Checked {
  title: string;
  body: string;
  topics: AnnouncementTopic[];
  effectiveOn: string | null;
}

/** Why this text cannot go out on `day` (YYYY-MM-DD), or what to store. Messages name the field. */
export function checkAnnouncement(input: AnnouncementInput, day: string): { ok: true; value: Checked } | Refusal {
  const title = input.title.replace(/\s+/g, ' ').trim();
  if (title === '') return { ok: false, message: 'Write a title: it is the subject of the email and the heading everywhere.' };
  if (title.length > TITLE_MAX) return { ok: false, message: `The title is too long (${TITLE_MAX} characters at most).` };
  const body = input.body.trim();
  if (body === '') return { ok: false, message: 'Write the announcement itself: the body is empty.' };
  if (body.length > BODY_MAX)
    return { ok: false, message: `The body is too long (${BODY_MAX.toLocaleString('en-GB')} characters at most).` };
  const unknown = input.topics.filter((t) => !isAnnouncementTopic(t));
  if (unknown.length)
    return { ok: false, message: `Unknown topic "${unknown[0]?.slice(0, 30)}": choose subprocessor changes, document changes or both.` };
  const topics = announcementTopics.filter((t) => input.topics.includes(t));
  if (topics.length === 0)
    return { ok: false, message: 'Choose whom it goes to: the subscribers of subprocessor changes, of document changes, or both.' };
  let effectiveOn: string | null = null;
  const given = input.effectiveOn.trim();
  if (given !== '') {
    effectiveOn = parseDay(given);
    if (!effectiveOn) return { ok: false, message: `The effective date must be a date written YYYY-MM-DD, got "${given.slice(0, 20)}".` };
    if (effectiveOn < day) return { ok: false, message: 'The effective date cannot be before the announcement is published.' };
    if (effectiveOn > today(new Date(new Date(`${day}T00:00:00Z`).getTime() + 2 * 366 * DAY)))
      return { ok: false, message: 'The effective date must be within two years of the announcement.' };
  }
  return { ok: true, value: { title, body, topics, effectiveOn } };
}

const changesUrl = (publicUrl: URL, id: number | null) => new URL(id === null ? 'changes' : `changes#announcement-${id}`, publicUrl).href;

function content(ctx: AnnouncementContext, id: number | null, value: Checked): NotificationContent {
  return announcementMessages({
    organisation: ctx.site.organisation.name,
    id,
    title: value.title,
    body: value.body,
    effectiveOn: value.effectiveOn,
    topics: value.topics,
    changesUrl: changesUrl(ctx.publicUrl, id),
  });
}

const CHANNELS: readonly ChannelName[] = ['email', 'sms', 'slack', 'webhook'];

export interface AnnouncementPreview {
  content: NotificationContent;
  /** who it would reach now, per channel */
  recipients: Partial<Record<ChannelName, number>>;
}

/**
 * What each channel would send, and to how many, without storing anything. An announcement not yet
 * saved has no number: its link goes to /changes until it has one.
 */
export function previewAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput,
  at: Date | null,
): ({ ok: true } & AnnouncementPreview) | Refusal {
  const checked = checkAnnouncement(input, today(at ?? ctx.now));
  if (!checked.ok) return checked;
  return {
    ok: true,
    content: content(ctx, id, checked.value),
    recipients: countAudience(ctx.db, { kind: 'topics', topics: checked.value.topics }, CHANNELS),
  };
}

/**
 * The stored announcement when it can still be changed: by `id`, or for a new one (null id) by the
 * form's key, so a form posted twice does not make (or send) a second announcement; null: a new one.
 */
function changeable(db: Db, id: number | null, formKey?: string): { ok: true; current: Announcement | null } | Refusal {
  const key = formKey && FORM_KEY.test(formKey) ? formKey : null;
  const row =
    id !== null
      ? (db.$client.prepare('SELECT * FROM announcements WHERE id = ?').get(id) as Row | undefined)
      : key
        ? (db.$client.prepare('SELECT * FROM announcements WHERE form_key = ?').get(key) as Row | undefined)
        : undefined;
  if (!row) return id === null ? { ok: true, current: null } : { ok: false, message: 'There is no such announcement.' };
  const current = toAnnouncement(row);
  if (current.status === 'discarded') return { ok: false, message: 'This announcement was discarded.' };
  if (current.status === 'published') return { ok: false, message: 'This announcement is already published.' };
  return { ok: true, current };
}

/** Inserts or updates; inside the caller's transaction. Returns the id. */
function store(
  ctx: AnnouncementContext,
  id: number | null,
  value: Checked,
  status: 'draft' | 'scheduled',
  publishAt: Date | null,
  formKey?: string,
): number {
  const sqlite = ctx.db.$client;
  const topics = JSON.stringify(value.topics);
  if (id === null) {
    const row = sqlite
      .prepare(
        `INSERT INTO announcements (title, body, topics, effective_on, status, publish_at, form_key, created_by, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      )
      .get(
        value.title,
        value.body,
        topics,
        value.effectiveOn,
        status,
        publishAt?.getTime() ?? null,
        formKey && FORM_KEY.test(formKey) ? formKey : null,
        ctx.actor?.id ?? null,
        ctx.now.getTime(),
        ctx.now.getTime(),
      ) as { id: number };
    return row.id;
  }
  sqlite
    .prepare(
      'UPDATE announcements SET title = ?, body = ?, topics = ?, effective_on = ?, status = ?, publish_at = ?, updated_at = ? WHERE id = ?',
    )
    .run(value.title, value.body, topics, value.effectiveOn, status, publishAt?.getTime() ?? null, ctx.now.getTime(), id);
  return id;
}

const summaryOf = (value: Checked) => ({ title: value.title, topics: value.topics, effectiveOn: value.effectiveOn });

/** Saves a new or existing draft; a scheduled one stays scheduled (checked for the day it goes out). */
export function saveAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput,
): { ok: true; id: number } | Refusal {
  return ctx.db.$client
    .transaction(() => {
      const found = changeable(ctx.db, id, input.formKey);
      if (!found.ok) return found;
      const publishAt = found.current?.status === 'scheduled' ? found.current.publishAt : null;
      const checked = checkAnnouncement(input, today(publishAt ?? ctx.now));
      if (!checked.ok) return checked;
      const saved = store(ctx, found.current?.id ?? null, checked.value, publishAt ? 'scheduled' : 'draft', publishAt, input.formKey);
      audit(ctx, 'announcements.saved', saved, summaryOf(checked.value));
      return { ok: true as const, id: saved };
    })
    .immediate();
}

/** Marks it published and writes the notification with all its deliveries; inside the caller's transaction. */
function publishStored(ctx: AnnouncementContext, id: number, value: Checked): number {
  const { deliveries, notificationId } = enqueueNotification(
    ctx.db,
    {
      kind: 'announcement',
      title: value.title,
      threadKey: `announcement:${id}`,
      content: content(ctx, id, value),
      audience: { kind: 'topics', topics: value.topics },
      createdBy: ctx.actor?.id ?? null,
    },
    ctx.now,
  );
  ctx.db.$client
    .prepare(
      `UPDATE announcements SET status = 'published', publish_at = NULL, published_at = ?, published_by = ?, notification_id = ?, updated_at = ? WHERE id = ?`,
    )
    .run(ctx.now.getTime(), ctx.actor?.id ?? null, notificationId, ctx.now.getTime(), id);
  cancelJob(ctx.db, `announcement:${id}:publish`, ctx.now);
  audit(ctx, 'announcements.published', id, { ...summaryOf(value), deliveries });
  return deliveries;
}

/**
 * Publishes now: the text as posted (`input`), checked for today and stored in the same transaction
 * as the notification and its deliveries; `input` null publishes it as stored (the scheduler).
 */
export function publishAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput | null,
): { ok: true; id: number; deliveries: number } | Refusal {
  return ctx.db.$client
    .transaction(() => {
      const found = changeable(ctx.db, id, input?.formKey);
      if (!found.ok) return found;
      const source = input ?? (found.current && inputOf(found.current));
      if (!source) return { ok: false as const, message: 'There is no such announcement.' };
      const checked = checkAnnouncement(source, today(ctx.now));
      if (!checked.ok) return checked;
      const existing = found.current?.id ?? null;
      // the text as posted is stored first; the scheduler publishes what is stored
      const saved = input ? store(ctx, existing, checked.value, 'draft', null, input.formKey) : (existing ?? 0);
      return { ok: true as const, id: saved, deliveries: publishStored(ctx, saved, checked.value) };
    })
    .immediate();
}

/** Schedules (or moves) it: stored as posted, checked for the day it goes out, with a durable job. */
export function scheduleAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput,
  at: Date,
): { ok: true; id: number } | Refusal {
  if (Number.isNaN(at.getTime()) || at.getTime() <= ctx.now.getTime() + 30_000)
    return { ok: false, message: 'Choose a time at least a minute from now (UTC).' };
  if (at.getTime() > ctx.now.getTime() + 90 * DAY) return { ok: false, message: 'Schedule within the next 90 days.' };
  return ctx.db.$client
    .transaction(() => {
      const found = changeable(ctx.db, id, input.formKey);
      if (!found.ok) return found;
      const checked = checkAnnouncement(input, today(at));
      if (!checked.ok) return checked;
      const saved = store(ctx, found.current?.id ?? null, checked.value, 'scheduled', at, input.formKey);
      scheduleJob(ctx.db, `announcement:${saved}:publish`, 'announcements.publish', at, { announcementId: saved }, ctx.now);
      audit(ctx, 'announcements.scheduled', saved, { ...summaryOf(checked.value), at: at.toISOString() });
      return { ok: true as const, id: saved };
    })
    .immediate();
}

/** Back to draft, keeping the text as posted (checked as a draft's is). */
export function unscheduleAnnouncement(ctx: AnnouncementContext, id: number, input: AnnouncementInput | null): { ok: true } | Refusal {
  return ctx.db.$client
    .transaction(() => {
      const current = getAnnouncement(ctx.db, id);
      if (current?.status !== 'scheduled') return { ok: false as const, message: 'That announcement is not scheduled.' };
      const checked = checkAnnouncement(input ?? inputOf(current), today(ctx.now));
      if (!checked.ok) return checked;
      store(ctx, id, checked.value, 'draft', null);
      cancelJob(ctx.db, `announcement:${id}:publish`, ctx.now);
      audit(ctx, 'announcements.schedule_cancelled', id, summaryOf(checked.value));
      return { ok: true as const };
    })
    .immediate();
}

/** A draft or scheduled announcement is dropped (kept, marked discarded, for the audit trail). */
export function discardAnnouncement(ctx: AnnouncementContext, id: number): { ok: true } | Refusal {
  return ctx.db.$client
    .transaction(() => {
      const found = changeable(ctx.db, id);
      if (!found.ok) return found;
      ctx.db.$client
        .prepare(`UPDATE announcements SET status = 'discarded', publish_at = NULL, updated_at = ? WHERE id = ?`)
        .run(ctx.now.getTime(), id);
      cancelJob(ctx.db, `announcement:${id}:publish`, ctx.now);
      audit(ctx, 'announcements.discarded', id, { title: found.current?.title ?? '' });
      return { ok: true as const };
    })
    .immediate();
}

/** Staff about a scheduled announcement that could not go out (its effective date passed while nothing ran). */
function scheduledFailed(deps: StaffAudience & { publicUrl: URL }, ctx: AnnouncementContext, announcement: Announcement, reason: string) {
  ctx.db.$client
    .prepare(`UPDATE announcements SET status = 'draft', publish_at = NULL, updated_at = ? WHERE id = ?`)
    .run(ctx.now.getTime(), announcement.id);
  audit(ctx, 'announcements.schedule_failed', announcement.id, { reason });
  const subject = `Not published: the scheduled announcement "${announcement.title}"`;
  const link = new URL(`console/announcements/compose?id=${announcement.id}`, deps.publicUrl).href;
  const text = `${subject}. ${reason} It is a draft again: ${link}`;
  notifyStaff(deps, { kind: 'staff-announcement-failed', subject, text }, ctx.now);
}

export function announcementJobHandlers(deps: StaffAudience & Pick<AnnouncementContext, 'site' | 'publicUrl'>): Record<string, JobHandler> {
  return {
    'announcements.publish': scheduledPublication(deps, {
      idField: 'announcementId',
      load: getAnnouncement,
      publish: (ctx, announcement) => publishAnnouncement(ctx, announcement.id, null),
      failed: (ctx, announcement, reason) => scheduledFailed(deps, ctx, announcement, reason),
    }),
  };
}
