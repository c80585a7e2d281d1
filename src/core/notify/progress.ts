/** What the console shows of the outbox: progress per notification and channel, each delivery's attempts. */
import type { Db } from '../../../db/client.ts';
import { type ChannelName, type DeliveryStatus, deliveryStatuses } from '../../../db/schema/notify.ts';

export type StatusCounts = Record<DeliveryStatus, number>;

export interface NotificationProgress {
  id: number;
  kind: string;
  title: string;
  createdAt: Date;
  total: number;
  channels: Partial<Record<ChannelName, StatusCounts>>;
  /** sent, delivered, failed or suppressed: nothing more will happen */
  finished: number;
}

const emptyCounts = (): StatusCounts => Object.fromEntries(deliveryStatuses.map((s) => [s, 0])) as StatusCounts;
const FINAL: DeliveryStatus[] = ['sent', 'delivered', 'failed', 'suppressed'];

export function notificationProgress(db: Db, options: { ids?: number[]; limit?: number; beforeId?: number } = {}): NotificationProgress[] {
  const sqlite = db.$client;
  const notifications = (
    options.ids
      ? sqlite
          .prepare(
            'SELECT id, kind, title, created_at, recipient_count FROM notifications WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id DESC',
          )
          .all(JSON.stringify(options.ids))
      : sqlite
          .prepare('SELECT id, kind, title, created_at, recipient_count FROM notifications WHERE id < ? ORDER BY id DESC LIMIT ?')
          .all(options.beforeId ?? Number.MAX_SAFE_INTEGER, Math.min(options.limit ?? 25, 200))
  ) as { id: number; kind: string; title: string; created_at: number; recipient_count: number }[];
  if (notifications.length === 0) return [];
  const counts = sqlite
    .prepare(
      'SELECT notification_id, channel, status, count(*) AS n FROM deliveries WHERE notification_id IN (SELECT value FROM json_each(?)) GROUP BY notification_id, channel, status',
    )
    .all(JSON.stringify(notifications.map((n) => n.id))) as {
    notification_id: number;
    channel: ChannelName;
    status: DeliveryStatus;
    n: number;
  }[];
  return notifications.map((n) => {
    const channels: Partial<Record<ChannelName, StatusCounts>> = {};
    let finished = 0;
    for (const c of counts.filter((row) => row.notification_id === n.id)) {
      const byStatus = channels[c.channel] ?? emptyCounts();
      byStatus[c.status] = c.n;
      channels[c.channel] = byStatus;
      if (FINAL.includes(c.status)) finished += c.n;
    }
    return { id: n.id, kind: n.kind, title: n.title, createdAt: new Date(n.created_at), total: n.recipient_count, channels, finished };
  });
}

export interface DeliveryRow {
  id: number;
  channel: ChannelName;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  providerMessageId: string | null;
  lastError: string | null;
  recipientId: number | null;
}

export function deliveriesOf(
  db: Db,
  notificationId: number,
  filter: { status?: DeliveryStatus; channel?: ChannelName; limit?: number; afterId?: number },
): DeliveryRow[] {
  const rows = db.$client
    .prepare(
      `SELECT id, channel, status, attempts, next_attempt_at, provider_message_id, last_error, recipient_id FROM deliveries
       WHERE notification_id = ? AND (? IS NULL OR status = ?) AND (? IS NULL OR channel = ?) AND id > ? ORDER BY id LIMIT ?`,
    )
    .all(
      notificationId,
      filter.status ?? null,
      filter.status ?? null,
      filter.channel ?? null,
      filter.channel ?? null,
      filter.afterId ?? 0,
      Math.min(filter.limit ?? 100, 500),
    ) as {
    id: number;
    channel: ChannelName;
    status: DeliveryStatus;
    attempts: number;
    next_attempt_at: number;
    provider_message_id: string | null;
    last_error: string | null;
    recipient_id: number | null;
  }[];
  return rows.map((r) => ({
    id: r.id,
    channel: r.channel,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: new Date(r.next_attempt_at),
    providerMessageId: r.provider_message_id,
    lastError: r.last_error,
    recipientId: r.recipient_id,
  }));
}

export interface AttemptRow {
  at: Date;
  outcome: string;
  httpStatus: number | null;
  providerCode: string | null;
  durationMs: number;
  error: string | null;
}

export function attemptsOf(db: Db, deliveryIds: number[]): Map<number, AttemptRow[]> {
  const rows = db.$client
    .prepare(
      'SELECT delivery_id, at, outcome, http_status, provider_code, duration_ms, error FROM delivery_attempts WHERE delivery_id IN (SELECT value FROM json_each(?)) ORDER BY id',
    )
    .all(JSON.stringify(deliveryIds)) as {
    delivery_id: number;
    at: number;
    outcome: string;
    http_status: number | null;
    provider_code: string | null;
    duration_ms: number;
    error: string | null;
  }[];
  const map = new Map<number, AttemptRow[]>();
  for (const r of rows) {
    const list = map.get(r.delivery_id) ?? [];
    list.push({
      at: new Date(r.at),
      outcome: r.outcome,
      httpStatus: r.http_status,
      providerCode: r.provider_code,
      durationMs: r.duration_ms,
      error: r.error,
    });
    map.set(r.delivery_id, list);
  }
  return map;
}

/** Puts a notification's failed deliveries back in the queue (fresh attempt count); returns how many. */
export function retryFailed(db: Db, notificationId: number, now: Date): number {
  return db.$client
    .prepare(
      `UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, finished_at = NULL, batch_key = NULL
       WHERE notification_id = ? AND status = 'failed'
         AND recipient_id IN (SELECT id FROM recipients WHERE status = 'active')`,
    )
    .run(now.getTime(), notificationId).changes;
}

export interface LoggedMessage {
  id: number;
  channel: ChannelName;
  to: string;
  payload: unknown;
  at: Date;
}

/**
 * Signed links in a message act for its recipient (manage, unsubscribe, confirm, object, a staff
 * invitation) and an SMS code confirms a number: staff who may not manage subscribers see neither.
 */
const SIGNED_LINK = /(\/(?:subscription|unsubscribe|subscribe\/confirm|objections|console\/link)\/)[A-Za-z0-9._~%-]+/g;
const SMS_CODE = /\b\d{6}(?= is your )/g;

export function redactRecipientSecrets(payload: unknown): unknown {
  return JSON.parse(JSON.stringify(payload).replace(SIGNED_LINK, '$1[hidden]').replace(SMS_CODE, '[code hidden]')) as unknown;
}

export function loggedMessages(db: Db, limit = 50): LoggedMessage[] {
  const rows = db.$client
    .prepare('SELECT id, channel, "to", payload, at FROM logged_messages ORDER BY id DESC LIMIT ?')
    .all(Math.min(limit, 200)) as {
    id: number;
    channel: ChannelName;
    to: string;
    payload: string;
    at: number;
  }[];
  return rows.map((r) => ({ id: r.id, channel: r.channel, to: r.to, payload: JSON.parse(r.payload) as unknown, at: new Date(r.at) }));
}
