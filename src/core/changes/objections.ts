/**
 * Objections to a change notice, filed by a customer from the signed link
 * in the notice they received. Each is stored, acknowledged to the customer
 * on the channel the notice reached them by, and announced to staff, who
 * track it (open, in discussion, resolved, withdrawn) with notes. Late
 * objections are accepted and marked. Every change is audited, in the
 * transaction that makes it.
 *
 * The rows are src/stores/objections.ts's (issue 15). Filing is one
 * transaction (the objection, its acknowledgement and the message to staff
 * in the outbox, its audit entry), idempotent on the link: a second filing,
 * also a concurrent one, files nothing and is told of the first. Staff's
 * decisions lock the objection's row while they run.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import {
  changeObjection,
  filedFrom,
  insertNote,
  insertObjection,
  linkRecipient,
  notesOf,
  type ObjectionRow,
  objectionForUpdate,
  objectionNotice,
  objectionRow,
  objectionRows,
} from '../../stores/objections.ts';
import { writeAudit } from '../audit/log.ts';
import type { Site } from '../content/schema.ts';
import { escapeSlack } from '../incidents/markdown.ts';
import { readObjectionToken } from '../notify/links.ts';
import { enqueueNotification } from '../notify/outbox.ts';
import { notifyStaff, type StaffChannels } from '../notify/staff-recipients.ts';
import { linksLocked, type RefusalContext, refuseLink } from '../subscriptions/refusals.ts';
import { escapeHtml } from '../text/escape.ts';
import { type ContentDiff, upgradeDiff } from './diff.ts';
import { today } from './history.ts';
import { longDate, noticeHeading } from './messages.ts';
import type { Notice } from './notices.ts';

export const objectionStatuses = ['open', 'in_discussion', 'resolved', 'withdrawn'] as const;
export type ObjectionStatus = (typeof objectionStatuses)[number];
export const objectionStatusLabels: Record<ObjectionStatus, string> = {
  open: 'Open',
  in_discussion: 'In discussion',
  resolved: 'Resolved',
  withdrawn: 'Withdrawn',
};

export interface Objection {
  id: number;
  noticeId: number;
  noticeHeading: string;
  organisation: string | null;
  contactName: string | null;
  reasons: string;
  status: ObjectionStatus;
  late: boolean;
  createdAt: Date;
  updatedAt: Date;
  notes: { body: string; staff: string | null; createdAt: Date }[];
}

/** What an objection link shows of its notice. */
export type ObjectionNotice = Pick<Notice, 'id' | 'status' | 'diff' | 'intro' | 'effectiveOn' | 'objectionDeadline'>;

/** What the objection link opens: the notice, and any objection already filed from it. */
export interface ObjectionLink {
  notice: ObjectionNotice;
  recipientId: number;
  organisation: string | null;
  existing: { createdAt: Date; late: boolean } | null;
  /** past the notice's objection deadline: still accepted, marked late */
  late: boolean;
}

/** The link's notice (published, with an objection period), what its recipient gave as their organisation, and any objection filed from it: one read. */
export async function openObjectionLink(database: Database, secret: string, token: string, now: Date): Promise<ObjectionLink | null> {
  const read = readObjectionToken(secret, token);
  if (!read) return null;
  return database.read(async (r): Promise<ObjectionLink | null> => {
    const row = await objectionNotice(r, read.noticeId);
    if (row?.status !== 'published' || !row.objectionDeadline) return null;
    const notice: ObjectionNotice = { ...row, diff: upgradeDiff(row.details as ContentDiff) };
    const recipient = await linkRecipient(r, read.recipientId);
    const existing = await filedFrom(r, read.noticeId, read.recipientId);
    return {
      notice,
      recipientId: read.recipientId,
      organisation: recipient?.organisation ?? null,
      existing: existing ? { createdAt: existing.createdAt, late: existing.late } : null,
      late: today(now) > row.objectionDeadline,
    };
  });
}

/** An objection link as a request presents it (refusals.ts counts and locks out as for subscription links). */
export type PresentedLink = { ok: true; link: ObjectionLink } | { ok: false; status: 404 | 429; message: string | null };

export interface LinkVisit {
  database: Database;
  secret: string;
  now: Date;
  ip: string | null;
}

/** The refusal counters and their audit entries are the subscriptions' (refusals.ts). */
const refusalContext = (visit: LinkVisit): RefusalContext => ({ database: visit.database, ip: visit.ip, now: visit.now });

