/**
 * The console's view of subscribers: counts, exact-match search through the blind index, one
 * subscriber's record, the quarantine, a CSV export, and the staff changes (removal, lifting a
 * suppression). The rows are src/stores/subscribers.ts's (issue 15). Reading personal data is
 * audited: a record is read and its audit entry written in one transaction, the export is audited
 * before its first row; each staff change is audited in the transaction that makes it.
 */
import type { Database, Tx } from '../../../db/engine/types.ts';
import { unsuppressRow } from '../../stores/recipients.ts';
import { latestConsents } from '../../stores/subscriber-imports.ts';
import {
  deliveriesOf,
  directoryCounts,
  type ExportCursor,
  exportPage,
  recipientById,
  recipientsOfSubscriber,
  subscribedAddressCount,
  subscriberHeader,
  suppressedRecipients,
  topicLists,
  topicsOf,
} from '../../stores/subscribers.ts';
import type { AuditAction } from '../audit/actions.ts';
import { writeAudit } from '../audit/log.ts';
import { findRecipient, type Keys, maskAddress, openRecipient } from '../notify/recipients.ts';
import type { ChannelName } from '../notify/types.ts';
import { csvRow } from '../text/csv.ts';
import { checkEmail, checkPhone } from './addresses.ts';
import { type ConsentView, consentsOf } from './consents.ts';
import type { Result, StaffAudit } from './context.ts';
import { deleteSubscriberIn } from './subscribers.ts';

export interface SubscriberCounts {
  byChannel: { channel: string; status: string; n: number }[];
  byTopic: { topic: string; n: number }[];
  subscribers: number;
}

export function subscriberCounts(database: Database): Promise<SubscriberCounts> {
  return database.read((r) => directoryCounts(r));
}

/** The subscriber with exactly this email address or number, if any. */
export async function findSubscriber(
  database: Database,
  keys: Keys,
  query: string,
): Promise<{ subscriberId: number } | { error: string } | null> {
  const q = query.trim();
  if (q === '') return null;
  let channel: ChannelName;
  let value: string;
  if (q.includes('@')) {
    const email = checkEmail(q);
    if (!email.ok) return { error: email.message };
    channel = 'email';
    value = email.value;
  } else {
    const phone = checkPhone(q);
    if (!phone.ok) return { error: `Search by a full email address or phone number. ${phone.message}` };
    channel = 'sms';
    value = phone.value;
  }
  const row = await database.read((r) => findRecipient(r, keys, channel, value));
  return row?.subscriberId ? { subscriberId: row.subscriberId } : null;
}

export interface SubscriberRecord {
  id: number;
  organisation: string | null;
  createdAt: Date;
  channels: {
    id: number;
    channel: ChannelName;
    address: string;
    status: string;
    suppressedReason: string | null;
    suppressedAt: Date | null;
  }[];
  topics: { topic: string; component: string }[];
  deliveries: { id: number; channel: string; status: string; title: string; at: Date; lastError: string | null }[];
  /** how and when each address opted in, newest first */
  consents: ConsentView[];
}

const staffEntry = (staff: StaffAudit, action: AuditAction, target: string, summary: Record<string, unknown> = {}) => ({
  ...staff,
  action,
  target,
  summary,
});

/** One subscriber's record, addresses in full, read and audited (`subscribers.viewed`) in one transaction; null when there is none. */
export function viewSubscriber(
  database: Database,
  keys: Keys,
  subscriberId: number,
  staff: StaffAudit,
  now: Date,
): Promise<SubscriberRecord | null> {
  return database.transaction(async (tx) => {
    const subscriber = await subscriberHeader(tx, subscriberId);
    if (!subscriber) return null;
    const channels = await recipientsOfSubscriber(tx, subscriberId);
    const topics = await topicsOf(tx, subscriberId);
    const deliveries = await deliveriesOf(tx, subscriberId, { newestFirst: true, limit: 100 });
    const consents = await consentsOf(
      tx,
      channels.map((c) => c.id),
    );
    await writeAudit(tx, staffEntry(staff, 'subscribers.viewed', `subscriber:${subscriberId}`), now);
    return {
      id: subscriber.id,
      organisation: subscriber.organisation,
      createdAt: subscriber.createdAt,
      channels: channels.map((r) => ({
        id: r.id,
        channel: r.channel,
        address: openRecipient(keys, r).address,
        status: r.status,
        suppressedReason: r.suppressedReason,
        suppressedAt: r.suppressedAt,
      })),
      topics,
      deliveries: deliveries.map((d) => ({
        id: d.id,
        channel: d.channel,
        status: d.status,
        title: d.title,
        at: d.createdAt,
        lastError: d.lastError,
      })),
      consents,
    };
  });
}

