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
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import {
  type AnnouncementRecord,
  announcementById,
  announcementForChange,
  insertAnnouncement,
  latestPublishedAnnouncements,
  markAnnouncementDiscarded,
  markAnnouncementDraft,
  markAnnouncementPublished,
  openAnnouncements,
  setAnnouncementNotification,
  updateAnnouncement,
} from '../../stores/announcements.ts';
import { type AuditInput, writeAudit } from '../audit/log.ts';
import { cancelJob, type JobHandler, scheduleJob } from '../jobs/jobs.ts';
import { countAudience, enqueueNotification } from '../notify/outbox.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
import type { ChannelName, NotificationContent } from '../notify/types.ts';
import type { Topic } from '../subscriptions/topics.ts';
import { announcementMessages } from './announcement-messages.ts';
import { parseDay, today } from './history.ts';
import type { NoticeContext } from './notices.ts';
import { Refused, refusedAs, scheduledPublication } from './scheduled.ts';

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

const isAnnouncementTopic = (value: string): value is AnnouncementTopic => (announcementTopics as readonly string[]).includes(value);

const toAnnouncement = (r: AnnouncementRecord): Announcement => ({
  id: r.id,
  status: r.status,
  title: r.title,
  body: r.body,
  topics: (Array.isArray(r.topics) ? r.topics : []).filter((t): t is AnnouncementTopic => typeof t === 'string' && isAnnouncementTopic(t)),
  effectiveOn: r.effectiveOn,
  publishAt: r.publishAt,
  publishedAt: r.publishedAt,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
});

