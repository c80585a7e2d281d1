/**
 * A dispatcher's claims do not expire under it while it is alive, on each engine: a send that takes
 * longer than the lease (a slow provider, a long Retry-After wait, a loaded machine) is not taken over
 * and sent a second time by another dispatcher on the same database. Only a dispatcher that died
 * (stops renewing) loses its claims, after the lease.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { Dispatcher } from '../../src/core/notify/dispatcher.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import type { Channel, SendJob, SendResult } from '../../src/core/notify/types.ts';
import { addSubscribersTo, deliveryCountsOf, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const LEASE_MS = 600;
const SEND_MS = 2000;

/** A webhook provider whose every request takes `SEND_MS`, counting the requests per delivery. */
class SlowChannel implements Channel {
  readonly name = 'webhook' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits = { ratePerSecond: 1000, burst: 1000, concurrency: 4 };
  readonly sends = new Map<number, number>();
  async send(jobs: SendJob[]): Promise<SendResult[]> {
    for (const job of jobs) this.sends.set(job.deliveryId, (this.sends.get(job.deliveryId) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, SEND_MS));
    return jobs.map((job) => ({ deliveryId: job.deliveryId, outcome: 'sent', httpStatus: 200, durationMs: SEND_MS }));
  }
}

const dispatcherOn = (database: Database, channel: SlowChannel, owner: string) =>
  new Dispatcher({
    database,
    channels: { webhook: channel },
    keys: TEST_KEYS,
    publicUrl: new URL('https://trust.candor.test/'),
    owner,
    leaseMs: LEASE_MS,
    pollMs: 50,
  });

describe.each(enginesUnderTest())('dispatcher leases on $name', (engine) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('a send longer than the lease is not taken over by another dispatcher while its own is alive', async () => {
    const { database, close } = await engine.open();
    cleanup.push(close);
    await addSubscribersTo(database, TEST_KEYS, { count: 3, channel: 'webhook', address: (i) => `https://hooks.example/h/${i}` });
    const content = { webhook: { type: 'incident.updated', data: {} } };
    const audience = { kind: 'topic' as const, topic: 'incidents' };
    const input = { kind: 'incident.update', title: 't', content, audience };
    const { notificationId } =
      database.engine === 'sqlite'
        ? await database.transaction((tx) => enqueueNotification(tx, input, new Date()))
        : await database.transaction((tx) => enqueueNotification(tx, input, new Date()));

    const slowA = new SlowChannel();
    const slowB = new SlowChannel();
    const a = dispatcherOn(database, slowA, 'dispatcher-a');
    const b = dispatcherOn(database, slowB, 'dispatcher-b');
    // A claims all three and sends for more than three leases; B polls the queue all the while.
    const aRound = a.round('webhook');
    b.start();
    try {
      expect(await aRound).toBe(3);
    } finally {
      await b.stop();
    }

    expect(await deliveryCountsOf(database, notificationId)).toEqual({ sent: 3 });
    expect([...slowA.sends.values()]).toEqual([1, 1, 1]);
    expect(slowB.sends.size).toBe(0);
  });
});

/** A webhook provider that accepts everything at once, counting the requests. */
class InstantChannel implements Channel {
  readonly name = 'webhook' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits = { ratePerSecond: 1000, burst: 1000, concurrency: 4 };
  sent = 0;
  async send(jobs: SendJob[]): Promise<SendResult[]> {
    this.sent += jobs.length;
    return jobs.map((job) => ({ deliveryId: job.deliveryId, outcome: 'sent', httpStatus: 200, durationMs: 0 }));
  }
}

describe.each(enginesUnderTest())('a woken dispatcher on $name', (engine) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const enqueueOne = (database: Database) => {
    const input = {
      kind: 'incident.update',
      title: 't',
      content: { webhook: { type: 'incident.updated', data: {} } },
      audience: { kind: 'topic' as const, topic: 'incidents' },
    };
    return database.engine === 'sqlite'
      ? database.transaction((tx) => enqueueNotification(tx, input, new Date()))
      : database.transaction((tx) => enqueueNotification(tx, input, new Date()));
  };

  /** Waits (without a deadline of its own: the test's timeout is the failure) until `n` deliveries of the notification are sent. */
  async function sentEventually(database: Database, notificationId: number, n: number): Promise<void> {
    while ((await deliveryCountsOf(database, notificationId)).sent !== n) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  // An hour between polls: only the wake can make these sends happen within the test's timeout.
  const idleFor = 3_600_000;

  it('sends what was enqueued when woken, not at its next poll', async () => {
    const { database, close } = await engine.open();
    cleanup.push(close);
    await addSubscribersTo(database, TEST_KEYS, { count: 2, channel: 'webhook', address: (i) => `https://hooks.example/w/${i}` });
    const channel = new InstantChannel();
    const dispatcher = new Dispatcher({
      database,
      channels: { webhook: channel },
      keys: TEST_KEYS,
      publicUrl: new URL('https://trust.candor.test/'),
      pollMs: idleFor,
    });
    dispatcher.start();
    cleanup.push(() => dispatcher.stop());
    await new Promise((resolve) => setTimeout(resolve, 100)); // its first round found nothing: it waits
    const { notificationId } = await enqueueOne(database);
    dispatcher.wake();
    await sentEventually(database, notificationId, 2);
    expect(channel.sent).toBe(2);
  });

  it('a wake that arrives while a round is claiming is not lost: the loop claims again instead of waiting', async () => {
    const { database, close } = await engine.open();
    cleanup.push(close);
    await addSubscribersTo(database, TEST_KEYS, { count: 2, channel: 'webhook', address: (i) => `https://hooks.example/w/${i}` });
    // The work is committed and the wake given after the round's claim read the queue (empty) and before the round ends.
    let afterFirstClaim: (() => Promise<void>) | null = null;
    const observed = new Proxy(database, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (property !== 'transaction' || typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          const result: unknown = await Reflect.apply(value, target, args);
          const hook = afterFirstClaim;
          afterFirstClaim = null;
          if (hook) await hook();
          return result;
        };
      },
    });
    const channel = new InstantChannel();
    const dispatcher = new Dispatcher({
      database: observed,
      channels: { webhook: channel },
      keys: TEST_KEYS,
      publicUrl: new URL('https://trust.candor.test/'),
      pollMs: idleFor,
    });
    let enqueued: number | null = null;
    afterFirstClaim = async () => {
      enqueued = (await enqueueOne(database)).notificationId;
      dispatcher.wake();
    };
    dispatcher.start();
    cleanup.push(() => dispatcher.stop());
    while (enqueued === null) await new Promise((resolve) => setTimeout(resolve, 10));
    await sentEventually(database, enqueued, 2);
    expect(channel.sent).toBe(2);
  });
});
