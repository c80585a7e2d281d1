/**
 * Evidence of notification, gathered from what Candor recorded: for a customer organisation, a
 * subscriber, one address, an incident or a change notice, and a period, every notice sent to it: what
 * it was about (incident update, breach notice and its phase, maintenance, change notice and its
 * objection deadline, announcement, postmortem), the channel, the address (opened), when the provider
 * accepted it (the first `sent` attempt, a `reconcile` attempt that found it sent included), when the
 * provider reported it delivered (its callback: the delivery's `finished_at` when `delivered`), the
 * content as stored for that channel, the audit entry that recorded the publication, and the audit
 * chain's head. Signed (document.ts) with the deployment's evidence key (key.ts); every export is
 * audited (`evidence.exported`) with its scope and period.
 *
 * What "organisation" means: the addresses that belong to it today (email addresses in its domains,
 * whatever their state now, and those staff placed in it), src/core/organisations/membership.ts.
 * The period bounds when each notification was published: `from` inclusive, `to` exclusive.
 * Content: the notification's rendering as stored, per channel; what a channel adds per recipient
 * when it sends (unsubscribe and manage links, a change notice's signed objection link where its
 * `{{objection:…}}` placeholder stands) is omitted, since those links are bearer credentials.
 */
import type { Database, Reader, Tx } from '../../../db/engine/types.ts';
import { lastEntry } from '../../stores/audit.ts';
import {
  acceptedAttempts,
  announcementsOf,
  auditEntriesFor,
  changeNoticesOf,
  type EvidenceDeliveryRow,
  type EvidenceFilter,
  type EvidencePeriod,
  evidenceDeliveries,
  incidentHeads,
  organisationByIdOrName,
} from '../../stores/evidence.ts';
import { updatesOfIncidents } from '../../stores/incidents.ts';
import { memberRows, recipientsOf, subscriberRow } from '../../stores/organisations.ts';
import { type AuditActor, writeAudit } from '../audit/log.ts';
import { findRecipient, type Keys, openRecipient } from '../notify/recipients.ts';
import { type ChannelName, channels } from '../notify/types.ts';
import { type EvidenceDocument, type EvidenceEntry, type EvidenceHeader, type EvidenceNotice, signEvidence } from './document.ts';
import { deriveEvidenceKey } from './key.ts';

export type EvidenceScope =
  | { type: 'organisation'; organisation: string }
  | { type: 'subscriber'; subscriberId: number }
  | { type: 'address'; address: string }
  | { type: 'incident'; incidentId: number }
  | { type: 'notice'; noticeId: number };

export interface EvidenceContext {
  database: Database;
  keys: Keys;
  now: Date;
  organisation: string;
  publicUrl: URL;
  actor: AuditActor;
  ip?: string | null;
  userAgent?: string | null;
}

export const CONTENT_NOTE =
  "Content is the notification as rendered once for each channel and stored; per-recipient links the channel added when sending (unsubscribe, manage, a change notice's signed objection link in place of its {{objection:…}} placeholder) are omitted.";

type Resolved = { ok: true; filter: EvidenceFilter; scope: EvidenceHeader['scope'] } | { ok: false; message: string };