/** An audit entry in the transaction that makes the change. */
async function audit(tx: Tx, ctx: AnnouncementContext, action: AuditInput['action'], id: number, summary: Record<string, unknown>) {
  await writeAudit(
    tx,
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

export async function getAnnouncement(database: Database, id: number): Promise<Announcement | null> {
  const row = await database.read((r) => announcementById(r, id));
  return row ? toAnnouncement(row) : null;
}

/** Drafts and scheduled ones (oldest first), then the latest published. */
export async function listAnnouncements(database: Database): Promise<{ open: Announcement[]; published: Announcement[] }> {
  return database.read(async (r) => ({
    open: (await openAnnouncements(r)).map(toAnnouncement),
    published: (await latestPublishedAnnouncements(r, 100)).map(toAnnouncement),
  }));
}

export interface PublishedAnnouncement {
  id: number;
  title: string;
  body: string;
  topics: AnnouncementTopic[];
  effectiveOn: string | null;
  publishedAt: Date;
}

const toPublished = (a: Announcement): PublishedAnnouncement => ({
  id: a.id,
  title: a.title,
  body: a.body,
  topics: a.topics,
  effectiveOn: a.effectiveOn,
  publishedAt: a.publishedAt ?? a.updatedAt,
});

/** Published announcements, newest first: for the changelog, its feeds and its JSON; in the caller's read or transaction. */
export async function publishedAnnouncements(r: Reader | Tx, limit = 200): Promise<PublishedAnnouncement[]> {
  return (await latestPublishedAnnouncements(r, limit)).map(toAnnouncement).map(toPublished);
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

const CHANNELS: readonly ChannelName[] = ['email', 'sms', 'slack', 'webhook', 'teams', 'discord'];

export interface AnnouncementPreview {
  content: NotificationContent;
  /** who it would reach now, per channel */
  recipients: Partial<Record<ChannelName, number>>;
}

/**
 * What each channel would send, and to how many, without storing anything. An announcement not yet
 * saved has no number: its link goes to /changes until it has one.
 */
export async function previewAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput,
  at: Date | null,
): Promise<({ ok: true } & AnnouncementPreview) | Refusal> {
  const checked = checkAnnouncement(input, today(at ?? ctx.now));
  if (!checked.ok) return checked;
  const { topics } = checked.value;
  return {
    ok: true,
    content: content(ctx, id, checked.value),
    recipients: await ctx.database.read((r) => countAudience(r, { kind: 'topics', topics }, CHANNELS)),
  };
}

const keyOf = (formKey?: string) => (formKey && FORM_KEY.test(formKey) ? formKey : null);

/**
 * The stored announcement when it can still be changed: by `id`, or for a new one (null id) by the
 * form's key, so a form posted twice does not make (or send) a second announcement; null: a new one.
 * The row is locked for the rest of the transaction on PostgreSQL; two posts of a new form at once
 * both find no row, which is why a transaction that may insert runs `serializable` (`changing`).
 */
async function changeable(tx: Tx, id: number | null, formKey?: string): Promise<{ ok: true; current: Announcement | null } | Refusal> {
  const key = keyOf(formKey);
  const row = id !== null ? await announcementForChange(tx, { id }) : key ? await announcementForChange(tx, { formKey: key }) : undefined;
  if (!row) return id === null ? { ok: true, current: null } : { ok: false, message: 'There is no such announcement.' };
  const current = toAnnouncement(row);
  if (current.status === 'discarded') return { ok: false, message: 'This announcement was discarded.' };
  if (current.status === 'published') return { ok: false, message: 'This announcement is already published.' };
  return { ok: true, current };
}

/**
 * Runs a flow's transaction. One that may insert a new announcement (no id) runs `serializable` on
 * PostgreSQL: of two posts of one form at once, one inserts and the other is re-run and finds it by its
 * key (the unique index on the key is the backstop). A refusal found after a write rolls back.
 */
function changing<T>(ctx: AnnouncementContext, id: number | null, fn: (tx: Tx) => Promise<T>): Promise<T | Refusal> {
  return refusedAs(ctx.database.transaction(fn, { serializable: id === null }));
}

/** Inserts or updates; inside the caller's transaction, on an announcement `changeable` found open. Returns the id. */
async function store(
  tx: Tx,
  ctx: AnnouncementContext,
  id: number | null,
  value: Checked,
  status: 'draft' | 'scheduled',
  publishAt: Date | null,
  formKey?: string,
): Promise<number> {
  const text = { title: value.title, body: value.body, topics: [...value.topics], effectiveOn: value.effectiveOn };
  if (id === null)
    return insertAnnouncement(tx, text, { status, publishAt, formKey: keyOf(formKey), createdBy: ctx.actor?.id ?? null, at: ctx.now });
  // Only while it is open: with the row locked it is; without, a refusal.
  if ((await updateAnnouncement(tx, id, text, { status, publishAt, at: ctx.now })) !== 1)
    throw new Refused('This announcement was published or discarded meanwhile.');
  return id;
}

const summaryOf = (value: Checked) => ({ title: value.title, topics: value.topics, effectiveOn: value.effectiveOn });

/** Saves a new or existing draft; a scheduled one stays scheduled (checked for the day it goes out). */
export async function saveAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput,
): Promise<{ ok: true; id: number } | Refusal> {
  return changing(ctx, id, async (tx) => {
    const found = await changeable(tx, id, input.formKey);
    if (!found.ok) return found;
    const publishAt = found.current?.status === 'scheduled' ? found.current.publishAt : null;
    const checked = checkAnnouncement(input, today(publishAt ?? ctx.now));
    if (!checked.ok) return checked;
    const saved = await store(
      tx,
      ctx,
      found.current?.id ?? null,
      checked.value,
      publishAt ? 'scheduled' : 'draft',
      publishAt,
      input.formKey,
    );
    await audit(tx, ctx, 'announcements.saved', saved, summaryOf(checked.value));
    return { ok: true as const, id: saved };
  });
}

/**
 * Marks it published and writes the notification with all its deliveries; inside the caller's
 * transaction. The status changes first and only from open, so a second publisher never sends.
 */
async function publishStored(tx: Tx, ctx: AnnouncementContext, id: number, value: Checked): Promise<number> {
  if ((await markAnnouncementPublished(tx, id, ctx.actor?.id ?? null, ctx.now)) !== 1)
    throw new Refused('This announcement is already published.');
  const { deliveries, notificationId } = await enqueueNotification(
    tx,
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
  await cancelJob(tx, `announcement:${id}:publish`, ctx.now);
  await setAnnouncementNotification(tx, id, notificationId);
  await audit(tx, ctx, 'announcements.published', id, { ...summaryOf(value), deliveries });
  return deliveries;
}

/**
 * Publishes now: the text as posted (`input`), checked for today and stored in the same transaction
 * as the notification and its deliveries; `input` null publishes it as stored (the scheduler).
 */
export async function publishAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput | null,
): Promise<{ ok: true; id: number; deliveries: number } | Refusal> {
  return changing(ctx, id, (tx) => publishIn(tx, ctx, id, input));
}

/** `publishAnnouncement` in the caller's transaction (the scheduler's, which completes its job in it too). */
async function publishIn(
  tx: Tx,
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput | null,
): Promise<{ ok: true; id: number; deliveries: number } | Refusal> {
  const found = await changeable(tx, id, input?.formKey);
  if (!found.ok) return found;
  const source = input ?? (found.current && inputOf(found.current));
  if (!source) return { ok: false as const, message: 'There is no such announcement.' };
  const checked = checkAnnouncement(source, today(ctx.now));
  if (!checked.ok) return checked;
  const existing = found.current?.id ?? null;
  // the text as posted is stored first; the scheduler publishes what is stored
  const saved = input ? await store(tx, ctx, existing, checked.value, 'draft', null, input.formKey) : (existing ?? 0);
  return {
    ok: true as const,
    id: saved,
    deliveries: await publishStored(tx, ctx, saved, checked.value),
  };
}

/** Schedules (or moves) it: stored as posted, checked for the day it goes out, with a durable job. */
export async function scheduleAnnouncement(
  ctx: AnnouncementContext,
  id: number | null,
  input: AnnouncementInput,
  at: Date,
): Promise<{ ok: true; id: number } | Refusal> {
  if (Number.isNaN(at.getTime()) || at.getTime() <= ctx.now.getTime() + 30_000)
    return { ok: false, message: 'Choose a time at least a minute from now (UTC).' };
  if (at.getTime() > ctx.now.getTime() + 90 * DAY) return { ok: false, message: 'Schedule within the next 90 days.' };
  return changing(ctx, id, async (tx) => {
    const found = await changeable(tx, id, input.formKey);
    if (!found.ok) return found;
    const checked = checkAnnouncement(input, today(at));
    if (!checked.ok) return checked;
    const saved = await store(tx, ctx, found.current?.id ?? null, checked.value, 'scheduled', at, input.formKey);
    await scheduleJob(tx, `announcement:${saved}:publish`, 'announcements.publish', at, { announcementId: saved }, ctx.now);
    await audit(tx, ctx, 'announcements.scheduled', saved, { ...summaryOf(checked.value), at: at.toISOString() });
    return { ok: true as const, id: saved };
  });
}

/** Back to draft, keeping the text as posted (checked as a draft's is). */
export async function unscheduleAnnouncement(
  ctx: AnnouncementContext,
  id: number,
  input: AnnouncementInput | null,
): Promise<{ ok: true } | Refusal> {
  return changing(ctx, id, async (tx) => {
    const row = await announcementForChange(tx, { id });
    const current = row ? toAnnouncement(row) : null;
    if (current?.status !== 'scheduled') return { ok: false as const, message: 'That announcement is not scheduled.' };
    const checked = checkAnnouncement(input ?? inputOf(current), today(ctx.now));
    if (!checked.ok) return checked;
    await store(tx, ctx, id, checked.value, 'draft', null);
    await cancelJob(tx, `announcement:${id}:publish`, ctx.now);
    await audit(tx, ctx, 'announcements.schedule_cancelled', id, summaryOf(checked.value));
    return { ok: true as const };
  });
}

/** A draft or scheduled announcement is dropped (kept, marked discarded, for the audit trail). */
export async function discardAnnouncement(ctx: AnnouncementContext, id: number): Promise<{ ok: true } | Refusal> {
  return changing(ctx, id, async (tx) => {
    const found = await changeable(tx, id);
    if (!found.ok) return found;
    if ((await markAnnouncementDiscarded(tx, id, ctx.now)) !== 1)
      throw new Refused('This announcement was published or discarded meanwhile.');
    await cancelJob(tx, `announcement:${id}:publish`, ctx.now);
    await audit(tx, ctx, 'announcements.discarded', id, { title: found.current?.title ?? '' });
    return { ok: true as const };
  });
}

/** Staff about a scheduled announcement that could not go out (its effective date passed while nothing ran). */
async function scheduledFailed(
  tx: Tx,
  deps: StaffChannels & { publicUrl: URL },
  ctx: AnnouncementContext,
  announcement: Announcement,
  reason: string,
): Promise<void> {
  await markAnnouncementDraft(tx, announcement.id, ctx.now);
  await audit(tx, ctx, 'announcements.schedule_failed', announcement.id, { reason });
  const subject = `Not published: the scheduled announcement "${announcement.title}"`;
  const link = new URL(`console/announcements/compose?id=${announcement.id}`, deps.publicUrl).href;
  const text = `${subject}. ${reason} It is a draft again: ${link}`;
  await notifyStaff(tx, deps, { kind: 'staff-announcement-failed', subject, text }, ctx.now);
}

export function announcementJobHandlers(
  deps: StaffChannels & { database: Database } & Pick<AnnouncementContext, 'site' | 'publicUrl'>,
): Record<string, JobHandler> {
  return {
    'announcements.publish': scheduledPublication(deps, {
      idField: 'announcementId',
      load: async (tx, id) => {
        const row = await announcementForChange(tx, { id });
        return row ? toAnnouncement(row) : null;
      },
      publish: (tx, ctx, announcement) => publishIn(tx, ctx, announcement.id, null),
      failed: (tx, ctx, announcement, reason) => scheduledFailed(tx, deps, ctx, announcement, reason),
    }),
  };
}
