/**
 * Issue 18, SMS: a send whose answer was lost is a retry with `mayHaveSent`, and `reconcile` asks
 * Twilio's message list (through the real `twilio` SDK, against the loopback fake) whether the
 * delivery's message exists, by the marker its link carries: `unknown` while Twilio may still list it
 * late, `found` with the same SID once listed (so nothing is sent twice), `absent` only after the
 * settle time. No database: the channel alone, as the dispatcher calls it.
 */
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import twilio from 'twilio';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  deliveryMarker,
  isMessageOf,
  markedLink,
  type TwilioSettings,
  TwilioSmsChannel,
  twilioMayHaveSent,
} from '../../src/core/notify/channels/sms-twilio.ts';
import { TwilioBaseUrlHttpClient } from '../../src/core/notify/channels/twilio-http-client.ts';
import { countSegments } from '../../src/core/notify/sms.ts';
import type { SendJob } from '../../src/core/notify/types.ts';
import { countSmsSegments, startFakeTwilio, type TwilioFake } from '../fakes/twilio.ts';

const SENDER = '+15005550006';
const OTHER_SENDER = '+15005550007';
const SERVICE = `MG${'a'.repeat(32)}`;
const LINK = 'https://trust.candor.test/incidents/7';
const LISTING_DELAY_MS = 300;
const SETTLE_MS = 900;

let fake: TwilioFake;

function settings(extra: Partial<TwilioSettings> = {}): TwilioSettings {
  return {
    accountSid: fake.accountSid,
    authToken: fake.authToken,
    from: SENDER,
    apiBaseUrl: fake.url,
    statusCallbackUrl: 'https://trust.candor.test/webhooks/twilio/status',
    reconcileSettleMs: SETTLE_MS,
    ...extra,
  };
}

function job(deliveryId: number, address: string, options: { body?: string; link?: string; unknownSince?: Date | null } = {}): SendJob {
  return {
    deliveryId,
    notificationId: 1,
    recipientId: deliveryId,
    address,
    secret: null,
    content: { sms: { body: options.body ?? 'Lumenwork - Incident: API degraded (Investigating).', link: options.link ?? LINK } },
    threadKey: null,
    batchKey: null,
    attempt: 1,
    unknownSince: options.unknownSince ?? null,
    links: { unsubscribe: null, manage: null },
  };
}

const posts = () => fake.requests.filter((r) => r.method === 'POST');
const gets = () => fake.requests.filter((r) => r.method === 'GET');

beforeAll(async () => {
  fake = await startFakeTwilio({ statusCallbacks: false, statusCallbackDelayMs: 5, listingDelayMs: LISTING_DELAY_MS });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
});

