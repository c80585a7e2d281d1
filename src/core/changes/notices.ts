/**
 * Change notices: detected from content/, edited and published (now or at a
 * time) by staff, fanned out to the topic's subscribers. Detection is
 * idempotent: a difference already drafted is not drafted again, and a
 * draft whose difference is gone (content changed back or again) is
 * superseded. Publishing is one transaction: the notice, its dates and
 * the notification with all deliveries. The rows are src/stores/change-notices.ts's, on SQLite and
 * PostgreSQL (issue 15); what keeps concurrent staff and nodes apart is said at each flow.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  insertDraft,
  latestPublishedNotices,
  markDraft,
  markPublished,
  markScheduled,
  type NoticeRecord,
  noticeById,
  noticeForChange,
  openNotices,
  setNotification,
  supersedeNotice,
  writeNoticeText,
} from '../../stores/change-notices.ts';
import { type AuditInput, writeAudit } from '../audit/log.ts';
import type { TrustContent } from '../content/load.ts';
import type { Site } from '../content/schema.ts';
import { cancelJob, type JobHandler, scheduleJob } from '../jobs/jobs.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
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
import { publishedDocs, publishedSubprocessors, today } from './history.ts';
import { noticeHeading, noticeMessages } from './messages.ts';
import { Refused, refusedAs, scheduledPublication } from './scheduled.ts';

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
  database: Database;
  now: Date;
  site: Site;
  publicUrl: URL;
  actor: NoticeActor | null;
  ip: string | null;
  userAgent: string | null;
}

/** An audit entry in the transaction that makes the change. */
async function audit(tx: Tx, ctx: NoticeContext, action: AuditInput['action'], target: string, summary: Record<string, unknown>) {
  await writeAudit(
    tx,
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

const toNotice = (r: NoticeRecord): Notice => ({
  id: r.id,
  status: r.status,
  diff: upgradeDiff(r.details as ContentDiff),
  intro: r.intro,
  effectiveOn: r.effectiveOn,
  objectionDeadline: r.objectionDeadline,
  overrideReason: r.overrideReason,
  publishAt: r.publishAt,
  publishedAt: r.publishedAt,
  detectedAt: r.detectedAt,
});

/** What detection compares: content/ against what was published, read in detection's transaction. */
async function contentDiffs(tx: Tx, content: Pick<TrustContent, 'subprocessors' | 'docs'>): Promise<ContentDiff[]> {
  return [
    ...diffSubprocessors(await publishedSubprocessors(tx), storedSubprocessors(content.subprocessors)),
    ...diffDocs(await publishedDocs(tx), storedDocs(content.docs)),
  ];
}

/**
 * Compares content/ with what was published; drafts what is new, supersedes what no longer differs.
 *
 * Safe when run on two nodes at once (each server detects at start): the transaction is `serializable`,
 * so of two detections that both find a difference undrafted, one commits and the other is re-run and
 * finds the draft (the unique index on open fingerprints is the backstop): exactly one draft per change.
 */
export async function detectChanges(
  ctx: NoticeContext,
  content: Pick<TrustContent, 'subprocessors' | 'docs'>,
): Promise<{ drafted: Notice[]; superseded: number }> {
  return detectDifferences(ctx, (tx) => contentDiffs(tx, content));
}

/**
 * Detection with the differences `differences(tx)` finds, first thing in its transaction: the open
 * notices made to match them, `serializable` (see `detectChanges`).
 */
export async function detectDifferences(
  ctx: NoticeContext,
  differences: (tx: Tx) => readonly ContentDiff[] | Promise<readonly ContentDiff[]>,
): Promise<{ drafted: Notice[]; superseded: number }> {
  return ctx.database.transaction(async (tx) => reconcileNotices(tx, ctx, await differences(tx)), { serializable: true });
}

/**
 * Detection's writes, in its serializable transaction: the open notices made to match `diffs`, one
 * draft per difference, the rest superseded and their publication jobs cancelled.
 */
async function reconcileNotices(
  tx: Tx,
  ctx: NoticeContext,
  diffs: readonly ContentDiff[],
): Promise<{ drafted: Notice[]; superseded: number }> {
  const wanted = new Map(diffs.map((d) => [fingerprint(d), d]));
  let superseded = 0;
  for (const row of await openNotices(tx)) {
    // From the stored difference rather than the stored fingerprint: one drafted before
    // structured locations is the same difference when its places are the same.
    const print = fingerprint(row.details as ContentDiff);
    if (wanted.has(print)) {
      wanted.delete(print);
      continue;
    }
    if ((await supersedeNotice(tx, row.id)) !== 1) continue;
    superseded++;
    await cancelJob(tx, `notice:${row.id}:publish`, ctx.now);
  }
  const drafted: Notice[] = [];
  for (const [print, diff] of wanted) {
    const row = await insertDraft(tx, {
      subject: diff.subject,
      change: diff.change,
      subjectId: diff.id,
      subjectName: diff.name,
      details: diff,
      fingerprint: print,
      intro: defaultIntro(ctx.site, diff),
      detectedAt: ctx.now,
    });
    drafted.push(toNotice(row));
  }
  if (drafted.length || superseded)
    await audit(tx, ctx, 'changes.detected', 'changes', {
      drafted: drafted.map((n) => `${n.diff.subject}:${n.diff.change}:${n.diff.id}`),
      superseded,
    });
  return { drafted, superseded };
}

export async function getNotice(database: Database, id: number): Promise<Notice | null> {
  const row = await database.read((r) => noticeById(r, id));
  return row ? toNotice(row) : null;
}

/** Drafts and scheduled notices first (oldest first), then the latest published ones. */
export async function listNotices(database: Database): Promise<{ open: Notice[]; published: Notice[] }> {
  return database.read(async (r) => ({
    open: (await openNotices(r)).map(toNotice),
    published: (await latestPublishedNotices(r, 100)).map(toNotice),
  }));
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

/** Stores a checked edit and audits it; inside the caller's transaction, on a notice it read open (and locked). */
async function writeEdit(tx: Tx, ctx: NoticeContext, notice: Notice, edit: CheckedEdit): Promise<Notice> {
  const text = {
    intro: edit.intro,
    effectiveOn: edit.effectiveOn,
    objectionDeadline: edit.objectionDeadline,
    overrideReason: edit.overrideReason,
  };
  // Conditional on the notice still being open: with the row locked it always is; without, a refusal.
  if ((await writeNoticeText(tx, notice.id, text)) !== 1) throw new Refused('This notice was published or replaced meanwhile.');
  await audit(tx, ctx, 'changes.notice_edited', `notice:${notice.id}`, {
    effectiveOn: edit.effectiveOn ?? 'default',
    objectionDeadline: edit.objectionDeadline ?? 'default',
  });
  if (edit.overrideReason)
    await audit(tx, ctx, 'changes.notice_period_overridden', `notice:${notice.id}`, {
      effectiveOn: edit.effectiveOn,
      earliest: edit.earliest,
      reason: edit.overrideReason,
    });
  return { ...notice, ...text };
}

/** The notice, locked for the rest of the transaction on PostgreSQL (src/stores/change-notices.ts). */
async function lockedNotice(tx: Tx, id: number): Promise<Notice | null> {
  const row = await noticeForChange(tx, id);
  return row ? toNotice(row) : null;
}

const editable = (notice: Notice | null): notice is Notice => notice?.status === 'draft' || notice?.status === 'scheduled';

type Refusal = { ok: false; message: string };

/** Saves a draft or scheduled notice (a scheduled one stays scheduled: its dates are checked for its publication day). */
export async function editNotice(ctx: NoticeContext, id: number, edit: NoticeEdit): Promise<{ ok: true } | Refusal> {
  return refusedAs(
    ctx.database.transaction(async (tx) => {
      const notice = await lockedNotice(tx, id);
      if (!editable(notice)) return { ok: false as const, message: 'Only a draft or scheduled notice can be edited.' };
      const checked = checkEdit(ctx.site, notice, edit, today(notice.publishAt ?? ctx.now));
      if (!checked.ok) return checked;
      await writeEdit(tx, ctx, notice, checked.edit);
      return { ok: true as const };
    }),
  );
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
 * nothing and an edit is never dropped. Two staff members publishing one notice at once: the row is
 * locked (PostgreSQL) and the status changes only from open (both engines), so one publishes and the
 * other is told it is already published.
 */
export async function publishNotice(
  ctx: NoticeContext,
  id: number,
  edit: NoticeEdit | null = null,
): Promise<{ ok: true; deliveries: number } | Refusal> {
  return refusedAs(ctx.database.transaction(async (tx) => publishIn(tx, ctx, id, edit)));
}

/** `publishNotice` in the caller's transaction (the scheduler's, which completes its job in it too). */
async function publishIn(
  tx: Tx,
  ctx: NoticeContext,
  id: number,
  edit: NoticeEdit | null,
): Promise<{ ok: true; deliveries: number } | Refusal> {
  const found = await lockedNotice(tx, id);
  const refused = statusProblem(found);
  if (refused || !found) return { ok: false as const, message: refused ?? 'There is no such notice.' };
  const day = today(ctx.now);
  let notice = found;
  if (edit) {
    const checked = checkEdit(ctx.site, notice, edit, day);
    if (!checked.ok) return checked;
    notice = await writeEdit(tx, ctx, notice, checked.edit);
  } else {
    const problem = storedDatesProblem(ctx.site, notice, day);
    if (problem) return { ok: false as const, message: `${problem} Edit the dates first.` };
  }
  const { effectiveOn, objectionDeadline } = noticeDates(ctx.site, notice, day);
  // The status changes first, and only from open: a second publisher never reaches the notification.
  const claimed = await markPublished(tx, id, { publishedAt: ctx.now, publishedBy: ctx.actor?.id ?? null, effectiveOn, objectionDeadline });
  if (claimed !== 1) throw new Refused('This notice is already published.');
  const { deliveries, notificationId } = await enqueueNotification(
    tx,
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
  await cancelJob(tx, `notice:${id}:publish`, ctx.now);
  await setNotification(tx, id, notificationId);
  await audit(tx, ctx, 'changes.published', `notice:${id}`, {
    change: `${notice.diff.subject}:${notice.diff.change}:${notice.diff.id}`,
    effectiveOn,
    objectionDeadline,
    deliveries,
  });
  return { ok: true as const, deliveries };
}

/** Schedules a draft (or moves a scheduled notice); with `edit`, stores it in the same transaction, checked for the day it goes out. */
export async function scheduleNotice(
  ctx: NoticeContext,
  id: number,
  at: Date,
  edit: NoticeEdit | null = null,
): Promise<{ ok: true } | Refusal> {
  if (Number.isNaN(at.getTime()) || at.getTime() <= ctx.now.getTime() + 30_000)
    return { ok: false, message: 'Choose a time at least a minute from now (UTC).' };
  if (at.getTime() > ctx.now.getTime() + 90 * DAY) return { ok: false, message: 'Schedule within the next 90 days.' };
  return refusedAs(
    ctx.database.transaction(async (tx) => {
      const notice = await lockedNotice(tx, id);
      if (!editable(notice)) return { ok: false as const, message: statusProblem(notice) ?? 'Only a draft can be scheduled.' };
      if (edit) {
        const checked = checkEdit(ctx.site, notice, edit, today(at));
        if (!checked.ok) return checked;
        await writeEdit(tx, ctx, notice, checked.edit);
      } else {
        const problem = storedDatesProblem(ctx.site, notice, today(at));
        if (problem) return { ok: false as const, message: `${problem} Edit the dates first.` };
      }
      if ((await markScheduled(tx, id, at)) !== 1) throw new Refused('This notice was published or replaced meanwhile.');
      await scheduleJob(tx, `notice:${id}:publish`, 'changes.publish', at, { noticeId: id }, ctx.now);
      await audit(tx, ctx, 'changes.scheduled', `notice:${id}`, { at: at.toISOString() });
      return { ok: true as const };
    }),
  );
}

/** Back to draft; with `edit`, stored in the same transaction (checked for publication today, as a draft's are). */
export async function unscheduleNotice(ctx: NoticeContext, id: number, edit: NoticeEdit | null = null): Promise<{ ok: true } | Refusal> {
  return refusedAs(
    ctx.database.transaction(async (tx) => {
      const notice = await lockedNotice(tx, id);
      if (notice?.status !== 'scheduled') return { ok: false as const, message: 'That notice is not scheduled.' };
      if (edit) {
        const checked = checkEdit(ctx.site, notice, edit, today(ctx.now));
        if (!checked.ok) return checked;
        await writeEdit(tx, ctx, notice, checked.edit);
      }
      if ((await markDraft(tx, id)) !== 1) throw new Refused('That notice is not scheduled.');
      await cancelJob(tx, `notice:${id}:publish`, ctx.now);
      await audit(tx, ctx, 'changes.schedule_cancelled', `notice:${id}`, {});
      return { ok: true as const };
    }),
  );
}

export function noticeJobHandlers(deps: StaffChannels & { database: Database; site: Site; publicUrl: URL }): Record<string, JobHandler> {
  return {
    'changes.publish': scheduledPublication(deps, {
      idField: 'noticeId',
      load: async (tx, id) => lockedNotice(tx, id),
      publish: (tx, ctx, notice) => publishIn(tx, ctx, notice.id, null),
      failed: (tx, ctx, notice, reason) => scheduledNoticeFailed(tx, deps, ctx, notice, reason),
    }),
  };
}

/** Published late, its dates no longer allowed (the server was down past them): a draft again, and staff are told. */
async function scheduledNoticeFailed(
  tx: Tx,
  deps: StaffChannels & { publicUrl: URL },
  ctx: NoticeContext,
  notice: Notice,
  reason: string,
): Promise<void> {
  await markDraft(tx, notice.id);
  await audit(tx, ctx, 'changes.schedule_failed', `notice:${notice.id}`, { reason });
  const subject = `Not published: the scheduled notice "${noticeHeading(notice.diff)}"`;
  const link = new URL(`console/announcements#notice-${notice.id}`, deps.publicUrl).href;
  const text = `${subject}. ${reason} It is a draft again: ${link}`;
  await notifyStaff(tx, deps, { kind: 'staff-notice-failed', subject, text }, ctx.now);
}
