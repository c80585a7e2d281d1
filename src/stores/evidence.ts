/**
 * The reads behind evidence of notification (src/core/evidence/): which deliveries went to an
 * organisation's, a subscriber's or one address's recipients (or carried one incident's or notice's
 * notifications) in a period, with their notification, the provider's acceptance (the first `sent`
 * attempt, a `reconcile` one included) and what each notification was about (incident update, breach
 * notice, change notice, announcement), plus the audit entries that recorded each publication. On
 * SQLite and PostgreSQL alike, the convention of src/stores/rate-limits.ts: plain builder queries
 * scoped to `q.trustCenter`; what the rows mean is src/core/evidence/collect.ts's.
 */
import { and, asc, eq, gte, inArray, isNotNull, like, lt, not, or, type SQL } from 'drizzle-orm';
import { reading } from '../../db/engine/query.ts';
import type { Reader, Tx } from '../../db/engine/types.ts';
import type { ChannelName, DeliveryStatus } from '../../db/schema/notify.ts';

/** Where evidence is gathered: these recipients' deliveries, or these thread keys' notifications. */
export type EvidenceFilter = { recipientIds: readonly number[] } | { threadKey: string };

export interface EvidencePeriod {
  /** inclusive */
  from: Date | null;
  /** exclusive */
  to: Date | null;
}

export interface EvidenceDeliveryRow {
  deliveryId: number;
  notificationId: number;
  notificationKind: string;
  threadKey: string | null;
  title: string;
  content: Record<string, unknown>;
  createdAt: Date;
  channel: ChannelName;
  status: DeliveryStatus;
  recipientId: number | null;
  subscriberId: number | null;
  /** sealed */
  address: string | null;
  providerMessageId: string | null;
  sentAt: Date | null;
  finishedAt: Date | null;
}

/** The deliveries in scope, oldest notification first, then by delivery id. */
export async function evidenceDeliveries(r: Reader | Tx, filter: EvidenceFilter, period: EvidencePeriod): Promise<EvidenceDeliveryRow[]> {
  const q = reading(r);
  const { deliveries: d, notifications: n, recipients: rc } = q.t;
  if ('recipientIds' in filter && filter.recipientIds.length === 0) return [];
  const parts: (SQL | undefined)[] = [
    eq(d.trustCenterId, q.trustCenter),
    // notifications to staff and test sends are not notices to customers
    not(like(n.kind, 'staff-%')),
    not(eq(n.kind, 'test')),
    'recipientIds' in filter ? inArray(d.recipientId, [...filter.recipientIds]) : eq(n.threadKey, filter.threadKey),
    period.from ? gte(n.createdAt, period.from) : undefined,
    period.to ? lt(n.createdAt, period.to) : undefined,
  ];
  return q.db
    .select({
      deliveryId: d.id,
      notificationId: n.id,
      notificationKind: n.kind,
      threadKey: n.threadKey,
      title: n.title,
      content: n.content,
      createdAt: n.createdAt,
      channel: d.channel,
      status: d.status,
      recipientId: d.recipientId,
      subscriberId: rc.subscriberId,
      address: rc.address,
      providerMessageId: d.providerMessageId,
      sentAt: d.sentAt,
      finishedAt: d.finishedAt,
    })
    .from(d)
    .innerJoin(n, and(eq(n.id, d.notificationId), eq(n.trustCenterId, q.trustCenter)))
    .leftJoin(rc, and(eq(rc.id, d.recipientId), eq(rc.trustCenterId, q.trustCenter)))
    .where(and(...parts))
    .orderBy(asc(n.createdAt), asc(n.id), asc(d.id));
}

export interface AcceptanceRow {
  deliveryId: number;
  at: Date;
  kind: 'send' | 'reconcile';
}

