/**
 * Writing a notification and all its deliveries: one transaction, the
 * deliveries chosen by `INSERT … SELECT` from the recipients query, so no
 * subscriber list ever passes through memory and a crash leaves either
 * everything or nothing.
 */
import type { Db } from '../../../db/client.ts';
import { type ChannelName, channels } from '../../../db/schema/notify.ts';
import type { NotificationContent } from './types.ts';

/** Who receives it. Suppressed, pending and removed recipients never do. */
export type Audience =
  /** subscribers of a topic; with components, only those following one of them or the whole topic */
  | { kind: 'topic'; topic: string; components?: string[] }
  /** named recipients (a test send, staff reminders); `includePending` for the message that confirms an address */
  | { kind: 'recipients'; ids: number[]; includePending?: boolean };

export interface NewNotification {
  kind: string;
  title: string;
  threadKey?: string | null;
  content: NotificationContent;
  audience: Audience;
  createdBy?: number | null;
  /** when the first attempt is due (a scheduled send); default now */
  notBefore?: Date;
}

export interface Enqueued {
  notificationId: number;
  deliveries: number;
  byChannel: Partial<Record<ChannelName, number>>;
}

export function enqueueNotification(db: Db, input: NewNotification, now: Date): Enqueued {
  const contentChannels = channels.filter((c) => input.content[c] !== undefined);
  if (contentChannels.length === 0) throw new Error('a notification needs content for at least one channel');
  const sqlite = db.$client;
  const due = (input.notBefore ?? now).getTime();
  return sqlite
    .transaction((): Enqueued => {
      const { id } = sqlite
        .prepare(
          `INSERT INTO notifications (kind, thread_key, title, content, audience, recipient_count, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, 0, ?, ?) RETURNING id`,
        )
        .get(
          input.kind,
          input.threadKey ?? null,
          input.title,
          JSON.stringify(input.content),
          JSON.stringify(input.audience),
          input.createdBy ?? null,
          now.getTime(),
        ) as {
        id: number;
      };
      const channelList = contentChannels.map(() => '?').join(', ');
      const statuses = input.audience.kind === 'recipients' && input.audience.includePending ? `'active', 'pending'` : `'active'`;
      const base = `INSERT INTO deliveries (notification_id, recipient_id, channel, status, attempts, next_attempt_at)
      SELECT ?, r.id, r.channel, 'pending', 0, ? FROM recipients r
      WHERE r.status IN (${statuses}) AND r.channel IN (${channelList})`;
      if (input.audience.kind === 'topic') {
        const components = input.audience.components ?? [];
        const componentFilter = components.length
          ? `AND (t.component = '' OR t.component IN (${components.map(() => '?').join(', ')}))`
          : '';
        sqlite
          .prepare(
            `${base} AND EXISTS (SELECT 1 FROM subscriber_topics t WHERE t.subscriber_id = r.subscriber_id AND t.topic = ? ${componentFilter})`,
          )
          .run(id, due, ...contentChannels, input.audience.topic, ...components);
      } else {
        // ids travel as one JSON array parameter: no statement grows with the list
        sqlite
          .prepare(`${base} AND r.id IN (SELECT value FROM json_each(?))`)
          .run(id, due, ...contentChannels, JSON.stringify(input.audience.ids));
      }
      const counts = sqlite.prepare('SELECT channel, count(*) AS n FROM deliveries WHERE notification_id = ? GROUP BY channel').all(id) as {
        channel: ChannelName;
        n: number;
      }[];
      const total = counts.reduce((sum, c) => sum + c.n, 0);
      sqlite.prepare('UPDATE notifications SET recipient_count = ? WHERE id = ?').run(total, id);
      return { notificationId: id, deliveries: total, byChannel: Object.fromEntries(counts.map((c) => [c.channel, c.n])) };
    })
    .immediate();
}
