/** What the console shows of the outbox: progress per notification and channel, each delivery's attempts. */
import type { Database } from '../../../db/engine/types.ts';
import { type ChannelName, type DeliveryStatus, deliveryStatuses } from '../../../db/schema/notify.ts';
import {
  attemptRows,
  type DeliveryRow,
  deliveryRows,
  type LoggedMessageRow,
  loggedMessageRows,
  notificationSummaries,
  requeueFailed,
  statusCounts,
} from '../../stores/deliveries.ts';

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

export async function notificationProgress(
  database: Database,
  options: { ids?: number[]; limit?: number; beforeId?: number } = {},
): Promise<NotificationProgress[]> {
  // One snapshot: the counts are those of the notifications listed, at one moment.
  const { notifications, counts } = await database.read(async (r) => {
    const notifications = await notificationSummaries(
      r,
      options.ids ? { ids: options.ids } : { beforeId: options.beforeId, limit: Math.min(options.limit ?? 25, 200) },
    );
    const counts = await statusCounts(
      r,
      notifications.map((n) => n.id),
    );
    return { notifications, counts };
  });
  return notifications.map((n) => {
    const channels: Partial<Record<ChannelName, StatusCounts>> = {};
    let finished = 0;
    for (const c of counts.filter((row) => row.notificationId === n.id)) {
      const byStatus = channels[c.channel] ?? emptyCounts();
      byStatus[c.status] = c.n;
      channels[c.channel] = byStatus;
      if (FINAL.includes(c.status)) finished += c.n;
    }
    return { id: n.id, kind: n.kind, title: n.title, createdAt: n.createdAt, total: n.recipientCount, channels, finished };
  });
}

export type { DeliveryRow };

export function deliveriesOf(
  database: Database,
  notificationId: number,
  filter: { status?: DeliveryStatus; channel?: ChannelName; limit?: number; afterId?: number },
): Promise<DeliveryRow[]> {
  return database.read((r) =>
    deliveryRows(r, notificationId, {
      status: filter.status,
      channel: filter.channel,
      afterId: filter.afterId ?? 0,
      limit: Math.min(filter.limit ?? 100, 500),
    }),
  );
}

export interface AttemptRow {
  at: Date;
  outcome: string;
  httpStatus: number | null;
  providerCode: string | null;
  durationMs: number;
  error: string | null;
}

export async function attemptsOf(database: Database, deliveryIds: number[]): Promise<Map<number, AttemptRow[]>> {
  const rows = await database.read((r) => attemptRows(r, deliveryIds));
  const map = new Map<number, AttemptRow[]>();
  for (const { deliveryId, ...attempt } of rows) {
    const list = map.get(deliveryId) ?? [];
    list.push(attempt);
    map.set(deliveryId, list);
  }
  return map;
}

/** Puts a notification's failed deliveries back in the queue (fresh attempt count); returns how many. */
export function retryFailed(database: Database, notificationId: number, now: Date): Promise<number> {
  return database.transaction((tx) => requeueFailed(tx, notificationId, now));
}

export type LoggedMessage = LoggedMessageRow;

/**
 * Signed links in a message act for its recipient (manage, unsubscribe, confirm, object, a staff
 * invitation) and an SMS code confirms a number: staff who may not manage subscribers see neither.
 */
const SIGNED_LINK = /(\/(?:subscription|unsubscribe|subscribe\/confirm|objections|console\/link)\/)[A-Za-z0-9._~%-]+/g;
const SMS_CODE = /\b\d{6}(?= is your )/g;

export function redactRecipientSecrets(payload: unknown): unknown {
  return JSON.parse(JSON.stringify(payload).replace(SIGNED_LINK, '$1[hidden]').replace(SMS_CODE, '[code hidden]')) as unknown;
}

/** The latest messages the log transport wrote, newest first. */
export function loggedMessages(database: Database, limit = 50): Promise<LoggedMessage[]> {
  return database.read((r) => loggedMessageRows(r, Math.min(limit, 200)));
}
