/**
 * Change notices: detected from content/, edited and published (now or at a
 * time) by staff, fanned out to the topic's subscribers. Detection is
 * idempotent: a difference already drafted is not drafted again, and a
 * draft whose difference is gone (content changed back or again) is
 * superseded. Publishing is one transaction: the notice, its dates and
 * the notification with all deliveries.
 */
import type { Db } from '../../../db/client.ts';
import { recordAudit } from '../audit/log.ts';
import type { TrustContent } from '../content/load.ts';
import type { Site } from '../content/schema.ts';
import type { JobHandler } from '../jobs/jobs.ts';
import { cancelJob, scheduleJob } from '../jobs/legacy.ts';
import { enqueueNotification, notifyStaff } from '../notify/legacy.ts';
import type { StaffAudience } from '../notify/staff-recipients.ts';
import {
  type ContentDiff,
  diffDocs,
  diffSubprocessors,
  fingerprint,
  materialFields,
  storedDocs,
  storedSubprocessors,
  upgradeDiff,
} from './diff.ts';
import { publishedDocsLegacy, publishedSubprocessorsLegacy, today } from './history.ts';
import { noticeHeading, noticeMessages } from './messages.ts';
import { scheduledPublication } from './scheduled.ts';

const DAY = 86_400_000;

export type NoticeStatus = 'draft' | 'scheduled' | 'published' | 'superseded';

export interface Notice {
  id: number;
  status: NoticeStatus;
  diff: ContentDiff;
  intro: string;
  /** as chosen by staff; null: the default for the publish date */
  effectiveOn: string | null;
  objectionDeadline: string | null;
  overrideReason: string | null;
  publishAt: Date | null;
  publishedAt: Date | null;
  detectedAt: Date;
}

export interface NoticeActor {
  id: number;
  label: string;
}

export interface NoticeContext {
  db: Db;
  now: Date;
  site: Site;
  publicUrl: URL;
  actor: NoticeActor | null;
  ip: string | null;
  userAgent: string | null;
}

function audit(
  ctx: NoticeContext,
  action: Parameters<typeof recordAudit>[1]['action'],
  target: string,
  summary: Record<string, unknown>,
): void {
  recordAudit(
    ctx.db,
    {
      actor: ctx.actor ? { type: 'staff', id: ctx.actor.id, label: ctx.actor.label } : { type: 'system' },
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      action,
      target,
      summary,
    },
    ctx.now,
  );
}

/**
 * Whether a change gives customers a say: adding a subprocessor, or changing who it is, what it does
 * with which data, where, or under which transfer mechanism. A new DPA link or website is news, not
 * a change customers may object to.
 */
export function needsObjectionPeriod(diff: ContentDiff): boolean {
  if (diff.subject !== 'subprocessor') return false;
  if (diff.change === 'added') return true;
  return diff.change === 'changed' && diff.fields.some((f) => (materialFields as readonly string[]).includes(f));
}

/** The earliest effective date the policy allows when published on `day`. */
export function earliestEffective(site: Site, diff: ContentDiff, day: string): string {
  if (!needsObjectionPeriod(diff)) return day;
  return today(new Date(new Date(`${day}T00:00:00Z`).getTime() + site.policies.subprocessorNoticeDays * DAY));
}

function defaultIntro(site: Site, diff: ContentDiff): string {
  const org = site.organisation.name;
  if (diff.subject === 'doc') {
    if (diff.change === 'added') return `We have published a new document, "${diff.name}".`;
    if (diff.change === 'removed') return `We have withdrawn the document "${diff.name}".`;
    return `We have updated "${diff.name}". The sections that changed are listed below.`;
  }
  if (diff.change === 'added')
    return `${org} intends to engage ${diff.name} as a new subprocessor. As our data processing agreement provides, we are telling you before it starts processing your data, and you may object.`;
  if (diff.change === 'removed') return `${org} no longer uses ${diff.name} as a subprocessor.`;
  if (!needsObjectionPeriod(diff))
    return `We have updated the details we publish about ${diff.name}. How it processes personal data does not change.`;
  return `${org} is changing how ${diff.name} processes personal data on our behalf. The details that change are listed below, and you may object.`;
}

interface NoticeRow {
  id: number;
  status: NoticeStatus;
  details: string;
  intro: string;
  effective_on: string | null;
  objection_deadline: string | null;
  override_reason: string | null;
  publish_at: number | null;
  published_at: number | null;
  detected_at: number;
  fingerprint: string;
}

