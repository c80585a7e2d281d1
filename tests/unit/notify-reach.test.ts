/**
 * Whom a notification reached, per channel, from its delivery rows as the
 * dispatcher, the log transport and the provider callbacks record them.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../db/client.ts';
import type { ChannelName, DeliveryStatus } from '../../db/schema/notify.ts';
import { describeChannels, describeReach, notificationReach } from '../../src/core/notify/reach.ts';

const T = new Date('2026-05-04T08:00:00Z').getTime();
let db: Db;
beforeEach(() => {
  db = openDatabase(':memory:');
});

function notification(rows: [ChannelName, DeliveryStatus, { sentAt?: number; finishedAt?: number; providerId?: string }?][]): number {
  const id = Number(
    db.$client
      .prepare(
        `INSERT INTO notifications (kind, title, content, audience, recipient_count, created_at) VALUES ('incident', 'n', '{}', '{}', ?, ?)`,
      )
      .run(rows.length, T).lastInsertRowid,
  );
  const insert = db.$client.prepare(
    `INSERT INTO deliveries (notification_id, channel, status, attempts, next_attempt_at, provider_message_id, sent_at, finished_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)`,
  );
  for (const [channel, status, at] of rows)
    insert.run(id, channel, status, T, at?.providerId ?? (at?.sentAt ? 'provider-id' : null), at?.sentAt ?? null, at?.finishedAt ?? null);
  return id;
}

describe('notificationReach', () => {
  it('counts, per channel, who was reached, confirmed, failed, not sent, only logged and still on the way', () => {
    const id = notification([
      ['email', 'sent', { sentAt: T + 1000 }],
      ['email', 'delivered', { sentAt: T + 3000, finishedAt: T + 9000 }],
      ['email', 'failed', { sentAt: T + 2000, finishedAt: T + 5000 }],
      ['sms', 'pending'],
      ['sms', 'suppressed', { finishedAt: T + 100 }],
      ['slack', 'sending'],
      ['webhook', 'sent', { sentAt: T + 4000, providerId: 'log-17' }],
    ]);
    const reach = notificationReach(db, [id]).get(id);
    expect(reach).toMatchObject({
      intended: 7,
      reached: 2,
      delivered: 1,
      failed: 1,
      suppressed: 1,
      logged: 1,
      onTheWay: 2,
      outcome: 'not-everyone',
      // the later acceptance, not the confirmation, and not the bounced one
      lastReachedAt: new Date(T + 3000),
    });
    expect(reach && describeChannels(reach)).toEqual([
      'Email: 2 of 3 reached (1 confirmed delivered), 1 failed',
      'SMS: 0 of 2 reached, 1 not sent, 1 on the way',
      'Slack: 0 of 1 reached, 1 on the way',
      'Webhook: 0 of 1 reached, 1 only logged',
    ]);
    expect(reach && describeReach(reach)).toBe(
      'reached 2 of 7 so far; 1 failed; 1 not sent (address quarantined or removed, or refused by the provider); 1 only logged (no provider is configured, so nothing was sent); 2 on their way',
    );
  });

  it('a notification without deliveries reached no one, and says why', () => {
    const id = notification([]);
    const reach = notificationReach(db, [id]).get(id);
    expect(reach).toMatchObject({ intended: 0, reached: 0, outcome: 'no-one', lastReachedAt: null });
    expect(reach && describeReach(reach)).toBe('reached no one: no recipient matched its audience, so nothing was queued');
  });

  it('everyone reached', () => {
    const id = notification([
      ['email', 'sent', { sentAt: T + 1000 }],
      ['slack', 'delivered', { finishedAt: T + 2000 }],
    ]);
    const reach = notificationReach(db, [id]).get(id);
    expect(reach?.outcome).toBe('everyone');
    expect(reach && describeReach(reach)).toBe('reached all 2 recipients');
  });
});