export interface QuarantinedRecipient {
  id: number;
  subscriberId: number | null;
  channel: ChannelName;
  address: string;
  reason: string | null;
  since: Date | null;
}

/** Suppressed addresses, newest first, shortened: the quarantine. */
export async function quarantine(database: Database, keys: Keys, limit = 200): Promise<QuarantinedRecipient[]> {
  const rows = await database.read((r) => suppressedRecipients(r, limit));
  return rows.map((r) => ({
    id: r.id,
    subscriberId: r.subscriberId,
    channel: r.channel,
    address: maskAddress(r.channel, openRecipient(keys, r).address),
    reason: r.suppressedReason,
    since: r.suppressedAt,
  }));
}

/**
 * Staff lift a suppression: the address returns to the status it had, audited with the cause it had,
 * in one transaction. The UPDATE is conditional on the address being suppressed, so of two lifts at
 * once one is made and audited and the other is told there was nothing to lift.
 */
export function liftSuppression(database: Database, recipientId: number, staff: StaffAudit, now: Date): Promise<Result> {
  return database.transaction(async (tx): Promise<Result> => {
    const before = await recipientById(tx, recipientId);
    if (before?.status !== 'suppressed' || (await unsuppressRow(tx, recipientId)) !== 1)
      return { ok: false, message: 'That address is not suppressed.' };
    await writeAudit(
      tx,
      staffEntry(staff, 'subscribers.unsuppressed', `recipient:${recipientId}`, {
        channel: before.channel,
        before: { reason: before.suppressedReason },
      }),
      now,
    );
    return { ok: true };
  });
}

/** Staff remove a subscriber and all their data (erasure), audited in the same transaction. */
export function removeSubscriber(database: Database, subscriberId: number, staff: StaffAudit, now: Date): Promise<Result> {
  return database.transaction(async (tx: Tx): Promise<Result> => {
    const removed = await deleteSubscriberIn(tx, subscriberId, 'removed_by_staff', now);
    if (!removed) return { ok: false, message: 'That subscriber was already removed.' };
    await writeAudit(tx, staffEntry(staff, 'subscribers.removed', `subscriber:${subscriberId}`, { channels: removed.channels }), now);
    return { ok: true };
  });
}

/** Audits an export of every address (`subscribers.exported`) before its first byte; how many rows it has now. */
export function auditExport(database: Database, staff: StaffAudit, now: Date, format: 'csv' | 'json' = 'csv'): Promise<number> {
  return database.transaction(async (tx) => {
    const rows = await subscribedAddressCount(tx);
    await writeAudit(tx, staffEntry(staff, 'subscribers.exported', 'subscribers', { format, rows }), now);
    return rows;
  });
}

/** Rows per read of the export. */
export const EXPORT_PAGE_ROWS = 500;

/** One address of the export with its subscriber, topics and newest consent record (Candor's import reads it back: format `candor`). */
export interface ExportedAddress {
  subscriberId: number;
  organisation: string | null;
  channel: ChannelName;
  address: string;
  status: string;
  /** `topic` or `topic:component`, space-separated */
  topics: string;
  subscribedAt: string;
  consent: { source: string; method: string; optedInAt: string | null; optedInVia: string } | null;
}

export const EXPORT_CSV_HEADER =
  'subscriber_id,organisation,channel,address,status,topics,subscribed_at,consent_source,consent_method,opted_in_at,opted_in_via';

/**
 * Every subscriber address, page by page of `pageRows` by keyset (subscriber id, address id), each
 * page a read of its own as the consumer pulls, so neither the table nor one long read is held while
 * the client downloads. An address added or removed between two pages may be in the file or not; no
 * row is written twice.
 */