describe('Twilio SMS: a lost answer, reconciled', () => {
  it('a lost answer is a retry that may have sent; reconcile says unknown while unlisted, then found with the same SID, and nothing is sent twice', async () => {
    const channel = new TwilioSmsChannel(settings());
    const unknownSince = new Date();
    fake.loseResponseNext(1);
    const [result] = await channel.send([job(41, '+15551230001')]);
    expect(result).toMatchObject({ deliveryId: 41, outcome: 'retry', mayHaveSent: true, httpStatus: null, providerCode: 'ECONNRESET' });
    // Twilio took the message although the answer never came.
    expect(fake.messages).toHaveLength(1);
    const sid = fake.messages[0]?.sid;

    // Inside Twilio's listing delay the list does not hold it yet: no verdict, ask again later.
    const early = await channel.reconcile(job(41, '+15551230001', { unknownSince }));
    expect(early.outcome).toBe('unknown');
    if (early.outcome !== 'unknown') return;
    expect(early.retryAfterMs).toBeGreaterThan(0);
    expect(early.retryAfterMs).toBeLessThanOrEqual(SETTLE_MS);

    await sleep(LISTING_DELAY_MS + 50);
    const later = await channel.reconcile(job(41, '+15551230001', { unknownSince }));
    expect(later).toMatchObject({ outcome: 'found', providerMessageId: sid });
    // the lookups only read: still the one message, one create
    expect(fake.messages).toHaveLength(1);
    expect(posts()).toHaveLength(1);
    expect(gets().every((r) => r.query.To === '+15551230001' && r.query.From === SENDER && 'DateSent>' in r.query)).toBe(true);
  });

  it('a send that never reached Twilio: the connection refused is a retry that sent nothing, and reconcile answers absent only after the settle time', async () => {
    // a port nothing listens on
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const offline = new TwilioSmsChannel(settings({ apiBaseUrl: `http://127.0.0.1:${closedPort}` }));
    const [refused] = await offline.send([job(42, '+15551230002')]);
    expect(refused).toMatchObject({ outcome: 'retry', mayHaveSent: false, providerCode: 'ECONNREFUSED' });

    // A crash before the request went out: the dispatcher only knows the send began.
    const channel = new TwilioSmsChannel(settings());
    const unknownSince = new Date();
    // Another delivery to the same number with the very same text is in Twilio's list: not ours.
    const [other] = await channel.send([job(43, '+15551230002')]);
    expect(other?.outcome).toBe('sent');
    await sleep(LISTING_DELAY_MS + 50);
    const early = await channel.reconcile(job(42, '+15551230002', { unknownSince }));
    expect(early.outcome).toBe('unknown');
    await sleep(SETTLE_MS);
    const settled = await channel.reconcile(job(42, '+15551230002', { unknownSince }));
    expect(settled.outcome).toBe('absent');
    // and the other delivery is found, by its own marker
    expect(await channel.reconcile(job(43, '+15551230002', { unknownSince }))).toMatchObject({
      outcome: 'found',
      providerMessageId: other?.providerMessageId,
    });
  });

  it('a lookup that fails is unknown: a 500, and a 429 (asked again after its Retry-After, never sooner than 15 s)', async () => {
    const channel = new TwilioSmsChannel(settings());
    const unknownSince = new Date(Date.now() - 10 * SETTLE_MS);
    fake.failNext(1, 500);
    const failed = await channel.reconcile(job(44, '+15551230003', { unknownSince }));
    expect(failed.outcome).toBe('unknown');
    if (failed.outcome === 'unknown') expect(failed.error).toContain('500');

    fake.rateLimitStorm(60_000, 7);
    const limited = await channel.reconcile(job(44, '+15551230003', { unknownSince }));
    expect(limited).toMatchObject({ outcome: 'unknown', retryAfterMs: 15_000 });
    fake.reset();
    // the same question with Twilio answering, long after the send began: absent
    expect((await channel.reconcile(job(44, '+15551230003', { unknownSince }))).outcome).toBe('absent');
  });

  it('reads past the first page: the message under 120 newer ones to the same number is found', async () => {
    const channel = new TwilioSmsChannel(settings());
    fake.setListingDelay(0);
    const unknownSince = new Date();
    const [ours] = await channel.send([job(45, '+15551230004')]);
    expect(ours?.outcome).toBe('sent');
    await sleep(30); // Twilio dates it sent
    const client = twilio(fake.accountSid, fake.authToken, { httpClient: new TwilioBaseUrlHttpClient({ baseUrl: fake.url }) });
    for (let i = 0; i < 120; i += 1) await client.messages.create({ to: '+15551230004', from: SENDER, body: `newer ${i}` });
    // and a message with our marker from another sender of the account is not looked at
    await client.messages.create({ to: '+15551230004', from: OTHER_SENDER, body: `x ${markedLink(LINK, 46)}` });
    await sleep(30);
    fake.requests.length = 0;
    const found = await channel.reconcile(job(45, '+15551230004', { unknownSince }));
    expect(found).toMatchObject({ outcome: 'found', providerMessageId: ours?.providerMessageId });
    expect(gets()).toHaveLength(2);
    expect(gets()[1]?.query.PageToken).toMatch(/^PA/);
    const otherSender = await channel.reconcile(job(46, '+15551230004', { unknownSince: new Date(Date.now() - 2 * SETTLE_MS) }));
    expect(otherSender.outcome).toBe('absent');
  });

  it('through a Messaging Service the list is filtered by recipient only, and the marker decides', async () => {
    const channel = new TwilioSmsChannel(settings({ from: undefined, messagingServiceSid: SERVICE }));
    fake.setListingDelay(0);
    const unknownSince = new Date();
    fake.loseResponseNext(1);
    const [lost] = await channel.send([job(47, '+15551230005')]);
    expect(lost).toMatchObject({ outcome: 'retry', mayHaveSent: true });
    await sleep(30);
    const found = await channel.reconcile(job(47, '+15551230005', { unknownSince }));
    expect(found).toMatchObject({ outcome: 'found', providerMessageId: fake.messages[0]?.sid });
    expect(gets()[0]?.query).not.toHaveProperty('From');
  });
});

describe('Twilio SMS: which failures may have sent', () => {
  it('5xx and a lost answer may have; 429 and 401 did not; a permanent error is failed, not a retry', async () => {
    const channel = new TwilioSmsChannel(settings());
    fake.failNext(1, 500);
    expect((await channel.send([job(50, '+15551230006')]))[0]).toMatchObject({ outcome: 'retry', httpStatus: 500, mayHaveSent: true });
    fake.failNext(1, 503);
    expect((await channel.send([job(50, '+15551230006')]))[0]).toMatchObject({ outcome: 'retry', httpStatus: 503, mayHaveSent: false });
    fake.rateLimitStorm(60_000, 2);
    expect((await channel.send([job(51, '+15551230006')]))[0]).toMatchObject({
      outcome: 'retry',
      httpStatus: 429,
      mayHaveSent: false,
      retryAfterMs: 2000,
    });
    fake.reset();
    const wrongToken = new TwilioSmsChannel(settings({ authToken: 'f'.repeat(32) }));
    expect((await wrongToken.send([job(52, '+15551230006')]))[0]).toMatchObject({ outcome: 'retry', httpStatus: 401, mayHaveSent: false });
    const [invalid] = await channel.send([job(53, '555-0100')]);
    expect(invalid).toMatchObject({ outcome: 'failed', providerCode: '21211' });
    expect(invalid).not.toHaveProperty('mayHaveSent');
    expect(fake.messages).toHaveLength(0);
  });

  it('network errors: only those before any byte left say nothing was sent', () => {
    for (const code of ['ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ERR_SOCKET_CONNECTION_TIMEOUT']) {
      expect(twilioMayHaveSent(null, code), code).toBe(true);
    }
    expect(twilioMayHaveSent(null, null)).toBe(true);
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'CERT_HAS_EXPIRED'])
      expect(twilioMayHaveSent(null, code), code).toBe(false);
    expect(twilioMayHaveSent(500, null)).toBe(true);
    expect(twilioMayHaveSent(503, null)).toBe(false);
    expect(twilioMayHaveSent(429, null)).toBe(false);
  });
});

