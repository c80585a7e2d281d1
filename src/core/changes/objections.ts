/**
 * Objections to a change notice, filed by a customer from the signed link
 * in the notice they received. Each is stored, acknowledged to the customer
 * on the channel the notice reached them by, and announced to staff, who
 * track it (open, in discussion, resolved, withdrawn) with notes. Late
 * objections are accepted and marked. Every change is audited.
 */
import type { Db } from '../../../db/client.ts';
import { recordAudit } from '../audit/log.ts';
import type { Site } from '../content/schema.ts';
import { escapeSlack } from '../incidents/markdown.ts';
import { enqueueNotification, notifyStaff } from '../notify/legacy.ts';
import { readObjectionToken } from '../notify/links.ts';
import type { StaffAudience } from '../notify/staff-recipients.ts';
import { linksLocked, refuseLink } from '../subscriptions/refusals.ts';
import { escapeHtml } from '../text/escape.ts';
import { today } from './history.ts';
import { longDate, noticeHeading } from './messages.ts';
import { getNotice, type Notice } from './notices.ts';

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

/** What the objection link opens: the notice, and any objection already filed from it. */
export interface ObjectionLink {
  notice: Notice;
  recipientId: number;
  organisation: string | null;
  existing: { createdAt: Date; late: boolean } | null;
  /** past the notice's objection deadline: still accepted, marked late */
  late: boolean;
}

export function openObjectionLink(db: Db, secret: string, token: string, now: Date): ObjectionLink | null {
  const read = readObjectionToken(secret, token);
  if (!read) return null;
  const notice = getNotice(db, read.noticeId);
  if (notice?.status !== 'published' || !notice.objectionDeadline) return null;
  const subscriber = db.$client
    .prepare('SELECT s.organisation FROM recipients r JOIN subscribers s ON s.id = r.subscriber_id WHERE r.id = ?')
    .get(read.recipientId) as { organisation: string | null } | undefined;
  const existing = filedFrom(db, read.noticeId, read.recipientId);
  return {
    notice,
    recipientId: read.recipientId,
    organisation: subscriber?.organisation ?? null,
    existing: existing ? { createdAt: new Date(existing.created_at), late: existing.late === 1 } : null,
    late: today(now) > notice.objectionDeadline,
  };
}

/** An objection link as a request presents it (refusals.ts counts and locks out as for subscription links). */
export type PresentedLink = { ok: true; link: ObjectionLink } | { ok: false; status: 404 | 429; message: string | null };

export interface LinkVisit {
  db: Db;
  secret: string;
  now: Date;
  ip: string | null;
}

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
  const locked = await linksLocked(visit);
  if (locked) return { ok: false, status: 429, message: locked };
  if (!readObjectionToken(visit.secret, token)) {
    if (!counted) await refuseLink(visit, 'objection');
    return { ok: false, status: 404, message: null };
  }
  const link = openObjectionLink(visit.db, visit.secret, token, visit.now);
  return link ? { ok: true, link } : { ok: false, status: 404, message: null };
}