async function* exportedPages(database: Database, keys: Keys, pageRows: number): AsyncGenerator<ExportedAddress[]> {
  let after: ExportCursor | null = null;
  for (;;) {
    const from: ExportCursor | null = after;
    const page = await database.read(async (r) => {
      const rows = await exportPage(r, from, pageRows);
      return {
        rows,
        topics: await topicLists(r, [...new Set(rows.map((row) => row.subscriberId))]),
        consents: await latestConsents(
          r,
          rows.map((row) => row.recipientId),
        ),
      };
    });
    yield page.rows.map((row) => {
      const consent = page.consents.get(row.recipientId);
      return {
        subscriberId: row.subscriberId,
        organisation: row.organisation,
        channel: row.channel,
        address: openRecipient(keys, { channel: row.channel, address: row.address, secret: null }).address,
        status: row.status,
        topics: page.topics.get(row.subscriberId) ?? '',
        subscribedAt: row.subscribedAt.toISOString(),
        consent: consent
          ? {
              source: consent.source,
              method: consent.method,
              optedInAt: consent.optedInAt?.toISOString() ?? null,
              optedInVia: consent.optedInVia,
            }
          : null,
      };
    });
    const last = page.rows.at(-1);
    if (!last || page.rows.length < pageRows) return;
    after = { subscriberId: last.subscriberId, recipientId: last.recipientId };
  }
}

export interface SubscriberAddress {
  subscriberId: number;
  addressId: number;
  organisation: string | null;
  channel: ChannelName;
  address: string;
  status: string;
  subscribedAt: Date;
}

/**
 * One page of every subscriber address in clear, for the staff API (GET /api/v1/subscribers), by keyset
 * (subscriber id, address id) as the CSV export reads them; the read is audited (`subscribers.viewed`,
 * with the page's size) in the transaction that reads it.
 */
export function subscriberAddressPage(
  database: Database,
  keys: Keys,
  after: ExportCursor | null,
  limit: number,
  staff: StaffAudit,
  now: Date,
): Promise<SubscriberAddress[]> {
  return database.transaction(async (tx) => {
    const rows = await exportPage(tx, after, limit);
    await writeAudit(tx, staffEntry(staff, 'subscribers.viewed', 'subscribers:list', { addresses: rows.length }), now);
    return rows.map((row) => ({
      subscriberId: row.subscriberId,
      addressId: row.recipientId,
      organisation: row.organisation,
      channel: row.channel,
      address: openRecipient(keys, { channel: row.channel, address: row.address, secret: null }).address,
      status: row.status,
      subscribedAt: row.subscribedAt,
    }));
  });
}

/** RFC 4180 CSV of every subscriber address, one row per channel, with its consent record; cells that a spreadsheet would run are defused. */
export async function* subscribersCsv(database: Database, keys: Keys, pageRows = EXPORT_PAGE_ROWS): AsyncGenerator<string> {
  yield `${EXPORT_CSV_HEADER}\r\n`;
  for await (const page of exportedPages(database, keys, pageRows)) {
    let chunk = '';
    for (const row of page)
      chunk += csvRow([
        row.subscriberId,
        row.organisation,
        row.channel,
        row.address,
        row.status,
        row.topics || null,
        row.subscribedAt,
        row.consent?.source ?? null,
        row.consent?.method ?? null,
        row.consent?.optedInAt ?? null,
        row.consent?.optedInVia ?? null,
      ]);
    if (chunk) yield chunk;
  }
}

/** The same as JSON (one array of `ExportedAddress` objects), streamed page by page. */
export async function* subscribersJson(database: Database, keys: Keys, pageRows = EXPORT_PAGE_ROWS): AsyncGenerator<string> {
  yield '[';
  let first = true;
  for await (const page of exportedPages(database, keys, pageRows)) {
    let chunk = '';
    for (const row of page) {
      chunk += `${first ? '' : ','}\n${JSON.stringify(row)}`;
      first = false;
    }
    if (chunk) yield chunk;
  }
  yield '\n]\n';
}