/**
 * Refused while the client's address is locked out; a token we did not sign (or not spelled as we
 * sent it) is counted and audited like a forged subscription link. A link we signed whose notice is
 * gone is just gone (404), not an attempt.
 */
export async function presentObjectionLink(
  visit: LinkVisit,
  token: string,
  /** true when an action of the same request already presented (and counted) this token */
  counted = false,
): Promise<PresentedLink> {
  const locked = await linksLocked(refusalContext(visit));
  if (locked) return { ok: false, status: 429, message: locked };
  if (!readObjectionToken(visit.secret, token)) {
    if (!counted) await refuseLink(refusalContext(visit), 'objection');
    return { ok: false, status: 404, message: null };
  }
  const link = await openObjectionLink(visit.database, visit.secret, token, visit.now);
  return link ? { ok: true, link } : { ok: false, status: 404, message: null };
}

/** Names and organisations go into staff email subjects and Slack: one line, no control characters. */
const oneLine = (value: string, max: number) =>
  value
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, max);

export interface ObjectionInput {
  reasons: string;
  contactName: string;
  organisation: string;
}

export interface ObjectionDeps extends LinkVisit, StaffChannels {
  site: Site;
  publicUrl: URL;
  userAgent: string | null;
}

export type FileResult = { ok: true; id: number; late: boolean } | { ok: false; message: string; locked?: true };

const alreadyReceived = (createdAt: Date) => `We already received your objection on ${longDate(today(createdAt))}.`;

export async function fileObjection(deps: ObjectionDeps, token: string, input: ObjectionInput): Promise<FileResult> {
  const presented = await presentObjectionLink(deps, token);
  if (!presented.ok && presented.status === 429) return { ok: false, message: presented.message ?? '', locked: true };
  if (!presented.ok) return { ok: false, message: 'This objection link is not valid. Use the link in the notice you received.' };
  const { link } = presented;
  if (link.existing) return { ok: false, message: alreadyReceived(link.existing.createdAt) };
  const reasons = input.reasons.trim();
  if (reasons === '') return { ok: false, message: 'Tell us why you object: the reasons are what we review.' };
  if (reasons.length > 10_000) return { ok: false, message: 'The reasons are too long (10,000 characters at most).' };
  const contactName = oneLine(input.contactName, 200) || null;
  const organisation = oneLine(input.organisation, 200) || link.organisation;
  const heading = noticeHeading(link.notice.diff);
  const filed = await deps.database.transaction(async (tx) => {
    // The recipient as it is now: one who unsubscribed since is gone, and is not written to.
    const recipient = await linkRecipient(tx, link.recipientId);
    const id = await insertObjection(tx, {
      noticeId: link.notice.id,
      recipientId: recipient ? link.recipientId : null,
      linkRecipient: link.recipientId,
      subscriberId: recipient?.subscriberId ?? null,
      organisation,
      contactName,
      reasons,
      late: link.late,
      createdAt: deps.now,
    });
    // Two submissions of one form (also at once) file one objection: the second is told of the first.
    if (id === undefined) return { ok: false as const, already: await filedFrom(tx, link.notice.id, link.recipientId) };
    if (recipient) await acknowledge(tx, deps, link, heading, id);
    await tellStaff(tx, deps, link, heading, id, organisation);
    await writeAudit(
      tx,
      {
        actor: { type: 'anonymous' },
        ip: deps.ip,
        userAgent: deps.userAgent,
        action: 'objections.filed',
        target: `objection:${id}`,
        summary: { notice: link.notice.id, late: link.late },
      },
      deps.now,
    );
    return { ok: true as const, id };
  });
  if (!filed.ok) return { ok: false, message: alreadyReceived(filed.already?.createdAt ?? deps.now) };
  return { ok: true, id: filed.id, late: link.late };
}

/** The acknowledgement, on the channel the notice reached them by. */
async function acknowledge(tx: Tx, deps: ObjectionDeps, link: ObjectionLink, heading: string, id: number): Promise<void> {
  const org = deps.site.organisation.name;
  const lateLine = link.late ? ' It arrived after the objection deadline; we have recorded it and will still review it.' : '';
  const text = `${org} received your objection (reference O-${id}) to the notice "${heading}".${lateLine} Our privacy team will review it and contact you. Questions: ${deps.site.contacts.privacy.email}.`;
  await enqueueNotification(
    tx,
    {
      kind: 'objection-ack',
      title: `Objection O-${id} received`,
      content: {
        email: { subject: `We received your objection (O-${id}): ${heading}`, html: `<p>${escapeHtml(text)}</p>`, text },
        sms: {
          body: `${org}: we received your objection O-${id} to "${heading}" and will review it.`,
          link: new URL('changes', deps.publicUrl).href,
        },
        slack: { text: escapeSlack(text), blocks: [{ type: 'section', text: { type: 'plain_text', text } }] },
        webhook: { type: 'objection.received', data: { objection: { id, noticeId: link.notice.id, late: link.late } } },
      },
      audience: { kind: 'recipients', ids: [link.recipientId] },
    },
    deps.now,
  );
}

