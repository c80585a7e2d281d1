/**
 * The engine-neutral seeding helper the drills and benchmarks stand on (tests/helpers/notify.ts), on
 * each engine: recipients it adds are found by their address, open to the address they were given,
 * follow the topic, and a notification to that topic reaches each of them once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import { findRecipient, openRecipient } from '../../src/core/notify/recipients.ts';
import { addSubscribersTo, deliveryCountsOf, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

describe.each(enginesUnderTest())('bulk seeding on $name', (engine) => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await engine.open());
  });
  afterAll(() => close());

  it('adds recipients in batches, the i-th at address(i), and a fan-out to their topic reaches each once', async () => {
    // more than one batch of 1,000, and a last batch that is not full
    const ids = await addSubscribersTo(database, TEST_KEYS, {
      count: 2345,
      channel: 'webhook',
      address: (i) => `https://hooks.customer.example/h/${i}`,
      secret: (i) => (i % 2 === 0 ? `whsec_${i}` : null),
    });
    const others = await addSubscribersTo(database, TEST_KEYS, { count: 10, channel: 'email', topic: 'maintenance' });
    expect(new Set([...ids, ...others]).size).toBe(2355);

    for (const i of [0, 999, 1000, 2344]) {
      const found = await database.read((r) => findRecipient(r, TEST_KEYS, 'webhook', `https://hooks.customer.example/h/${i}`));
      expect(found?.id).toBe(ids[i]);
      if (!found) continue;
      const opened = openRecipient(TEST_KEYS, found);
      expect(opened.address).toBe(`https://hooks.customer.example/h/${i}`);
      expect(opened.secret).toBe(i % 2 === 0 ? `whsec_${i}` : null);
    }

    const content = { webhook: { type: 'incident.updated', data: {} }, ...emailContent() };
    const enqueue = (topic: string) =>
      database.engine === 'sqlite'
        ? database.transaction((tx) =>
            enqueueNotification(tx, { kind: 'incident.update', title: 't', content, audience: { kind: 'topic', topic } }, new Date()),
          )
        : database.transaction((tx) =>
            enqueueNotification(tx, { kind: 'incident.update', title: 't', content, audience: { kind: 'topic', topic } }, new Date()),
          );
    const incidents = await enqueue('incidents');
    const maintenance = await enqueue('maintenance');
    expect(incidents.byChannel).toEqual({ webhook: 2345 });
    expect(await deliveryCountsOf(database, incidents.notificationId)).toEqual({ pending: 2345 });
    expect(await deliveryCountsOf(database, maintenance.notificationId)).toEqual({ pending: 10 });
    expect(await deliveryCountsOf(database)).toEqual({ pending: 2355 });
  });
});
