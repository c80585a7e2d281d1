/**
 * Proves each provider fake through the REAL SDK Candor uses, so the engine's tests can trust
 * that what works against a fake works against the provider (as far as these parts go).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebClient } from '@slack/web-api';
import { Resend } from 'resend';
import { Webhook } from 'standardwebhooks';
import twilio from 'twilio';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  captureTwilioResponses,
  retryAfterSeconds,
  rewriteTwilioUrl,
  TwilioBaseUrlHttpClient,
} from '../../src/core/notify/channels/twilio-http-client.ts';
import { ManualClock, waitUntil } from '../fakes/common.ts';
import { newResendWebhookSecret, type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { type SlackFake, startFakeSlack } from '../fakes/slack.ts';
import { countSmsSegments, startFakeTwilio, type TwilioFake } from '../fakes/twilio.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';

const FROM = 'Candor <notify@candor.test>';

function email(to: string, subject = 'Incident: API degraded') {
  return {
    from: FROM,
    to,
    subject,
    html: `<p>${subject}</p>`,
    text: subject,
    headers: {
      'List-Unsubscribe': '<https://trust.candor.test/unsubscribe/tok>',
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
    tags: [{ name: 'notification', value: 'n_1' }],
  };
}

describe('Resend fake through the resend SDK', () => {
  let fake: ResendFake;
  let resend: Resend;

  beforeAll(async () => {
    fake = await startFakeResend();
    resend = new Resend(fake.apiKey, { baseUrl: fake.url });
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('sends one email and records what the engine sets', async () => {
    const { data, error } = await resend.emails.send(email('Ann <ann@example.com>'));
    expect(error).toBeNull();
    expect(data?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(fake.emails).toHaveLength(1);
    const sent = fake.emails[0];
    expect(sent?.id).toBe(data?.id);
    expect(sent?.to).toEqual(['Ann <ann@example.com>']);
    expect(sent?.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(sent?.tags).toEqual([{ name: 'notification', value: 'n_1' }]);
    expect(sent?.text).toBe('Incident: API degraded');
    expect(fake.emailsTo('ANN@example.com')).toHaveLength(1);
    expect(fake.requests[0]?.status).toBe(200);
  });

  it('refuses a bad key with 403 invalid_api_key and a missing one with 401 missing_api_key', async () => {
    const other = new Resend('not-a-resend-key', { baseUrl: fake.url });
    const { data, error } = await other.emails.send(email('a@example.com'));
    expect(data).toBeNull();
    expect(error).toMatchObject({ statusCode: 403, name: 'invalid_api_key' });
    // The SDK refuses to run without a key, so the missing-key answer is checked by hand.
    const res = await fetch(`${fake.url}/emails`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ statusCode: 401, name: 'missing_api_key' });
  });

  it('answers validation errors as Resend does', async () => {
    const bad = await resend.emails.send({ ...email('a@example.com'), to: 'not an address' });
    expect(bad.error).toMatchObject({ statusCode: 422, name: 'validation_error' });
    const noSubject = await resend.emails.send({ from: FROM, to: 'a@example.com', subject: '', text: 'x' });
    expect(noSubject.error).toMatchObject({ statusCode: 422, name: 'missing_required_field' });
    expect(fake.emails).toHaveLength(0);
  });

  it('batch + Idempotency-Key: replay returns the same ids and sends nothing; a changed payload is 409', async () => {
    const batch = ['a@example.com', 'b@example.com', 'c@example.com'].map((to) => email(to));
    const key = 'notification/42/deliveries/1-3';
    const first = await resend.batch.send(batch, { idempotencyKey: key });
    expect(first.error).toBeNull();
    const ids = first.data?.data.map((d) => d.id);
    expect(ids).toHaveLength(3);
    expect(fake.emails).toHaveLength(3);
    expect(fake.emails.every((e) => e.idempotencyKey === key && e.batch)).toBe(true);

    const replay = await resend.batch.send(batch, { idempotencyKey: key });
    expect(replay.error).toBeNull();
    expect(replay.data?.data.map((d) => d.id)).toEqual(ids);
    expect(fake.emails).toHaveLength(3);

    const changed = await resend.batch.send([...batch.slice(0, 2), email('c@example.com', 'Resolved')], { idempotencyKey: key });
    expect(changed.data).toBeNull();
    expect(changed.error).toMatchObject({ statusCode: 409, name: 'invalid_idempotent_request' });
    expect(fake.emails).toHaveLength(3);
    expect(fake.duplicates()).toEqual([]);
  });

  it('refuses 101 emails in a batch with 422 validation_error, and a key over 256 chars with 400', async () => {
    const tooMany = Array.from({ length: 101 }, (_, i) => email(`r${i}@example.com`));
    const { error } = await resend.batch.send(tooMany, { idempotencyKey: 'big' });
    expect(error).toMatchObject({ statusCode: 422, name: 'validation_error' });
    const longKey = await resend.emails.send(email('a@example.com'), { idempotencyKey: 'k'.repeat(257) });
    expect(longKey.error).toMatchObject({ statusCode: 400, name: 'invalid_idempotency_key' });
    expect(fake.emails).toHaveLength(0);
    // A refused batch does not burn its key.
    const ok = await resend.batch.send(tooMany.slice(0, 100), { idempotencyKey: 'big' });
    expect(ok.error).toBeNull();
    expect(fake.emails).toHaveLength(100);
  });

  it('permissive batch validation sends the valid emails and lists the rest', async () => {
    const { data, error } = await resend.batch.send([email('a@example.com'), { ...email('b@example.com'), to: 'nope' }], {
      batchValidation: 'permissive',
    });
    expect(error).toBeNull();
    expect(data?.data).toHaveLength(1);
    expect(data?.errors).toEqual([{ index: 1, message: expect.stringContaining('`to`') }]);
  });

  it('answers 409 concurrent_idempotent_requests while the first request is in flight', async () => {
    fake.latency(150);
    const [a, b] = await Promise.all([
      resend.emails.send(email('a@example.com'), { idempotencyKey: 'same' }),
      sleep(30).then(() => resend.emails.send(email('a@example.com'), { idempotencyKey: 'same' })),
    ]);
    expect(a.error).toBeNull();
    expect(b.error).toMatchObject({ statusCode: 409, name: 'concurrent_idempotent_requests' });
    fake.latency(0);
    const later = await resend.emails.send(email('a@example.com'), { idempotencyKey: 'same' });
    expect(later.data?.id).toBe(a.data?.id);
    expect(fake.emails).toHaveLength(1);
  });

  it('a lost response retried with the same key is not a second email', async () => {
    fake.loseResponseNext(1);
    const lost = await resend.emails.send(email('a@example.com'), { idempotencyKey: 'crash-1' });
    // The SDK reports a network failure as an error with statusCode null and no headers.
    expect(lost.error).toMatchObject({ name: 'application_error', statusCode: null });
    expect(lost.headers).toBeNull();
    expect(fake.emails).toHaveLength(1);
    const retry = await resend.emails.send(email('a@example.com'), { idempotencyKey: 'crash-1' });
    expect(retry.data?.id).toBe(fake.emails[0]?.id);
    expect(fake.emails).toHaveLength(1);
  });

  it('forgets idempotency keys after 24 hours', async () => {
    const clock = new ManualClock();
    const timed = await startFakeResend({ clock });
    try {
      const client = new Resend(timed.apiKey, { baseUrl: timed.url });
      const first = await client.emails.send(email('a@example.com'), { idempotencyKey: 'daily' });
      clock.advance(24 * 60 * 60 * 1000 - 1);
      expect((await client.emails.send(email('a@example.com'), { idempotencyKey: 'daily' })).data?.id).toBe(first.data?.id);
      clock.advance(2);
      const again = await client.emails.send(email('a@example.com'), { idempotencyKey: 'daily' });
      expect(again.data?.id).not.toBe(first.data?.id);
      expect(timed.emails).toHaveLength(2);
      expect(timed.duplicates()).toEqual([{ address: 'a@example.com', subject: 'Incident: API degraded', count: 2 }]);
    } finally {
      await timed.close();
    }
  });

  it('429 rate_limit_exceeded with retry-after and ratelimit-* visible in the SDK headers', async () => {
    fake.setRequestsPerSecond(2);
    const results = [];
    for (let i = 0; i < 3; i += 1) results.push(await resend.emails.send(email(`r${i}@example.com`)));
    expect(results[0]?.headers?.['ratelimit-limit']).toBe('2');
    expect(results[0]?.headers?.['ratelimit-remaining']).toBe('1');
    const limited = results[2];
    expect(limited?.error).toMatchObject({ statusCode: 429, name: 'rate_limit_exceeded' });
    expect(limited?.headers?.['retry-after']).toBe('1');
    expect(limited?.headers?.['ratelimit-remaining']).toBe('0');
    expect(fake.rateLimited).toHaveLength(1);
    expect(fake.emails).toHaveLength(2);

    fake.setRequestsPerSecond(undefined);
    fake.rateLimitStorm(200, 7);
    const storm = await resend.emails.send(email('s@example.com'));
    expect(storm.error?.name).toBe('rate_limit_exceeded');
    expect(storm.headers?.['retry-after']).toBe('7');
    await sleep(220);
    expect((await resend.emails.send(email('s@example.com'))).error).toBeNull();
    expect(fake.rateLimited.map((r) => r.reason)).toEqual(['rate-limit', 'storm']);
  });

  it('fails during an outage and recovers after it; failNext fails exactly n requests', async () => {
    fake.outage(150);
    const during = await resend.emails.send(email('a@example.com'));
    expect(during.error).toMatchObject({ statusCode: 503, name: 'application_error' });
    await sleep(170);
    expect((await resend.emails.send(email('a@example.com'))).error).toBeNull();

    fake.failNext(2);
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await resend.emails.send(email('b@example.com'))).error?.statusCode ?? 200);
    expect(statuses).toEqual([500, 500, 200]);
    expect(fake.requests.map((r) => r.status)).toEqual([503, 200, 500, 500, 200]);
    expect(fake.emails).toHaveLength(2);
  });

  it('signs webhooks so resend.webhooks.verify accepts them and rejects a tampered body', async () => {
    const secret = newResendWebhookSecret();
    const { data } = await resend.emails.send(email('ann@example.com'));
    const sent = fake.emails.find((e) => e.id === data?.id);
    if (!sent) throw new Error('email not recorded');
    for (const type of ['email.delivered', 'email.bounced', 'email.complained', 'email.failed'] as const) {
      const signed = fake.signedWebhook(secret, { type, email: sent });
      const event = resend.webhooks.verify({
        payload: signed.body,
        headers: {
          id: signed.headers['svix-id'],
          timestamp: signed.headers['svix-timestamp'],
          signature: signed.headers['svix-signature'],
        },
        webhookSecret: secret,
      });
      expect(event).toMatchObject({ type, data: { email_id: sent.id, to: ['ann@example.com'], subject: sent.subject } });
      if (event.type === 'email.bounced') expect(event.data.bounce.type).toBe('Permanent');
    }
    const signed = fake.signedWebhook(secret, { type: 'email.delivered', email: sent });
    const tampered = signed.body.replace('email.delivered', 'email.bounced');
    expect(() =>
      resend.webhooks.verify({
        payload: tampered,
        headers: {
          id: signed.headers['svix-id'],
          timestamp: signed.headers['svix-timestamp'],
          signature: signed.headers['svix-signature'],
        },
        webhookSecret: secret,
      }),
    ).toThrow(/signature/i);
  });
});

describe('Twilio fake through the twilio SDK and TwilioBaseUrlHttpClient', () => {
  let fake: TwilioFake;
  let client: twilio.Twilio;
  let receiver: WebhookReceiver;
  const FROM_NUMBER = '+15005550006';

  beforeAll(async () => {
    fake = await startFakeTwilio({ statusCallbackDelayMs: 5 });
    receiver = await startWebhookReceiver();
    client = twilio(fake.accountSid, fake.authToken, { httpClient: new TwilioBaseUrlHttpClient({ baseUrl: fake.url }) });
  });
  afterAll(async () => {
    await fake.close();
    await receiver.close();
  });
  beforeEach(() => {
    fake.reset();
    receiver.reset();
  });

  it('rewrites only *.twilio.com URLs onto the base URL', () => {
    expect(rewriteTwilioUrl('https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1', 'http://127.0.0.1:9/p/')).toBe(
      'http://127.0.0.1:9/p/2010-04-01/Accounts/AC1/Messages.json?x=1',
    );
    expect(rewriteTwilioUrl('https://example.com/a', 'http://127.0.0.1:9')).toBe('https://example.com/a');
  });

  it('creates a message: 201 with an SM sid and the message resource', async () => {
    const message = await client.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'API degraded. https://t.co/x' });
    expect(message.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message.status).toBe('queued');
    expect(message.numSegments).toBe('1');
    expect(message.to).toBe('+15551230001');
    expect(message.dateCreated).toBeInstanceOf(Date);
    expect(fake.messagesTo('+15551230001')).toHaveLength(1);
    expect(fake.requests[0]?.status).toBe(201);
  });

  it('throws RestException 21211 for a number that is not E.164 and 21610 for an unsubscribed one', async () => {
    const invalid = await client.messages.create({ to: '555-0100', from: FROM_NUMBER, body: 'x' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(twilio.RestException);
    expect(invalid).toMatchObject({ status: 400, code: 21211, moreInfo: 'https://www.twilio.com/docs/errors/21211' });

    fake.unsubscribe('+15551230002');
    const stopped = await client.messages.create({ to: '+15551230002', from: FROM_NUMBER, body: 'x' }).catch((e: unknown) => e);
    expect(stopped).toMatchObject({ status: 400, code: 21610 });
    expect(fake.messages).toHaveLength(0);
  });

  it('refuses wrong credentials with 401 / 20003', async () => {
    const wrong = twilio(fake.accountSid, 'f'.repeat(32), { httpClient: new TwilioBaseUrlHttpClient({ baseUrl: fake.url }) });
    await expect(wrong.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'x' })).rejects.toMatchObject({
      status: 401,
      code: 20003,
    });
  });

  it('429 / 20429 per sender; Retry-After only reachable through captureTwilioResponses', async () => {
    fake.setMessagesPerSecondPerSender(1);
    await client.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'one' });
    const outcome = await captureTwilioResponses(() => client.messages.create({ to: '+15551230003', from: FROM_NUMBER, body: 'two' }));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toBeInstanceOf(twilio.RestException);
    expect(outcome.error).toMatchObject({ status: 429, code: 20429 });
    // The thrown RestException has no headers; the captured raw response does.
    expect(Object.keys(outcome.error as object)).not.toContain('headers');
    expect(outcome.responses).toHaveLength(1);
    const [response] = outcome.responses;
    if (!response) throw new Error('no response captured');
    expect(response.statusCode).toBe(429);
    expect(retryAfterSeconds(response)).toBe(1);
    // Another sender is not limited.
    await client.messages.create({ to: '+15551230003', from: '+15005550007', body: 'three' });
    expect(fake.rateLimited).toHaveLength(1);
  });

  it('a lost response surfaces as an axios network error (not a RestException) although the message was sent', async () => {
    fake.loseResponseNext(1);
    const lost = await client.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'x' }).catch((e: unknown) => e);
    expect(lost).not.toBeInstanceOf(twilio.RestException);
    expect(lost).toMatchObject({ code: 'ECONNRESET' });
    // Twilio has no idempotency key: a blind retry here would be a second SMS.
    expect(fake.messages).toHaveLength(1);
  });

  it('fails during an outage (503 / 20503) and recovers', async () => {
    fake.outage(100);
    await expect(client.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'x' })).rejects.toMatchObject({
      status: 503,
      code: 20503,
    });
    await sleep(120);
    await expect(client.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'x' })).resolves.toMatchObject({ status: 'queued' });
  });

  it('posts signed status callbacks that twilio.validateRequest accepts: sent then delivered, or undelivered with ErrorCode', async () => {
    const statusCallback = `${receiver.url}/webhooks/twilio/status?d=1`;
    fake.failDelivery('+15551230009', { status: 'undelivered', errorCode: 30003 });
    const ok = await client.messages.create({ to: '+15551230001', from: FROM_NUMBER, body: 'x', statusCallback });
    const bad = await client.messages.create({ to: '+15551230009', from: FROM_NUMBER, body: 'x', statusCallback });
    await fake.callbacksSettled();
    await receiver.waitFor(4);
    for (const request of receiver.received) {
      const params = Object.fromEntries(new URLSearchParams(request.body));
      const signature = request.headers['x-twilio-signature'] ?? '';
      expect(twilio.validateRequest(fake.authToken, signature, statusCallback, params)).toBe(true);
      expect(twilio.validateRequest('0'.repeat(32), signature, statusCallback, params)).toBe(false);
    }
    const statuses = (sid: string) =>
      receiver.received
        .map((r) => new URLSearchParams(r.body))
        .filter((p) => p.get('MessageSid') === sid)
        .map((p) => p.get('MessageStatus'));
    expect(statuses(ok.sid)).toEqual(['sent', 'delivered']);
    expect(statuses(bad.sid)).toEqual(['sent', 'undelivered']);
    const last = receiver.received.map((r) => new URLSearchParams(r.body)).find((p) => p.get('MessageStatus') === 'undelivered');
    expect(last?.get('ErrorCode')).toBe('30003');
    expect(last?.get('AccountSid')).toBe(fake.accountSid);
    expect(fake.messagesTo('+15551230009')[0]?.status).toBe('undelivered');
  });

  it('sends signed inbound SMS and returns the TwiML answer; a forged one is refused by the receiver', async () => {
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${req.url}`;
        if (!twilio.validateRequest(fake.authToken, String(req.headers['x-twilio-signature'] ?? ''), url, params)) {
          res.writeHead(401).end();
          return;
        }
        const twiml = new twilio.twiml.MessagingResponse();
        if (params.Body?.trim().toUpperCase() === 'HELP') twiml.message('Candor alerts. Reply STOP to stop.');
        res.writeHead(200, { 'content-type': 'text/xml' }).end(twiml.toString());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/twilio/inbound`;
      const help = await fake.sendInbound(url, { From: '+15551230001', To: FROM_NUMBER, Body: 'help' });
      expect(help.status).toBe(200);
      expect(help.contentType).toBe('text/xml');
      expect(help.body).toContain('<Message>Candor alerts. Reply STOP to stop.</Message>');
      expect(help.params.MessageSid).toMatch(/^SM[0-9a-f]{32}$/);
      expect((await fake.sendInbound(url, { From: '+15551230001', To: FROM_NUMBER, Body: 'STOP' }, { signature: 'invalid' })).status).toBe(
        401,
      );
      expect((await fake.sendInbound(url, { From: '+15551230001', To: FROM_NUMBER, Body: 'STOP' }, { signature: 'none' })).status).toBe(
        401,
      );
    } finally {
      server.close();
    }
  });

  it('counts GSM-7 and UCS-2 segments as Twilio bills them', () => {
    expect(countSmsSegments('a'.repeat(160))).toBe(1);
    expect(countSmsSegments('a'.repeat(161))).toBe(2);
    expect(countSmsSegments('€'.repeat(80))).toBe(1);
    expect(countSmsSegments('€'.repeat(81))).toBe(2);
    expect(countSmsSegments('ü'.repeat(160))).toBe(1);
    expect(countSmsSegments('✓'.repeat(70))).toBe(1);
    expect(countSmsSegments('✓'.repeat(71))).toBe(2);
  });
});

describe('Slack fake through @slack/web-api', () => {
  let fake: SlackFake;
  let web: WebClient;

  beforeAll(async () => {
    fake = await startFakeSlack();
    web = new WebClient(fake.botToken, { slackApiUrl: fake.apiUrl, rejectRateLimitedCalls: true, retryConfig: { retries: 0 } });
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('posts a thread root, a reply in its thread, and edits the root', async () => {
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*Investigating* API degraded' } }];
    const root = await web.chat.postMessage({ channel: 'C0INCIDENTS', text: 'Investigating: API degraded', blocks });
    expect(root.ok).toBe(true);
    expect(root.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(root.message?.blocks).toEqual(blocks);
    const rootTs = root.ts ?? '';
    const reply = await web.chat.postMessage({ channel: 'C0INCIDENTS', thread_ts: rootTs, text: 'Identified: a bad deploy' });
    expect(Number(reply.ts)).toBeGreaterThan(Number(rootTs));
    expect(reply.message?.thread_ts).toBe(rootTs);
    const edited = await web.chat.update({ channel: 'C0INCIDENTS', ts: rootTs, text: 'Identified: API degraded', blocks: [] });
    expect(edited.ok).toBe(true);

    const threads = fake.threads('C0INCIDENTS');
    expect(threads).toHaveLength(1);
    expect(threads[0]?.root.text).toBe('Identified: API degraded');
    expect(threads[0]?.root.edits).toBe(1);
    expect(threads[0]?.replies.map((r) => r.text)).toEqual(['Identified: a bad deploy']);
    expect(fake.updates).toHaveLength(1);

    const missing = await web.chat.update({ channel: 'C0INCIDENTS', ts: '1.000001', text: 'x' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(WebAPIPlatformError);
    expect(missing).toMatchObject({ code: 'slack_webapi_platform_error', data: { ok: false, error: 'message_not_found' } });
  });

  it('accepts a JSON body with a Bearer token as well as the WebClient form encoding', async () => {
    const res = await fetch(`${fake.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.botToken}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ channel: 'C1', text: 'json', blocks: [{ type: 'divider' }] }),
    });
    expect(await res.json()).toMatchObject({ ok: true, channel: 'C1', message: { text: 'json', blocks: [{ type: 'divider' }] } });
    expect(fake.messages[0]?.blocks).toEqual([{ type: 'divider' }]);
  });

  it('resolves #names to a channel id and reports configured channel and token errors', async () => {
    const named = await web.chat.postMessage({ channel: '#status', text: 'hi' });
    expect(named.channel).toBe(fake.channelId('#status'));
    fake.setChannelError('C0GONE', 'channel_not_found');
    fake.setChannelError('C0PRIVATE', 'not_in_channel');
    await expect(web.chat.postMessage({ channel: 'C0GONE', text: 'x' })).rejects.toMatchObject({ data: { error: 'channel_not_found' } });
    await expect(web.chat.postMessage({ channel: 'C0PRIVATE', text: 'x' })).rejects.toMatchObject({ data: { error: 'not_in_channel' } });
    for (const error of ['invalid_auth', 'account_inactive', 'token_revoked'] as const) {
      fake.setTokenError(fake.botToken, error);
      await expect(web.chat.postMessage({ channel: 'C1', text: 'x' })).rejects.toMatchObject({ data: { error } });
    }
    await expect(new WebClient('bogus', { slackApiUrl: fake.apiUrl }).chat.postMessage({ channel: 'C1', text: 'x' })).rejects.toMatchObject(
      {
        data: { error: 'invalid_auth' },
      },
    );
  });

  it('rate-limits per channel with HTTP 429 + Retry-After, surfaced as WebAPIRateLimitedError', async () => {
    fake.setMessagesPerSecondPerChannel(1);
    await web.chat.postMessage({ channel: 'C1', text: 'one' });
    const limited = await web.chat.postMessage({ channel: 'C1', text: 'two' }).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(WebAPIRateLimitedError);
    expect(limited).toMatchObject({ code: 'slack_webapi_rate_limited_error', retryAfter: 1 });
    await web.chat.postMessage({ channel: 'C2', text: 'other channel' });
    expect(fake.rateLimited).toHaveLength(1);
    expect(fake.requests.find((r) => r.status === 429)?.outcome).toBe('ratelimited');
  });

  it('5xx: WebAPIHTTPError without retries; the default-style retry policy retries it', async () => {
    fake.failNext(1, 503);
    const failed = await web.chat.postMessage({ channel: 'C1', text: 'x' }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(WebAPIHTTPError);
    expect(failed).toMatchObject({ code: 'slack_webapi_http_error', statusCode: 503 });
    fake.outage(100);
    const retrying = new WebClient(fake.botToken, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 5, minTimeout: 40, factor: 1 } });
    const eventually = await retrying.chat.postMessage({ channel: 'C1', text: 'after outage' });
    expect(eventually.ok).toBe(true);
    expect(fake.requests.filter((r) => r.status === 503).length).toBeGreaterThanOrEqual(2);
  });

  it('oauth.v2.access exchanges an issued code once, and its incoming webhook accepts posts', async () => {
    const redirectUri = 'https://trust.candor.test/console/slack/callback';
    const code = fake.issueCode({ redirectUri, channel: '#incidents' });
    const anonymous = new WebClient(undefined, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } });
    const result = await anonymous.oauth.v2.access({
      client_id: fake.clientId,
      client_secret: fake.clientSecret,
      code,
      redirect_uri: redirectUri,
    });
    expect(result).toMatchObject({
      ok: true,
      token_type: 'bot',
      bot_user_id: fake.botUserId,
      app_id: fake.appId,
      team: fake.team,
      incoming_webhook: { channel: '#incidents', channel_id: fake.channelId('#incidents') },
    });
    expect(result.access_token).toMatch(/^xoxb-/);
    await expect(anonymous.oauth.v2.access({ client_id: fake.clientId, client_secret: fake.clientSecret, code })).rejects.toMatchObject({
      data: { error: 'invalid_code' },
    });
    await expect(anonymous.oauth.v2.access({ client_id: fake.clientId, client_secret: 'wrong', code: 'x' })).rejects.toMatchObject({
      data: { error: 'bad_client_secret' },
    });

    const bot = new WebClient(result.access_token, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } });
    expect((await bot.chat.postMessage({ channel: 'C1', text: 'with the new token' })).ok).toBe(true);

    const hookUrl = result.incoming_webhook?.url ?? '';
    const posted = await fetch(hookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hello' }),
    });
    expect(posted.status).toBe(200);
    expect(await posted.text()).toBe('ok');
    expect(fake.webhookPosts).toMatchObject([{ channel: fake.channelId('#incidents'), text: 'hello' }]);
    const unknown = await fetch(`${fake.url}/services/T0/B0/nope`, { method: 'POST', body: '{"text":"x"}' });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe('no_service');
  });
});

describe('webhook receiver with standardwebhooks', () => {
  let receiver: WebhookReceiver;
  const secret = `whsec_${randomBytes(24).toString('base64')}`;

  beforeAll(async () => {
    receiver = await startWebhookReceiver({ secret });
  });
  afterAll(() => receiver.close());
  beforeEach(() => receiver.reset());

  async function send(body: string, signingSecret = secret) {
    const id = `msg_${randomBytes(8).toString('hex')}`;
    const timestamp = new Date();
    const signature = new Webhook(signingSecret).sign(id, timestamp, body);
    return fetch(`${receiver.url}/hooks/candor`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
        'webhook-signature': signature,
      },
      body,
    });
  }

  it('records and verifies signed requests and rejects ones signed with another secret', async () => {
    const body = JSON.stringify({ type: 'incident.updated', data: { id: 'inc_1' } });
    expect((await send(body)).status).toBe(200);
    expect((await send(body, `whsec_${randomBytes(24).toString('base64')}`)).status).toBe(200);
    expect(receiver.received.map((r) => r.verified)).toEqual([true, false]);
    expect(receiver.received[0]?.body).toBe(body);
    expect(receiver.received[0]?.status).toBe(200);
    expect(receiver.verified()).toEqual([{ request: receiver.received[0], payload: { type: 'incident.updated', data: { id: 'inc_1' } } }]);
  });

  it('answers the configured status, fails next, and delays', async () => {
    receiver.respondWith(410);
    expect((await send('{}')).status).toBe(410);
    receiver.respondWith(204);
    receiver.failNext(1, 502);
    expect((await send('{}')).status).toBe(502);
    expect((await send('{}')).status).toBe(204);
    receiver.latency(120);
    const started = Date.now();
    await send('{}');
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await waitUntil(() => receiver.received.length === 4);
    expect(receiver.received.map((r) => r.status)).toEqual([410, 502, 204, 204]);
  });

  it('sheds load with 429 and Retry-After during a storm, then answers again', async () => {
    receiver.rateLimitStorm(150, 3);
    const limited = await send('{}');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    await sleep(200);
    expect((await send('{}')).status).toBe(200);
    await waitUntil(() => receiver.received.length === 2);
    expect(receiver.received.map((r) => r.status)).toEqual([429, 200]);
  });
});
