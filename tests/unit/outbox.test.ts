/**
 * The outbox's fan-out and the recipients' sealed storage, straight against the core
 * (src/core/notify/outbox.ts, recipients.ts); links, backoff and SMS segments. The database cases
 * run on each engine (SQLite always, PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, as the
 * application role under row-level security): one database per engine, emptied of subscribers and
 * notifications before each fan-out case, seeded and inspected through the product's code and the
 * builder.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Reader, Tx } from '../../db/engine/types.ts';
import { defaultRetryPolicy, parseRetryAfter, retryDelay } from '../../src/core/notify/backoff.ts';
import { readRecipientToken, recipientToken } from '../../src/core/notify/links.ts';
import { enqueueNotification, type NewNotification } from '../../src/core/notify/outbox.ts';
import { addRecipient, findRecipient, maskAddress, openRecipient, suppressRecipient } from '../../src/core/notify/recipients.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, deliveryCountsOf, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';

/** One transaction of either engine, with the product's code in it. */
function inTransaction<T>(database: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.transaction((tx) => fn(tx)) : database.transaction((tx) => fn(tx));
}

/** One read of either engine. */
function inRead<T>(database: Database, fn: (r: Reader) => Promise<T>): Promise<T> {
  return database.engine === 'sqlite' ? database.read((r) => fn(r)) : database.read((r) => fn(r));
}

const enqueue = (database: Database, input: NewNotification) => inTransaction(database, (tx) => enqueueNotification(tx, input, new Date()));

describe.each(enginesUnderTest())('on $name', (engine) => {
  let opened: OpenedEngine;
  let database: Database;
  beforeAll(async () => {
    opened = await engine.open();
    database = opened.database;
  });
  afterAll(() => opened?.close());

  describe('fan-out', () => {
    // Each case counts who follows a topic from nobody: what the previous one wrote is deleted.
    beforeEach(async () => {
      await writeRows(database, async (q) => {
        await q.db.delete(q.t.deliveries);
        await q.db.delete(q.t.notifications);
        await q.db.delete(q.t.recipients);
        await q.db.delete(q.t.subscriberTopics);
        await q.db.delete(q.t.subscribers);
      });
    });

    it('writes one pending delivery per active recipient of the topic, on the channels the message has', async () => {
      await addSubscribersTo(database, TEST_KEYS, { count: 50, channel: 'email' });
      await addSubscribersTo(database, TEST_KEYS, { count: 20, channel: 'sms', address: (i) => `+4477009${String(i).padStart(5, '0')}` });
      await addSubscribersTo(database, TEST_KEYS, {
        count: 7,
        channel: 'email',
        topic: 'subprocessors',
        address: (i) => `sub${i}@x.example`,
      });
      const emailOnly = await enqueue(database, {
        kind: 'test',
        title: 't',
        content: emailContent(),
        audience: { kind: 'topic', topic: 'incidents' },
      });
      expect(emailOnly.deliveries).toBe(50);
      expect(emailOnly.byChannel).toEqual({ email: 50 });
      const both = await enqueue(database, {
        kind: 'test',
        title: 't',
        content: { ...emailContent(), sms: { body: 'hi', link: 'https://trust.example/incidents/1' } },
        audience: { kind: 'topic', topic: 'incidents' },
      });
      expect(both.byChannel).toEqual({ email: 50, sms: 20 });
      expect(await deliveryCountsOf(database, both.notificationId)).toEqual({ pending: 70 });
    });

    it('narrows to components and skips suppressed recipients', async () => {
      const api = await addSubscribersTo(database, TEST_KEYS, {
        count: 3,
        channel: 'email',
        component: 'public-api',
        address: (i) => `api${i}@x.example`,
      });
      await addSubscribersTo(database, TEST_KEYS, {
        count: 4,
        channel: 'email',
        component: 'web-app',
        address: (i) => `web${i}@x.example`,
      });
      await addSubscribersTo(database, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `all${i}@x.example` });
      await inTransaction(database, (tx) => suppressRecipient(tx, api[0] ?? 0, 'bounced', new Date()));
      const result = await enqueue(database, {
        kind: 'test',
        title: 't',
        content: emailContent(),
        audience: { kind: 'topic', topic: 'incidents', components: ['public-api'] },
      });
      // two of three API followers (one suppressed) and both who follow every component
      expect(result.deliveries).toBe(4);
    });

    it('addresses a named list of recipients', async () => {
      const ids = await addSubscribersTo(database, TEST_KEYS, { count: 10, channel: 'email' });
      const result = await enqueue(database, {
        kind: 'test',
        title: 't',
        content: emailContent(),
        audience: { kind: 'recipients', ids: ids.slice(0, 3) },
      });
      expect(result.deliveries).toBe(3);
    });

    it('refuses a message with no channel content, writing nothing', async () => {
      await expect(enqueue(database, { kind: 'test', title: 't', content: {}, audience: { kind: 'recipients', ids: [] } })).rejects.toThrow(
        /at least one channel/,
      );
      expect(await readRows(database, (q) => q.db.$count(q.t.notifications))).toBe(0);
    });
  });

  describe('recipients', () => {
    it('are stored sealed, found by blind index, and masked for display', async () => {
      const r = await inTransaction(database, (tx) =>
        addRecipient(tx, TEST_KEYS, { channel: 'email', address: ' Ada@Example.COM ' }, new Date()),
      );
      expect(r.address).not.toContain('ada');
      expect(openRecipient(TEST_KEYS, r).address).toBe('ada@example.com');
      expect((await inRead(database, (q) => findRecipient(q, TEST_KEYS, 'email', 'ADA@example.com')))?.id).toBe(r.id);
      expect(await inRead(database, (q) => findRecipient(q, TEST_KEYS, 'email', 'bob@example.com'))).toBeUndefined();
      expect(maskAddress('email', 'ada@example.com')).toBe('ad…@example.com');
      expect(maskAddress('sms', '+447700900123')).toBe('+44 …0123');
      expect(maskAddress('webhook', 'https://hooks.example.com/secret/path')).toBe('https://hooks.example.com/…');
    });
  });
});