async function resolveScope(r: Reader, keys: Keys, scope: EvidenceScope): Promise<Resolved> {
  switch (scope.type) {
    case 'organisation': {
      const organisation = await organisationByIdOrName(r, scope.organisation.trim());
      if (!organisation)
        return { ok: false, message: `There is no customer organisation "${scope.organisation}" (give its id or exact name).` };
      return {
        ok: true,
        // who belongs by the organisations' own rule (a domain match only for a confirmed address, or staff placed it)
        filter: { recipientIds: [...new Set((await memberRows(r, { organisationId: organisation.id })).map((m) => m.recipientId))] },
        scope: { type: 'organisation', id: String(organisation.id), label: organisation.name },
      };
    }
    case 'subscriber': {
      if (!(await subscriberRow(r, scope.subscriberId))) return { ok: false, message: `There is no subscriber #${scope.subscriberId}.` };
      return {
        ok: true,
        filter: { recipientIds: (await recipientsOf(r, scope.subscriberId)).map((a) => a.id) },
        scope: { type: 'subscriber', id: String(scope.subscriberId), label: `subscriber #${scope.subscriberId}` },
      };
    }
    case 'address': {
      const ids: number[] = [];
      for (const channel of channels) {
        const found = await findRecipient(r, keys, channel, scope.address);
        if (found) ids.push(found.id);
      }
      if (ids.length === 0) return { ok: false, message: 'No subscriber has that address on any channel.' };
      return { ok: true, filter: { recipientIds: ids }, scope: { type: 'address', id: ids.join(','), label: scope.address.trim() } };
    }
    case 'incident': {
      const [incident] = await incidentHeads(r, [scope.incidentId]);
      if (!incident) return { ok: false, message: `There is no incident #${scope.incidentId}.` };
      return {
        ok: true,
        filter: { threadKey: `incident:${incident.id}` },
        scope: { type: 'incident', id: String(incident.id), label: `incident #${incident.id} (${incident.title})` },
      };
    }
    case 'notice':
      return {
        ok: true,
        filter: { threadKey: `notice:${scope.noticeId}` },
        scope: { type: 'notice', id: String(scope.noticeId), label: `change notice #${scope.noticeId}` },
      };
  }
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const idOf = (threadKey: string | null, prefix: string) =>
  threadKey?.startsWith(`${prefix}:`) && /^\d+$/.test(threadKey.slice(prefix.length + 1))
    ? Number(threadKey.slice(prefix.length + 1))
    : null;

const INCIDENT_PUBLICATIONS = [
  'incidents.declared',
  'incidents.updated',
  'incidents.resolved',
  'incidents.postmortem_published',
  'incidents.update_edited',
];
const NOTICE_PUBLICATIONS = ['changes.published', 'announcements.published'];

/** The rows of the evidence, in the caller's snapshot: entries without the signature. */
export async function readEvidence(
  r: Reader,
  keys: Keys,
  scope: EvidenceScope,
  period: EvidencePeriod,
): Promise<
  | { ok: true; scope: EvidenceHeader['scope']; entries: EvidenceEntry[]; auditHead: EvidenceHeader['auditHead'] }
  | { ok: false; message: string }
> {
  const resolved = await resolveScope(r, keys, scope);
  if (!resolved.ok) return resolved;
  const rows = await evidenceDeliveries(r, resolved.filter, period);
  const accepted = new Map<number, { at: Date; kind: 'send' | 'reconcile' }>();
  for (const a of await acceptedAttempts(
    r,
    rows.map((row) => row.deliveryId),
  ))
    if (!accepted.has(a.deliveryId)) accepted.set(a.deliveryId, { at: a.at, kind: a.kind });

  const notificationIds = [...new Set(rows.map((row) => row.notificationId))];
  const incidentIds = [...new Set(rows.flatMap((row) => idOf(row.threadKey, 'incident') ?? []))];
  const incidents = new Map((await incidentHeads(r, incidentIds)).map((i) => [i.id, i]));
  // a breach's notices are its published updates in order: the phase is the place among them
  const updates = await updatesOfIncidents(r, incidentIds);
  const byNotification = new Map<number, { updateId: number; incidentId: number; phase: number }>();
  for (const [incidentId, newestFirst] of updates) {
    [...newestFirst].reverse().forEach((u, i) => {
      if (u.notificationId !== null) byNotification.set(u.notificationId, { updateId: u.id, incidentId, phase: i + 1 });
    });
  }
  const notices = new Map(
    (await changeNoticesOf(r, notificationIds)).flatMap((c) => (c.notificationId === null ? [] : [[c.notificationId, c] as const])),
  );
  const announcements = new Map(
    (await announcementsOf(r, notificationIds)).flatMap((a) => (a.notificationId === null ? [] : [[a.notificationId, a] as const])),
  );

  const noticeOf = (row: EvidenceDeliveryRow): EvidenceNotice => {
    const base = { title: row.title };
    const incidentId = idOf(row.threadKey, 'incident');
    if (row.notificationKind === 'postmortem' && incidentId !== null) return { kind: 'postmortem', ...base, incidentId };
    if (incidentId !== null) {
      const incident = incidents.get(incidentId);
      const update = byNotification.get(row.notificationId);
      const kind = incident?.kind === 'breach' ? 'breach-notice' : incident?.kind === 'maintenance' ? 'maintenance' : 'incident-update';
      return {
        kind,
        ...base,
        incidentId,
        ...(update ? { updateId: update.updateId } : {}),
        ...(update && kind === 'breach-notice' ? { phase: update.phase } : {}),
      };
    }
    const notice = notices.get(row.notificationId);
    if (notice)
      return {
        kind: 'change-notice',
        ...base,
        noticeId: notice.id,
        effectiveOn: notice.effectiveOn,
        objectionDeadline: notice.objectionDeadline,
      };
    const announcement = announcements.get(row.notificationId);
    if (announcement) return { kind: 'announcement', ...base, announcementId: announcement.id, effectiveOn: announcement.effectiveOn };
    if (row.notificationKind === 'objection-ack') return { kind: 'objection-acknowledgement', ...base };
    return { kind: 'other', ...base };
  };

  const entriesNotices = rows.map(noticeOf);
  // the publication's audit entry: same target, written in the transaction that made the notification (same time)
  const targets = new Set<string>();
  entriesNotices.forEach((n) => {
    if (n.incidentId !== undefined) targets.add(`incident:${n.incidentId}`);
    if (n.noticeId !== undefined) targets.add(`notice:${n.noticeId}`);
    if (n.announcementId !== undefined) targets.add(`announcement:${n.announcementId}`);
  });
  const audits = await auditEntriesFor(r, [...targets], [...INCIDENT_PUBLICATIONS, ...NOTICE_PUBLICATIONS]);
  const auditOf = (notice: EvidenceNotice, publishedAt: Date) => {
    const target =
      notice.incidentId !== undefined
        ? `incident:${notice.incidentId}`
        : notice.noticeId !== undefined
          ? `notice:${notice.noticeId}`
          : notice.announcementId !== undefined
            ? `announcement:${notice.announcementId}`
            : null;
    const entry = target ? audits.find((a) => a.target === target && a.at.getTime() === publishedAt.getTime()) : undefined;
    return entry ? { id: entry.id, hash: entry.hash, action: entry.action } : null;
  };

  const entries = rows.map((row, i): EvidenceEntry => {
    const notice = entriesNotices[i] as EvidenceNotice;
    const acceptance = accepted.get(row.deliveryId);
    // rows from before attempts were kept: the delivery's own record of when it was sent
    const acceptedAt = acceptance?.at ?? (row.status === 'sent' || row.status === 'delivered' ? row.sentAt : null);
    const content = (row.content as Record<string, unknown>)[row.channel] ?? null;
    return {
      n: i + 1,
      notificationId: row.notificationId,
      deliveryId: row.deliveryId,
      notice,
      channel: row.channel,
      address:
        row.address === null
          ? null
          : openRecipient(keys, { channel: row.channel as ChannelName, address: row.address, secret: null }).address,
      status: row.status,
      publishedAt: row.createdAt.toISOString(),
      acceptedAt: iso(acceptedAt),
      acceptedBy: acceptance ? acceptance.kind : acceptedAt ? 'send' : null,
      deliveredAt: row.status === 'delivered' ? iso(row.finishedAt) : null,
      providerMessageId: row.providerMessageId,
      content,
      audit: auditOf(notice, row.createdAt),
    };
  });
  const head = await lastEntry(r);
  return { ok: true, scope: resolved.scope, entries, auditHead: head ? { id: head.id, hash: head.hash } : null };
}

/**
 * Builds, signs and audits one export. The audit entry (`evidence.exported`, with the scope, the
 * period and the number of notices) is written after the document is read, so the head the document
 * names is the entry before it.
 */
export async function exportEvidence(
  ctx: EvidenceContext,
  scope: EvidenceScope,
  period: EvidencePeriod,
  format: 'json' | 'pdf' = 'json',
): Promise<{ ok: true; document: EvidenceDocument } | { ok: false; message: string }> {
  if (period.from && period.to && period.from >= period.to) return { ok: false, message: 'The period’s start must be before its end.' };
  const read = await ctx.database.read((r) => readEvidence(r, ctx.keys, scope, period));
  if (!read.ok) return read;
  const document = signEvidence(
    deriveEvidenceKey(ctx.keys.secret),
    {
      issuer: { organisation: ctx.organisation, publicUrl: ctx.publicUrl.href },
      scope: read.scope,
      period: { from: iso(period.from), to: iso(period.to) },
      generatedAt: ctx.now.toISOString(),
      auditHead: read.auditHead,
      notices: read.entries.length,
      contentNote: CONTENT_NOTE,
    },
    read.entries,
  );
  await ctx.database.transaction((tx: Tx) =>
    writeAudit(
      tx,
      {
        actor: ctx.actor,
        ip: ctx.ip ?? null,
        userAgent: ctx.userAgent ?? null,
        action: 'evidence.exported',
        // an address scope names its recipient ids, never the address
        target: `${read.scope.type}:${read.scope.id}`,
        summary: { scope: read.scope.type, period: document.header.period, notices: read.entries.length, format },
      },
      ctx.now,
    ),
  );
  return { ok: true, document };
}

/** The evidence as the console lists it before any download: the same entries, unsigned, not an export. */
export function previewEvidence(
  database: Database,
  keys: Keys,
  scope: EvidenceScope,
  period: EvidencePeriod,
): ReturnType<typeof readEvidence> {
  return database.read((r) => readEvidence(r, keys, scope, period));
}
