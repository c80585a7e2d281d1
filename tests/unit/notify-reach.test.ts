/**
 * Whom a notification reached, per channel, from its delivery rows as the
 * dispatcher, the log transport and the provider callbacks record them; on
 * each engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName, DeliveryStatus } from '../../db/schema/notify.ts';
import { describeChannels, describeReach, notificationReach } from '../../src/core/notify/reach.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const T = new Date('2026-05-04T08:00:00Z').getTime();
const at = (ms: number | undefined) => (ms === undefined ? null : new Date(ms));

describe.each(enginesUnderTest())('notificationReach on $name', (engine) => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await engine.open());
  }, 60_000);
  afterAll(() => close());

  function notification(rows: [ChannelName, DeliveryStatus, { sentAt?: number; finishedAt?: number; providerId?: string }?][]) {
    return database.transaction(async (tx) => {
      const q = query(tx);
      const [made] = await q.db
        .insert(q.t.notifications)
        .values({ kind: 'incident', title: 'n', content: {}, audience: {}, recipientCount: rows.length, createdAt: new Date(T) })
        .returning({ id: q.t.notifications.id });
      if (!made) throw new Error('no notification');
      for (const [channel, status, when] of rows)
        await q.db.insert(q.t.deliveries).values({
          notificationId: made.id,
          channel,
          status,
          attempts: 1,
          nextAttemptAt: new Date(T),
          providerMessageId: when?.providerId ?? (when?.sentAt ? 'provider-id' : null),
          sentAt: at(when?.sentAt),
          finishedAt: at(when?.finishedAt),
        });
      return made.id;
    });
  }
  const reachOf = async (id: number) => (await database.read((r) => notificationReach(r, [id]))).get(id);

  it('counts, per channel, who was reached, confirmed, failed, not sent, only logged and still on the way', async () => {
    const id = await notification([
      ['email', 'sent', { sentAt: T + 1000 }],
      ['email', 'delivered', { sentAt: T + 3000, finishedAt: T + 9000 }],
      ['email', 'failed', { sentAt: T + 2000, finishedAt: T + 5000 }],
      ['sms', 'pending'],
      ['sms', 'suppressed', { finishedAt: T + 100 }],
      ['slack', 'sending'],
      ['webhook', 'sent', { sentAt: T + 4000, providerId: 'log-17' }],
    ]);
    const reach = await reachOf(id);
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

  it('a notification without deliveries reached no one, and says why', async () => {
    const id = await notification([]);
    const reach = await reachOf(id);
    expect(reach).toMatchObject({ intended: 0, reached: 0, outcome: 'no-one', lastReachedAt: null });
    expect(reach && describeReach(reach)).toBe('reached no one: no recipient matched its audience, so nothing was queued');
  });

  it('everyone reached', async () => {
    const id = await notification([
      ['email', 'sent', { sentAt: T + 1000 }],
      ['slack', 'delivered', { finishedAt: T + 2000 }],
    ]);
    const reach = await reachOf(id);
    expect(reach?.outcome).toBe('everyone');
    expect(reach && describeReach(reach)).toBe('reached all 2 recipients');
  });
});