describe('signed recipient links', () => {
  it('round-trip and refuse forgery', () => {
    const token = recipientToken('s'.repeat(40), 'unsubscribe', 1234);
    expect(readRecipientToken('s'.repeat(40), 'unsubscribe', token)).toBe(1234);
    expect(readRecipientToken('s'.repeat(40), 'manage', token)).toBeNull();
    expect(readRecipientToken('t'.repeat(40), 'unsubscribe', token)).toBeNull();
    const [, mac] = token.split('.');
    expect(readRecipientToken('s'.repeat(40), 'unsubscribe', `${(1235).toString(36)}.${mac}`)).toBeNull();
    expect(readRecipientToken('s'.repeat(40), 'unsubscribe', '../../etc')).toBeNull();
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter, is capped, and honours Retry-After', () => {
    const p = { ...defaultRetryPolicy, baseMs: 1000, capMs: 60_000 };
    expect(retryDelay(1, p, null, () => 0)).toBe(500);
    expect(retryDelay(1, p, null, () => 1)).toBe(1000);
    expect(retryDelay(4, p, null, () => 1)).toBe(8000);
    expect(retryDelay(20, p, null, () => 1)).toBe(60_000);
    expect(retryDelay(1, p, 30_000, () => 1)).toBe(30_000);
    expect(parseRetryAfter('7', 0)).toBe(7000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeNull();
  });
});

describe('SMS segments', () => {
  it('counts GSM-7, its extension characters, and UCS-2', async () => {
    const { countSegments, fitSms } = await import('../../src/core/notify/sms.ts');
    expect(countSegments('a'.repeat(160))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(countSegments('a'.repeat(161)).segments).toBe(2);
    expect(countSegments('a'.repeat(306)).segments).toBe(2);
    expect(countSegments('a'.repeat(307)).segments).toBe(3);
    expect(countSegments('€'.repeat(80))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(countSegments('ü'.repeat(160)).encoding).toBe('GSM-7');
    expect(countSegments(`${'a'.repeat(69)}…`)).toEqual({ encoding: 'UCS-2', units: 70, segments: 1 });
    expect(countSegments('😀'.repeat(35)).units).toBe(70);
    const link = 'https://trust.lumenwork.example/incidents/12';
    const long = `Major outage: ${'the API is returning errors for some customers while we investigate. '.repeat(10)}`;
    const fitted = fitSms(long, link);
    expect(fitted.endsWith(` ${link}`)).toBe(true);
    expect(fitted).toContain('...');
    expect(countSegments(fitted).segments).toBeLessThanOrEqual(2);
    const emoji = fitSms(`Störung 🚨 ${'Verzögerung '.repeat(30)}`, link);
    expect(countSegments(emoji)).toMatchObject({ encoding: 'UCS-2' });
    expect(countSegments(emoji).segments).toBeLessThanOrEqual(2);
    expect(fitSms('Resolved.', link)).toBe(`Resolved. ${link}`);
  });
});
