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
  /** `send`, or `reconcile`: a question to the provider about an earlier send of unknown outcome, not a send */
  kind: 'send' | 'reconcile';
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

/**
 * What one attempt row says, as the console shows it. A reconciliation (a sender died, or an answer was
 * lost, mid-send) is a question to the provider, shown as such and never as a second send: it had the
 * message (`sent`: recorded sent, not sent again), it had none (`retry` with code `absent`: sent in the
 * same round, that send its own row), it could not be asked, or could not say for an hour (`retry` with
 * code `unverified`: sent anyway, possibly twice), or it could not say yet (`retry` with an error: asked again later).
 */
export function describeAttempt(a: Pick<AttemptRow, 'kind' | 'outcome' | 'httpStatus' | 'providerCode' | 'error'>): string {
  if (a.kind === 'reconcile') {
    if (a.outcome === 'sent') return 'asked the provider: it already has the message, not sent again';
    if (a.providerCode === 'absent') return 'asked the provider: not delivered, so sent';
    if (a.providerCode === 'unverified')
      return `the provider could not be asked, so sent again unverified (it may arrive twice)${a.error ? `: ${a.error}` : ''}`;
    return `asked the provider: no answer yet, asking again later${a.error ? `: ${a.error}` : ''}`;
  }
  return `${a.outcome}${a.httpStatus !== null ? ` (HTTP ${a.httpStatus})` : ''}${a.providerCode ? ` ${a.providerCode}` : ''}${a.error ? `: ${a.error}` : ''}`;
}

/** How many of a delivery's attempt rows were sends and how many questions to the provider. */
export function attemptCounts(rows: readonly Pick<AttemptRow, 'kind'>[]): { sends: number; checks: number } {
  const checks = rows.filter((a) => a.kind === 'reconcile').length;
  return { sends: rows.length - checks, checks };
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