async function tellStaff(
  tx: Tx,
  deps: ObjectionDeps,
  link: ObjectionLink,
  heading: string,
  id: number,
  organisation: string | null,
): Promise<void> {
  const who = organisation ? ` from ${organisation}` : '';
  const subject = `New objection O-${id}${who}: ${heading}${link.late ? ' (late)' : ''}`;
  const url = new URL(`console/objections/${id}`, deps.publicUrl).href;
  const text = `${subject}. Review it and reply: ${url}`;
  const html = `<p>${escapeHtml(subject)}.</p><p><a href="${escapeHtml(url)}">Review it in the console</a></p>`;
  await notifyStaff(tx, deps, { kind: 'staff-objection', subject, text, html }, deps.now);
}

const LIST_LIMIT = 500;

function toObjection(row: ObjectionRow, notes: Objection['notes']): Objection {
  return {
    id: row.id,
    noticeId: row.noticeId,
    noticeHeading: row.noticeDetails ? noticeHeading(upgradeDiff(row.noticeDetails as ContentDiff)) : `notice ${row.noticeId}`,
    organisation: row.organisation,
    contactName: row.contactName,
    reasons: row.reasons,
    status: row.status,
    late: row.late,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    notes,
  };
}

/** Newest first, at most 500 (without their notes). */
export async function listObjections(database: Database, status?: ObjectionStatus): Promise<Objection[]> {
  const rows = await database.read((r) => objectionRows(r, status, LIST_LIMIT));
  return rows.map((row) => toObjection(row, []));
}

export function getObjection(database: Database, id: number): Promise<Objection | null> {
  return database.read(async (r) => {
    const row = await objectionRow(r, id);
    return row ? toObjection(row, await notesOf(r, id)) : null;
  });
}

export interface StaffChange {
  database: Database;
  now: Date;
  actor: { id: number; label: string };
  ip: string | null;
  userAgent: string | null;
}

const isStatus = (value: string): value is ObjectionStatus => (objectionStatuses as readonly string[]).includes(value);

/**
 * Changes the status and/or adds a note; both audited in the same transaction. The objection's row
 * is locked first (src/stores/objections.ts), so of two staff deciding at once the second sees, and
 * audits as "before", the status the first left.
 */
export function updateObjection(
  ctx: StaffChange,
  id: number,
  change: { status: string | null; note: string },
): Promise<{ ok: true } | { ok: false; message: string }> {
  const note = change.note.trim();
  return ctx.database.transaction(async (tx): Promise<{ ok: true } | { ok: false; message: string }> => {
    const current = await objectionForUpdate(tx, id);
    if (!current) return { ok: false, message: 'There is no such objection.' };
    const wanted = change.status && change.status !== current.status ? change.status : null;
    if (wanted !== null && !isStatus(wanted))
      return { ok: false, message: `Choose a status: ${objectionStatuses.map((s) => objectionStatusLabels[s].toLowerCase()).join(', ')}.` };
    if (note.length > 5000) return { ok: false, message: 'The note is too long (5,000 characters at most).' };
    if (wanted === null && note === '') return { ok: false, message: 'Nothing to save: change the status or write a note.' };
    const audit = (action: 'objections.status_changed' | 'objections.noted', summary: Record<string, unknown>) =>
      writeAudit(
        tx,
        {
          actor: { type: 'staff', id: ctx.actor.id, label: ctx.actor.label },
          ip: ctx.ip,
          userAgent: ctx.userAgent,
          action,
          target: `objection:${id}`,
          summary,
        },
        ctx.now,
      );
    if (wanted) {
      await changeObjection(tx, id, { status: wanted, at: ctx.now });
      await audit('objections.status_changed', { before: current.status, after: wanted });
    }
    if (note) {
      await insertNote(tx, { objectionId: id, staffId: ctx.actor.id, body: note, createdAt: ctx.now });
      await changeObjection(tx, id, { at: ctx.now });
      // the note's length, not its words: notes may quote the customer
      await audit('objections.noted', { characters: note.length });
    }
    return { ok: true };
  });
}