const toNotice = (r: NoticeRow): Notice => ({
  id: r.id,
  status: r.status,
  diff: upgradeDiff(JSON.parse(r.details) as ContentDiff),
  intro: r.intro,
  effectiveOn: r.effective_on,
  objectionDeadline: r.objection_deadline,
  overrideReason: r.override_reason,
  publishAt: r.publish_at === null ? null : new Date(r.publish_at),
  publishedAt: r.published_at === null ? null : new Date(r.published_at),
  detectedAt: new Date(r.detected_at),
});

/** Compares content/ with what was published; drafts what is new, supersedes what no longer differs. */
export function detectChanges(
  ctx: NoticeContext,
  content: Pick<TrustContent, 'subprocessors' | 'docs'>,
): { drafted: Notice[]; superseded: number } {
  const sqlite = ctx.db.$client;
  return sqlite
    .transaction(() => {
      const diffs: ContentDiff[] = [
        ...diffSubprocessors(publishedSubprocessorsLegacy(ctx.db), storedSubprocessors(content.subprocessors)),
        ...diffDocs(publishedDocsLegacy(ctx.db), storedDocs(content.docs)),
      ];
      const wanted = new Map(diffs.map((d) => [fingerprint(d), d]));
      const open = sqlite.prepare(`SELECT * FROM change_notices WHERE status IN ('draft', 'scheduled')`).all() as NoticeRow[];
      let superseded = 0;
      for (const row of open) {
        // From the stored difference rather than the stored fingerprint: one drafted before
        // structured locations is the same difference when its places are the same.
        const print = fingerprint(JSON.parse(row.details) as ContentDiff);
        if (wanted.has(print)) {
          wanted.delete(print);
          continue;
        }
        sqlite.prepare(`UPDATE change_notices SET status = 'superseded' WHERE id = ?`).run(row.id);
        cancelJob(ctx.db, `notice:${row.id}:publish`, ctx.now);
        superseded++;
      }
      const insert = sqlite.prepare(
        `INSERT INTO change_notices (subject, change, subject_id, subject_name, details, fingerprint, status, intro, detected_at)
         VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?) RETURNING *`,
      );
      const drafted: Notice[] = [];
      for (const [print, diff] of wanted) {
        const row = insert.get(
          diff.subject,
          diff.change,
          diff.id,
          diff.name,
          JSON.stringify(diff),
          print,
          defaultIntro(ctx.site, diff),
          ctx.now.getTime(),
        ) as NoticeRow;
        drafted.push(toNotice(row));
      }
      if (drafted.length || superseded)
        audit(ctx, 'changes.detected', 'changes', {
          drafted: drafted.map((n) => `${n.diff.subject}:${n.diff.change}:${n.diff.id}`),
          superseded,
        });
      return { drafted, superseded };
    })
    .immediate();
}

export function getNotice(db: Db, id: number): Notice | null {
  const row = db.$client.prepare('SELECT * FROM change_notices WHERE id = ?').get(id) as NoticeRow | undefined;
  return row ? toNotice(row) : null;
}

/** Drafts and scheduled notices first (oldest first), then the latest published ones. */
export function listNotices(db: Db): { open: Notice[]; published: Notice[] } {
  const open = db.$client
    .prepare(`SELECT * FROM change_notices WHERE status IN ('draft', 'scheduled') ORDER BY detected_at, id`)
    .all() as NoticeRow[];
  const published = db.$client
    .prepare(`SELECT * FROM change_notices WHERE status = 'published' ORDER BY published_at DESC, id DESC LIMIT 100`)
    .all() as NoticeRow[];
  return { open: open.map(toNotice), published: published.map(toNotice) };
}

/** The dates a notice goes out with when published on `day`: staff's choice, else the policy's. */
export function noticeDates(
  site: Site,
  notice: Pick<Notice, 'diff' | 'effectiveOn' | 'objectionDeadline'>,
  day: string,
): { effectiveOn: string; objectionDeadline: string | null } {
  const effectiveOn = notice.effectiveOn ?? earliestEffective(site, notice.diff, day);
  const objectionDeadline = needsObjectionPeriod(notice.diff) ? (notice.objectionDeadline ?? effectiveOn) : null;
  return { effectiveOn, objectionDeadline };
}

