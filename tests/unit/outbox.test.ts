import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/client.ts';
import { defaultRetryPolicy, parseRetryAfter, retryDelay } from '../../src/core/notify/backoff.ts';
import { readRecipientToken, recipientToken } from '../../src/core/notify/links.ts';
import { maskAddress, openRecipient } from '../../src/core/notify/recipients.ts';
import { addSubscribers, deliveryCounts, emailContent, TEST_KEYS } from '../helpers/notify.ts';
import { addRecipient, enqueueNotification, findRecipient, suppressRecipient } from '../helpers/outbox-on-connection.ts';

describe('fan-out', () => {
  it('writes one pending delivery per active recipient of the topic, on the channels the message has', async () => {
    const db = openDatabase(':memory:');
    addSubscribers(db, TEST_KEYS, { count: 50, channel: 'email' });
    addSubscribers(db, TEST_KEYS, { count: 20, channel: 'sms', address: (i) => `+4477009${String(i).padStart(5, '0')}` });
    addSubscribers(db, TEST_KEYS, { count: 7, channel: 'email', topic: 'subprocessors', address: (i) => `sub${i}@x.example` });
    const emailOnly = await enqueueNotification(
      db,
      { kind: 'test', title: 't', content: emailContent(), audience: { kind: 'topic', topic: 'incidents' } },
      new Date(),
    );
    expect(emailOnly.deliveries).toBe(50);
    expect(emailOnly.byChannel).toEqual({ email: 50 });
    const both = await enqueueNotification(
      db,
      {
        kind: 'test',
        title: 't',
        content: { ...emailContent(), sms: { body: 'hi', link: 'https://trust.example/incidents/1' } },
        audience: { kind: 'topic', topic: 'incidents' },
      },
      new Date(),
    );
    expect(both.byChannel).toEqual({ email: 50, sms: 20 });
    expect(deliveryCounts(db, both.notificationId)).toEqual({ pending: 70 });
  });

  it('narrows to components and skips suppressed recipients', async () => {
    const db = openDatabase(':memory:');
    const api = addSubscribers(db, TEST_KEYS, { count: 3, channel: 'email', component: 'public-api', address: (i) => `api${i}@x.example` });
    addSubscribers(db, TEST_KEYS, { count: 4, channel: 'email', component: 'web-app', address: (i) => `web${i}@x.example` });
    addSubscribers(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `all${i}@x.example` });
    await suppressRecipient(db, api[0] ?? 0, 'bounced', new Date());
    const result = await enqueueNotification(
      db,
      { kind: 'test', title: 't', content: emailContent(), audience: { kind: 'topic', topic: 'incidents', components: ['public-api'] } },
      new Date(),
    );
    // two of three API followers (one suppressed) and both who follow every component
    expect(result.deliveries).toBe(4);
  });

  it('addresses a named list of recipients', async () => {
    const db = openDatabase(':memory:');
    const ids = addSubscribers(db, TEST_KEYS, { count: 10, channel: 'email' });
    const result = await enqueueNotification(
      db,
      { kind: 'test', title: 't', content: emailContent(), audience: { kind: 'recipients', ids: ids.slice(0, 3) } },
      new Date(),
    );
    expect(result.deliveries).toBe(3);
  });

  it('refuses a message with no channel content, writing nothing', async () => {
    const db = openDatabase(':memory:');
    await expect(
      enqueueNotification(db, { kind: 'test', title: 't', content: {}, audience: { kind: 'recipients', ids: [] } }, new Date()),
    ).rejects.toThrow(/at least one channel/);
    expect(db.$client.prepare('SELECT count(*) AS n FROM notifications').get()).toEqual({ n: 0 });
  });
});

describe('recipients', () => {
  it('are stored sealed, found by blind index, and masked for display', async () => {
    const db = openDatabase(':memory:');
    const r = await addRecipient(db, TEST_KEYS, { channel: 'email', address: ' Ada@Example.COM ' }, new Date());
    expect(r.address).not.toContain('ada');
    expect(openRecipient(TEST_KEYS, r).address).toBe('ada@example.com');
    expect((await findRecipient(db, TEST_KEYS, 'email', 'ADA@example.com'))?.id).toBe(r.id);
    expect(await findRecipient(db, TEST_KEYS, 'email', 'bob@example.com')).toBeUndefined();
    expect(maskAddress('email', 'ada@example.com')).toBe('ad…@example.com');
    expect(maskAddress('sms', '+447700900123')).toBe('+44 …0123');
    expect(maskAddress('webhook', 'https://hooks.example.com/secret/path')).toBe('https://hooks.example.com/…');
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