/** Each delivery's attempts that the provider accepted (a send answered, or a reconcile that found it), oldest first. */
export async function acceptedAttempts(r: Reader | Tx, deliveryIds: readonly number[]): Promise<AcceptanceRow[]> {
  if (deliveryIds.length === 0) return [];
  const q = reading(r);
  const a = q.t.deliveryAttempts;
  const out: AcceptanceRow[] = [];
  // a page of ids per statement keeps far below both engines' parameter limits
  for (let i = 0; i < deliveryIds.length; i += 1000) {
    const rows = await q.db
      .select({ deliveryId: a.deliveryId, at: a.at, kind: a.kind })
      .from(a)
      .where(and(eq(a.trustCenterId, q.trustCenter), inArray(a.deliveryId, deliveryIds.slice(i, i + 1000)), eq(a.outcome, 'sent')))
      .orderBy(asc(a.at), asc(a.id));
    out.push(...rows);
  }
  return out;
}

export async function organisationByIdOrName(r: Reader | Tx, idOrName: string): Promise<{ id: number; name: string } | undefined> {
  const q = reading(r);
  const o = q.t.customerOrganisations;
  const id = /^\d{1,15}$/.test(idOrName) ? Number(idOrName) : null;
  const rows = await q.db
    .select({ id: o.id, name: o.name })
    .from(o)
    .where(and(eq(o.trustCenterId, q.trustCenter), id === null ? eq(o.name, idOrName) : or(eq(o.id, id), eq(o.name, idOrName))))
    .orderBy(asc(o.id))
    .limit(1);
  return rows[0];
}

export interface IncidentHead {
  id: number;
  kind: 'outage' | 'security' | 'breach' | 'maintenance';
  title: string;
}

export async function incidentHeads(r: Reader | Tx, ids: readonly number[]): Promise<IncidentHead[]> {
  if (ids.length === 0) return [];
  const q = reading(r);
  const i = q.t.incidents;
  return q.db
    .select({ id: i.id, kind: i.kind, title: i.title })
    .from(i)
    .where(and(eq(i.trustCenterId, q.trustCenter), inArray(i.id, [...ids])));
}

export interface ChangeNoticeRow {
  id: number;
  notificationId: number | null;
  subject: string;
  change: string;
  subjectName: string;
  effectiveOn: string | null;
  objectionDeadline: string | null;
}

export async function changeNoticesOf(r: Reader | Tx, notificationIds: readonly number[]): Promise<ChangeNoticeRow[]> {
  if (notificationIds.length === 0) return [];
  const q = reading(r);
  const c = q.t.changeNotices;
  return q.db
    .select({
      id: c.id,
      notificationId: c.notificationId,
      subject: c.subject,
      change: c.change,
      subjectName: c.subjectName,
      effectiveOn: c.effectiveOn,
      objectionDeadline: c.objectionDeadline,
    })
    .from(c)
    .where(and(eq(c.trustCenterId, q.trustCenter), inArray(c.notificationId, [...notificationIds])));
}

export async function announcementsOf(
  r: Reader | Tx,
  notificationIds: readonly number[],
): Promise<{ id: number; notificationId: number | null; effectiveOn: string | null }[]> {
  if (notificationIds.length === 0) return [];
  const q = reading(r);
  const a = q.t.announcements;
  return q.db
    .select({ id: a.id, notificationId: a.notificationId, effectiveOn: a.effectiveOn })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), inArray(a.notificationId, [...notificationIds])));
}

export interface AuditRef {
  id: number;
  at: Date;
  action: string;
  target: string | null;
  hash: string;
}

/** The audit entries of these actions on these targets (`incident:7`, `notice:3`), oldest first. */
export async function auditEntriesFor(r: Reader | Tx, targets: readonly string[], actions: readonly string[]): Promise<AuditRef[]> {
  if (targets.length === 0) return [];
  const q = reading(r);
  const a = q.t.auditLog;
  return q.db
    .select({ id: a.id, at: a.at, action: a.action, target: a.target, hash: a.hash })
    .from(a)
    .where(and(eq(a.trustCenterId, q.trustCenter), isNotNull(a.target), inArray(a.target, [...targets]), inArray(a.action, [...actions])))
    .orderBy(asc(a.id));
}