function filedFrom(db: Db, noticeId: number, linkRecipient: number): { created_at: number; late: number } | undefined {
  return db.$client
    .prepare('SELECT created_at, late FROM objections WHERE notice_id = ? AND link_recipient = ?')
    .get(noticeId, linkRecipient) as { created_at: number; late: number } | undefined;
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

export interface ObjectionDeps extends StaffAudience {
  site: Site;
  publicUrl: URL;
  secret: string;
  now: Date;
  ip: string | null;
  userAgent: string | null;
}

export type FileResult = { ok: true; id: number; late: boolean } | { ok: false; message: string; locked?: true };

export async function fileObjection(deps: ObjectionDeps, token: string, input: ObjectionInput): Promise<FileResult> {
  const presented = await presentObjectionLink(deps, token);
  if (!presented.ok && presented.status === 429) return { ok: false, message: presented.message ?? '', locked: true };
  if (!presented.ok) return { ok: false, message: 'This objection link is not valid. Use the link in the notice you received.' };
  const { link } = presented;
  if (link.existing) return { ok: false, message: `We already received your objection on ${longDate(today(link.existing.createdAt))}.` };
  const reasons = input.reasons.trim();
  if (reasons === '') return { ok: false, message: 'Tell us why you object: the reasons are what we review.' };
  if (reasons.length > 10_000) return { ok: false, message: 'The reasons are too long (10,000 characters at most).' };
  const contactName = oneLine(input.contactName, 200) || null;
  const organisation = oneLine(input.organisation, 200) || link.organisation;
  const sqlite = deps.db.$client;
  const heading = noticeHeading(link.notice.diff);
  return sqlite
    .transaction((): FileResult => {
      // Checked again inside the write: two submissions of one form file one objection.
      const already = filedFrom(deps.db, link.notice.id, link.recipientId);
      if (already) return { ok: false, message: `We already received your objection on ${longDate(today(new Date(already.created_at)))}.` };
      const subscriber = sqlite.prepare('SELECT subscriber_id FROM recipients WHERE id = ?').get(link.recipientId) as
        | { subscriber_id: number | null }
        | undefined;
      const { id } = sqlite
        .prepare(
          `INSERT INTO objections (notice_id, recipient_id, link_recipient, subscriber_id, organisation, contact_name, reasons, status, late, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?) RETURNING id`,
        )
        .get(
          link.notice.id,
          subscriber ? link.recipientId : null,
          link.recipientId,
          subscriber?.subscriber_id ?? null,
          organisation,
          contactName,
          reasons,
          link.late ? 1 : 0,
          deps.now.getTime(),
          deps.now.getTime(),
        ) as { id: number };
      if (subscriber) acknowledge(deps, link, heading, id);
      tellStaff(deps, link, heading, id, organisation);
      recordAudit(
        deps.db,
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
      return { ok: true, id, late: link.late };
    })
    .immediate();
}

/** The acknowledgement, on the channel the notice reached them by. */
function acknowledge(deps: ObjectionDeps, link: ObjectionLink, heading: string, id: number): void {
  const org = deps.site.organisation.name;
  const lateLine = link.late ? ' It arrived after the objection deadline; we have recorded it and will still review it.' : '';
  const text = `${org} received your objection (reference O-${id}) to the notice "${heading}".${lateLine} Our privacy team will review it and contact you. Questions: ${deps.site.contacts.privacy.email}.`;
  enqueueNotification(
    deps.db,
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

function tellStaff(deps: ObjectionDeps, link: ObjectionLink, heading: string, id: number, organisation: string | null): void {
  const who = organisation ? ` from ${organisation}` : '';
  const subject = `New objection O-${id}${who}: ${heading}${link.late ? ' (late)' : ''}`;
  const url = new URL(`console/objections/${id}`, deps.publicUrl).href;
  const text = `${subject}. Review it and reply: ${url}`;
  const html = `<p>${escapeHtml(subject)}.</p><p><a href="${escapeHtml(url)}">Review it in the console</a></p>`;
  notifyStaff(deps, { kind: 'staff-objection', subject, text, html }, deps.now);
}

interface ObjectionRow {
  id: number;
  notice_id: number;
  organisation: string | null;
  contact_name: string | null;
  reasons: string;
  status: ObjectionStatus;
  late: number;
  created_at: number;
  updated_at: number;
}

function toObjection(db: Db, row: ObjectionRow, withNotes: boolean): Objection {
  const notice = getNotice(db, row.notice_id);
  const notes = withNotes
    ? (db.$client
        .prepare(
          'SELECT n.body, s.email, n.created_at FROM objection_notes n LEFT JOIN staff s ON s.id = n.staff_id WHERE n.objection_id = ? ORDER BY n.id',
        )
        .all(row.id) as { body: string; email: string | null; created_at: number }[])
    : [];
  return {
    id: row.id,
    noticeId: row.notice_id,
    noticeHeading: notice ? noticeHeading(notice.diff) : `notice ${row.notice_id}`,
    organisation: row.organisation,
    contactName: row.contact_name,
    reasons: row.reasons,
    status: row.status,
    late: row.late === 1,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    notes: notes.map((n) => ({ body: n.body, staff: n.email, createdAt: new Date(n.created_at) })),
  };
}

export function listObjections(db: Db, status?: ObjectionStatus): Objection[] {
  const rows = db.$client
    .prepare('SELECT * FROM objections WHERE (? IS NULL OR status = ?) ORDER BY created_at DESC, id DESC LIMIT 500')
    .all(status ?? null, status ?? null) as ObjectionRow[];
  return rows.map((r) => toObjection(db, r, false));
}

export function getObjection(db: Db, id: number): Objection | null {
  const row = db.$client.prepare('SELECT * FROM objections WHERE id = ?').get(id) as ObjectionRow | undefined;
  return row ? toObjection(db, row, true) : null;
}

export interface StaffChange {
  db: Db;
  now: Date;
  actor: { id: number; label: string };
  ip: string | null;
  userAgent: string | null;
}

/** Changes the status and/or adds a note; both audited in the same transaction. */
export function updateObjection(
  ctx: StaffChange,
  id: number,
  change: { status: string | null; note: string },
): { ok: true } | { ok: false; message: string } {
  const current = getObjection(ctx.db, id);
  if (!current) return { ok: false, message: 'There is no such objection.' };
  const status = change.status && change.status !== current.status ? change.status : null;
  if (status !== null && !(objectionStatuses as readonly string[]).includes(status))
    return { ok: false, message: `Choose a status: ${objectionStatuses.map((s) => objectionStatusLabels[s].toLowerCase()).join(', ')}.` };
  const note = change.note.trim();
  if (note.length > 5000) return { ok: false, message: 'The note is too long (5,000 characters at most).' };
  if (status === null && note === '') return { ok: false, message: 'Nothing to save: change the status or write a note.' };
  const actor = { type: 'staff' as const, id: ctx.actor.id, label: ctx.actor.label };
  ctx.db.$client
    .transaction(() => {
      if (status) {
        ctx.db.$client.prepare('UPDATE objections SET status = ?, updated_at = ? WHERE id = ?').run(status, ctx.now.getTime(), id);
        recordAudit(
          ctx.db,
          {
            actor,
            ip: ctx.ip,
            userAgent: ctx.userAgent,
            action: 'objections.status_changed',
            target: `objection:${id}`,
            summary: { before: current.status, after: status },
          },
          ctx.now,
        );
      }
      if (note) {
        ctx.db.$client
          .prepare('INSERT INTO objection_notes (objection_id, staff_id, body, created_at) VALUES (?, ?, ?, ?)')
          .run(id, ctx.actor.id, note, ctx.now.getTime());
        ctx.db.$client.prepare('UPDATE objections SET updated_at = ? WHERE id = ?').run(ctx.now.getTime(), id);
        // the note's length, not its words: notes may quote the customer
        recordAudit(
          ctx.db,
          {
            actor,
            ip: ctx.ip,
            userAgent: ctx.userAgent,
            action: 'objections.noted',
            target: `objection:${id}`,
            summary: { characters: note.length },
          },
          ctx.now,
        );
      }
    })
    .immediate();
  return { ok: true };
}