describe('Twilio SMS: the delivery marker', () => {
  it('each SMS ends with the page link carrying ?d=<delivery id in base 36>, within two segments even at the largest id', async () => {
    const channel = new TwilioSmsChannel(settings());
    const longGsm = `Lumenwork - Incident: API degraded (Investigating). ${'Requests to the EU region time out for some customers. '.repeat(8)}`;
    const longUcs2 = `Lumenwork - Störung 🚨: ${'Verzögerung bei Anfragen, wir untersuchen das. '.repeat(6)}`;
    const biggest = Number.MAX_SAFE_INTEGER;
    const results = await channel.send([
      job(1, '+15551230010', { body: longGsm }),
      job(biggest, '+15551230011', { body: longGsm }),
      job(biggest - 1, '+15551230012', { body: longUcs2 }),
      job(99, '+15551230013', { body: 'Announcement.', link: 'https://trust.candor.test/changes?topic=docs#announcement-3' }),
    ]);
    expect(results.map((r) => r.outcome)).toEqual(['sent', 'sent', 'sent', 'sent']);
    const bodyTo = (n: string) => fake.messagesTo(n)[0]?.body ?? '';
    expect(bodyTo('+15551230010').endsWith(`${LINK}?d=1`)).toBe(true);
    expect(bodyTo('+15551230011').endsWith(`${LINK}?d=${biggest.toString(36)}`)).toBe(true);
    expect(bodyTo('+15551230012').endsWith(`${LINK}?d=${(biggest - 1).toString(36)}`)).toBe(true);
    expect(bodyTo('+15551230013')).toBe('Announcement. https://trust.candor.test/changes?topic=docs&d=2r#announcement-3');
    for (const n of ['+15551230010', '+15551230011', '+15551230012']) {
      const body = bodyTo(n);
      expect(body).toContain('...');
      expect(countSmsSegments(body), n).toBe(2);
      expect(countSegments(body).segments, n).toBe(2);
    }
    expect(deliveryMarker(biggest)).toHaveLength(11);
  });

  it('a message is the delivery’s only when its body ends with the link marked with that id', () => {
    const j = job(36, '+15551230020');
    expect(markedLink(LINK, 36)).toBe(`${LINK}?d=10`);
    expect(isMessageOf(`Text ${LINK}?d=10`, j)).toBe(true);
    expect(isMessageOf(`Text ${LINK}?d=100`, j)).toBe(false);
    expect(isMessageOf(`Text ${LINK}?d=1`, j)).toBe(false);
    expect(isMessageOf(`Text ${LINK}`, j)).toBe(false);
    expect(isMessageOf(`See ${LINK}?d=10 and ${LINK}?d=11`, j)).toBe(false);
    expect(isMessageOf(`Text https://other.test/incidents/7?d=10`, j)).toBe(false);
  });
});

describe('Twilio fake: the message list', () => {
  it('filters by To, From and DateSent (by date), pages newest first, and lists a message only after its listing delay', async () => {
    const client = twilio(fake.accountSid, fake.authToken, { httpClient: new TwilioBaseUrlHttpClient({ baseUrl: fake.url }) });
    for (let i = 0; i < 5; i += 1) await client.messages.create({ to: '+15551230030', from: SENDER, body: `m${i}` });
    await client.messages.create({ to: '+15551230030', from: OTHER_SENDER, body: 'other sender' });
    await client.messages.create({ to: '+15551230031', from: SENDER, body: 'other recipient' });
    expect(await client.messages.list({ to: '+15551230030' })).toHaveLength(0);
    await sleep(LISTING_DELAY_MS + 50);
    const mine = await client.messages.list({ to: '+15551230030', from: SENDER, pageSize: 2 });
    expect(mine.map((m) => m.body)).toEqual(['m4', 'm3', 'm2', 'm1', 'm0']);
    expect(fake.requests.filter((r) => r.method === 'GET').length).toBe(1 + 3);
    const today = new Date();
    expect(await client.messages.list({ to: '+15551230030', dateSentAfter: today })).toHaveLength(6);
    const tomorrow = new Date(today.getTime() + 86_400_000);
    expect(await client.messages.list({ to: '+15551230030', dateSentAfter: tomorrow })).toHaveLength(0);
    expect(await client.messages.list({ to: '+15551230030', dateSentBefore: today })).toHaveLength(6);
    expect((await client.messages.list({ dateSent: today })).length).toBe(7);
    expect(mine[0]?.dateSent).toBeInstanceOf(Date);
  });
});
