/**
 * The console's view of subscribers: counts, exact-match search through
 * the blind index, one subscriber's record, the quarantine, and a CSV
 * export. Reading personal data here is audited by the caller.
 */
import type { Db } from '../../../db/client.ts';
import { unsuppressRecipient } from '../notify/legacy.ts';
import { addressHash, type Keys, maskAddress, openRecipient } from '../notify/recipients.ts';
import type { ChannelName } from '../notify/types.ts';
import { csvRow } from '../text/csv.ts';
import { checkEmail, checkPhone } from './addresses.ts';
import { topicsOf } from './subscribers.ts';

export interface SubscriberCounts {
  byChannel: { channel: string; status: string; n: number }[];
  byTopic: { topic: string; n: number }[];
  subscribers: number;
}

export function subscriberCounts(db: Db): SubscriberCounts {
  const sqlite = db.$client;
  return {
    byChannel: sqlite
      .prepare(
        'SELECT channel, status, count(*) AS n FROM recipients WHERE subscriber_id IS NOT NULL GROUP BY channel, status ORDER BY channel, status',
      )
      .all() as SubscriberCounts['byChannel'],
    byTopic: sqlite
      .prepare('SELECT topic, count(DISTINCT subscriber_id) AS n FROM subscriber_topics GROUP BY topic ORDER BY topic')
      .all() as SubscriberCounts['byTopic'],
    subscribers: (sqlite.prepare('SELECT count(*) AS n FROM subscribers').get() as { n: number }).n,
  };
}

/** The subscriber with exactly this email address or number, if any. */
export function findSubscriber(db: Db, keys: Keys, query: string): { subscriberId: number } | { error: string } | null {
  const q = query.trim();
  if (q === '') return null;
  const candidates: { channel: ChannelName; value: string }[] = [];
  if (q.includes('@')) {
    const email = checkEmail(q);
    if (!email.ok) return { error: email.message };
    candidates.push({ channel: 'email', value: email.value });
  } else {
    const phone = checkPhone(q);
    if (!phone.ok) return { error: `Search by a full email address or phone number. ${phone.message}` };
    candidates.push({ channel: 'sms', value: phone.value });
  }
  for (const c of candidates) {
    const row = db.$client
      .prepare('SELECT subscriber_id FROM recipients WHERE channel = ? AND address_hash = ? AND subscriber_id IS NOT NULL')
      .get(c.channel, addressHash(keys, c.channel, c.value)) as { subscriber_id: number } | undefined;
    if (row) return { subscriberId: row.subscriber_id };
  }
  return null;
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
}

interface RecipientRow {
  id: number;
  channel: ChannelName;
  address: string;
  secret: string | null;
  status: string;
  suppressed_reason: string | null;
  suppressed_at: number | null;
}

export function subscriberRecord(db: Db, keys: Keys, subscriberId: number): SubscriberRecord | null {
  const sqlite = db.$client;
  const subscriber = sqlite.prepare('SELECT id, organisation, created_at FROM subscribers WHERE id = ?').get(subscriberId) as
    | { id: number; organisation: string | null; created_at: number }
    | undefined;
  if (!subscriber) return null;
  const recipients = sqlite
    .prepare(
      'SELECT id, channel, address, secret, status, suppressed_reason, suppressed_at FROM recipients WHERE subscriber_id = ? ORDER BY id',
    )
    .all(subscriberId) as RecipientRow[];
  const deliveries = sqlite
    .prepare(
      `SELECT d.id, d.channel, d.status, d.last_error, n.title, n.created_at FROM deliveries d JOIN notifications n ON n.id = d.notification_id
       WHERE d.recipient_id IN (SELECT id FROM recipients WHERE subscriber_id = ?) ORDER BY d.id DESC LIMIT 100`,
    )
    .all(subscriberId) as { id: number; channel: string; status: string; last_error: string | null; title: string; created_at: number }[];
  return {
    id: subscriber.id,
    organisation: subscriber.organisation,
    createdAt: new Date(subscriber.created_at),
    channels: recipients.map((r) => ({
      id: r.id,
      channel: r.channel,
      address: openRecipient(keys, r).address,
      status: r.status,
      suppressedReason: r.suppressed_reason,
      suppressedAt: r.suppressed_at === null ? null : new Date(r.suppressed_at),
    })),
    topics: topicsOf(db, subscriberId),
    deliveries: deliveries.map((d) => ({
      id: d.id,
      channel: d.channel,
      status: d.status,
      title: d.title,
      at: new Date(d.created_at),
      lastError: d.last_error,
    })),
  };
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
export function quarantine(db: Db, keys: Keys, limit = 200): QuarantinedRecipient[] {
  const rows = db.$client
    .prepare(
      `SELECT id, subscriber_id, channel, address, secret, status, suppressed_reason, suppressed_at FROM recipients WHERE status = 'suppressed' ORDER BY suppressed_at DESC LIMIT ?`,
    )
    .all(limit) as (RecipientRow & { subscriber_id: number | null })[];
  return rows.map((r) => ({
    id: r.id,
    subscriberId: r.subscriber_id,
    channel: r.channel,
    address: maskAddress(r.channel, openRecipient(keys, r).address),
    reason: r.suppressed_reason,
    since: r.suppressed_at === null ? null : new Date(r.suppressed_at),
  }));
}

export { unsuppressRecipient as liftSuppression };

/** RFC 4180 CSV of every subscriber address, one row per channel; cells that a spreadsheet would run are defused. */
export function* subscribersCsv(db: Db, keys: Keys): Generator<string> {
  yield 'subscriber_id,organisation,channel,address,status,topics,subscribed_at\r\n';
  const stmt = db.$client.prepare(
    `SELECT s.id, s.organisation, s.created_at, r.channel, r.address, r.secret, r.status,
            (SELECT group_concat(topic || CASE WHEN component = '' THEN '' ELSE ':' || component END, ' ') FROM subscriber_topics t WHERE t.subscriber_id = s.id) AS topics
     FROM subscribers s JOIN recipients r ON r.subscriber_id = s.id ORDER BY s.id, r.id`,
  );
  for (const row of stmt.iterate() as Iterable<{
    id: number;
    organisation: string | null;
    created_at: number;
    channel: ChannelName;
    address: string;
    secret: string | null;
    status: string;
    topics: string | null;
  }>) {
    const address = openRecipient(keys, { channel: row.channel, address: row.address, secret: null }).address;
    yield csvRow([row.id, row.organisation, row.channel, address, row.status, row.topics, new Date(row.created_at).toISOString()]);
  }
}