export interface NoticeEdit {
  intro: string;
  /** YYYY-MM-DD or empty for the default */
  effectiveOn: string;
  objectionDeadline: string;
  /** required to set an effective date inside the notice period */
  overrideReason: string;
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const validDay = (value: string) =>
  DAY_PATTERN.test(value) &&
  !Number.isNaN(new Date(`${value}T00:00:00Z`).getTime()) &&
  new Date(`${value}T00:00:00Z`).toISOString().startsWith(value);

/** Why these dates cannot go out on `day`, or null. */
function datesProblem(
  site: Site,
  notice: Notice,
  edit: Pick<NoticeEdit, 'effectiveOn' | 'objectionDeadline' | 'overrideReason'>,
  day: string,
): string | null {
  for (const [name, value] of [
    ['effective date', edit.effectiveOn],
    ['objection deadline', edit.objectionDeadline],
  ] as const) {
    if (value !== '' && !validDay(value)) return `The ${name} must be a date written YYYY-MM-DD, got "${value.slice(0, 20)}".`;
  }
  const { effectiveOn, objectionDeadline } = noticeDates(
    site,
    { ...notice, effectiveOn: edit.effectiveOn || null, objectionDeadline: edit.objectionDeadline || null },
    day,
  );
  if (effectiveOn < day) return 'The effective date cannot be before the notice is published.';
  if (effectiveOn > today(new Date(new Date(`${day}T00:00:00Z`).getTime() + 2 * 366 * DAY)))
    return 'The effective date must be within two years of the notice.';
  const earliest = earliestEffective(site, notice.diff, day);
  if (effectiveOn < earliest && edit.overrideReason.trim() === '')
    return `The notice period is ${site.policies.subprocessorNoticeDays} days: the earliest effective date is ${earliest}. To go earlier, give the reason for the override (it is audited).`;
  if (objectionDeadline !== null && (objectionDeadline < day || objectionDeadline > effectiveOn))
    return 'The objection deadline must fall between the publication and the effective date.';
  return null;
}

/** The dates as saved, checked for publication on `day`. */
const storedDatesProblem = (site: Site, notice: Notice, day: string) =>
  datesProblem(
    site,
    notice,
    {
      effectiveOn: notice.effectiveOn ?? '',
      objectionDeadline: notice.objectionDeadline ?? '',
      overrideReason: notice.overrideReason ?? '',
    },
    day,
  );

/** An edit as it will be stored, once every check passed. */
interface CheckedEdit {
  intro: string;
  effectiveOn: string | null;
  objectionDeadline: string | null;
  /** kept only for an effective date inside the notice period */
  overrideReason: string | null;
  earliest: string;
}

/** Why this edit cannot be stored for publication on `day`, or what to store. */
function checkEdit(
  site: Site,
  notice: Notice,
  edit: NoticeEdit,
  day: string,
): { ok: true; edit: CheckedEdit } | { ok: false; message: string } {
  if (edit.intro.trim() === '') return { ok: false, message: 'Write an introduction: it is the first thing customers read.' };
  if (edit.intro.length > 5000) return { ok: false, message: 'The introduction is too long (5,000 characters at most).' };
  const problem = datesProblem(site, notice, edit, day);
  if (problem) return { ok: false, message: problem };
  const earliest = earliestEffective(site, notice.diff, day);
  return {
    ok: true,
    edit: {
      intro: edit.intro.trim(),
      effectiveOn: edit.effectiveOn || null,
      objectionDeadline: edit.objectionDeadline || null,
      overrideReason: edit.effectiveOn !== '' && edit.effectiveOn < earliest ? edit.overrideReason.trim().slice(0, 1000) : null,
      earliest,
    },
  };
}

/** Stores a checked edit and audits it; inside the caller's transaction. */
function writeEdit(ctx: NoticeContext, notice: Notice, edit: CheckedEdit): Notice {
  ctx.db.$client
    .prepare('UPDATE change_notices SET intro = ?, effective_on = ?, objection_deadline = ?, override_reason = ? WHERE id = ?')
    .run(edit.intro, edit.effectiveOn, edit.objectionDeadline, edit.overrideReason, notice.id);
  audit(ctx, 'changes.notice_edited', `notice:${notice.id}`, {
    effectiveOn: edit.effectiveOn ?? 'default',
    objectionDeadline: edit.objectionDeadline ?? 'default',
  });
  if (edit.overrideReason)
    audit(ctx, 'changes.notice_period_overridden', `notice:${notice.id}`, {
      effectiveOn: edit.effectiveOn,
      earliest: edit.earliest,
      reason: edit.overrideReason,
    });
  return {
    ...notice,
    intro: edit.intro,
    effectiveOn: edit.effectiveOn,
    objectionDeadline: edit.objectionDeadline,
    overrideReason: edit.overrideReason,
  };
}

const editable = (notice: Notice | null): notice is Notice => notice?.status === 'draft' || notice?.status === 'scheduled';

/** Saves a draft or scheduled notice (a scheduled one stays scheduled: its dates are checked for its publication day). */
export function editNotice(ctx: NoticeContext, id: number, edit: NoticeEdit): { ok: true } | { ok: false; message: string } {
  return ctx.db.$client
    .transaction(() => {
      const notice = getNotice(ctx.db, id);
      if (!editable(notice)) return { ok: false as const, message: 'Only a draft or scheduled notice can be edited.' };
      const checked = checkEdit(ctx.site, notice, edit, today(notice.publishAt ?? ctx.now));
      if (!checked.ok) return checked;
      writeEdit(ctx, notice, checked.edit);
      return { ok: true as const };
    })
    .immediate();
}

const listUrl = (publicUrl: URL, diff: ContentDiff) =>
  new URL(diff.subject === 'subprocessor' ? 'subprocessors' : diff.change === 'removed' ? 'docs' : `docs/${diff.id}`, publicUrl).href;

/** Why a notice cannot be published or scheduled at all, whatever its text and dates. */
function statusProblem(notice: Notice | null): string | null {
  if (!notice) return 'There is no such notice.';
  if (notice.status === 'published') return 'This notice is already published.';
  if (notice.status === 'superseded') return 'The content changed again: this notice was replaced by a newer draft.';
  return null;
}

/**
 * Publishes a draft or scheduled notice now: dates fixed, history extended, subscribers notified.
 * With `edit` (the form's fields, sent with Publish), the edit is checked for today and stored in the
 * same transaction: everything is checked before anything is stored or sent, so a refusal changes
 * nothing and an edit is never dropped.
 */
export function publishNotice(
  ctx: NoticeContext,
  id: number,
  edit: NoticeEdit | null = null,
): { ok: true; deliveries: number } | { ok: false; message: string } {
  const sqlite = ctx.db.$client;
  return sqlite
    .transaction(() => {
      const found = getNotice(ctx.db, id);
      const refused = statusProblem(found);
      if (refused || !found) return { ok: false as const, message: refused ?? 'There is no such notice.' };
      const day = today(ctx.now);
      let notice = found;
      if (edit) {
        const checked = checkEdit(ctx.site, notice, edit, day);
        if (!checked.ok) return checked;
        notice = writeEdit(ctx, notice, checked.edit);
      } else {
        const problem = storedDatesProblem(ctx.site, notice, day);
        if (problem) return { ok: false as const, message: `${problem} Edit the dates first.` };
      }
      const { effectiveOn, objectionDeadline } = noticeDates(ctx.site, notice, day);
      const { deliveries, notificationId } = enqueueNotification(
        ctx.db,
        {
          kind: 'change-notice',
          title: `${notice.diff.name}: ${notice.diff.change}`,
          threadKey: `notice:${id}`,
          content: noticeMessages({
            organisation: ctx.site.organisation.name,
            noticeId: id,
            diff: notice.diff,
            intro: notice.intro,
            effectiveOn,
            objectionDeadline,
            listUrl: listUrl(ctx.publicUrl, notice.diff),
            changesUrl: new URL(`changes#notice-${id}`, ctx.publicUrl).href,
          }),
          audience: { kind: 'topic', topic: notice.diff.subject === 'subprocessor' ? 'subprocessors' : 'docs' },
          createdBy: ctx.actor?.id ?? null,
        },
        ctx.now,
      );
      sqlite
        .prepare(
          `UPDATE change_notices SET status = 'published', published_at = ?, published_by = ?, effective_on = ?, objection_deadline = ?, notification_id = ? WHERE id = ?`,
        )
        .run(ctx.now.getTime(), ctx.actor?.id ?? null, effectiveOn, objectionDeadline, notificationId, id);
      cancelJob(ctx.db, `notice:${id}:publish`, ctx.now);
      audit(ctx, 'changes.published', `notice:${id}`, {
        change: `${notice.diff.subject}:${notice.diff.change}:${notice.diff.id}`,
        effectiveOn,
        objectionDeadline,
        deliveries,
      });
      return { ok: true as const, deliveries };
    })
    .immediate();
}

/** Schedules a draft (or moves a scheduled notice); with `edit`, stores it in the same transaction, checked for the day it goes out. */
export function scheduleNotice(
  ctx: NoticeContext,
  id: number,
  at: Date,
  edit: NoticeEdit | null = null,
): { ok: true } | { ok: false; message: string } {
  if (Number.isNaN(at.getTime()) || at.getTime() <= ctx.now.getTime() + 30_000)
    return { ok: false, message: 'Choose a time at least a minute from now (UTC).' };
  if (at.getTime() > ctx.now.getTime() + 90 * DAY) return { ok: false, message: 'Schedule within the next 90 days.' };
  return ctx.db.$client
    .transaction(() => {
      const notice = getNotice(ctx.db, id);
      if (!editable(notice)) return { ok: false as const, message: statusProblem(notice) ?? 'Only a draft can be scheduled.' };
      if (edit) {
        const checked = checkEdit(ctx.site, notice, edit, today(at));
        if (!checked.ok) return checked;
        writeEdit(ctx, notice, checked.edit);
      } else {
        const problem = storedDatesProblem(ctx.site, notice, today(at));
        if (problem) return { ok: false as const, message: `${problem} Edit the dates first.` };
      }
      ctx.db.$client.prepare(`UPDATE change_notices SET status = 'scheduled', publish_at = ? WHERE id = ?`).run(at.getTime(), id);
      scheduleJob(ctx.db, `notice:${id}:publish`, 'changes.publish', at, { noticeId: id }, ctx.now);
      audit(ctx, 'changes.scheduled', `notice:${id}`, { at: at.toISOString() });
      return { ok: true as const };
    })
    .immediate();
}

/** Back to draft; with `edit`, stored in the same transaction (checked for publication today, as a draft's are). */
export function unscheduleNotice(
  ctx: NoticeContext,
  id: number,
  edit: NoticeEdit | null = null,
): { ok: true } | { ok: false; message: string } {
  return ctx.db.$client
    .transaction(() => {
      const notice = getNotice(ctx.db, id);
      if (notice?.status !== 'scheduled') return { ok: false as const, message: 'That notice is not scheduled.' };
      if (edit) {
        const checked = checkEdit(ctx.site, notice, edit, today(ctx.now));
        if (!checked.ok) return checked;
        writeEdit(ctx, notice, checked.edit);
      }
      ctx.db.$client.prepare(`UPDATE change_notices SET status = 'draft', publish_at = NULL WHERE id = ?`).run(id);
      cancelJob(ctx.db, `notice:${id}:publish`, ctx.now);
      audit(ctx, 'changes.schedule_cancelled', `notice:${id}`, {});
      return { ok: true as const };
    })
    .immediate();
}

export function noticeJobHandlers(deps: StaffAudience & { site: Site; publicUrl: URL }): Record<string, JobHandler> {
  return {
    'changes.publish': scheduledPublication(deps, {
      idField: 'noticeId',
      load: getNotice,
      publish: (ctx, notice) => publishNotice(ctx, notice.id),
      failed: (ctx, notice, reason) => scheduledNoticeFailed(deps, ctx, notice, reason),
    }),
  };
}

/** Published late, its dates no longer allowed (the server was down past them): a draft again, and staff are told. */
function scheduledNoticeFailed(deps: StaffAudience & { publicUrl: URL }, ctx: NoticeContext, notice: Notice, reason: string): void {
  deps.db.$client.prepare(`UPDATE change_notices SET status = 'draft', publish_at = NULL WHERE id = ?`).run(notice.id);
  audit(ctx, 'changes.schedule_failed', `notice:${notice.id}`, { reason });
  const subject = `Not published: the scheduled notice "${noticeHeading(notice.diff)}"`;
  const link = new URL(`console/announcements#notice-${notice.id}`, deps.publicUrl).href;
  const text = `${subject}. ${reason} It is a draft again: ${link}`;
  notifyStaff(deps, { kind: 'staff-notice-failed', subject, text }, ctx.now);
}
