/**
 * The notification engine's proof, through the REAL SDKs (resend, twilio, @slack/web-api,
 * node:http + standardwebhooks) against the loopback fakes: fan-out to 10,000 recipients on
 * four channels, provider outages, Retry-After, lost responses, suppression, permanent
 * failures, two dispatchers on one database and a graceful stop. On each engine (SQLite always,
 * PostgreSQL when CANDOR_TEST_POSTGRES_URL is set, as the application role under row-level security);
 * each case has a fresh database, seeded and inspected through the product's code, the stores and the
 * builder. Where two dispatchers share a database, on PostgreSQL each has a pool of its own, as two
 * processes would, and their claims race in concurrent transactions. The fakes are shared and reset
 * between cases.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Tx } from '../../db/engine/types.ts';
import { DiscordChannel } from '../../src/core/notify/channels/discord.ts';
import { ResendEmailChannel } from '../../src/core/notify/channels/email-resend.ts';
import { SlackChannel } from '../../src/core/notify/channels/slack.ts';
import { TwilioSmsChannel } from '../../src/core/notify/channels/sms-twilio.ts';
import { TeamsChannel } from '../../src/core/notify/channels/teams.ts';
import { WebhookChannel } from '../../src/core/notify/channels/webhook.ts';
import { Dispatcher, type DispatcherOptions } from '../../src/core/notify/dispatcher.ts';
import { readRecipientToken } from '../../src/core/notify/links.ts';
import { type Audience, type Enqueued, enqueueNotification } from '../../src/core/notify/outbox.ts';
import { suppressRecipient } from '../../src/core/notify/recipients.ts';
import type { Channel, ChannelName, LimitSettings, NotificationContent } from '../../src/core/notify/types.ts';
import { claimThread } from '../../src/stores/slack-threads.ts';
import { type ChatWebhooksFake, startChatWebhooksFake } from '../fakes/chat-webhooks.ts';
import type { RecordedRequest } from '../fakes/common.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { type SlackFake, startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio, type TwilioFake } from '../fakes/twilio.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fakes/webhook-receiver.ts';
import { readRows, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, deliveryCountsOf, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const PUBLIC_URL = new URL('https://trust.candor.test/');
const FROM = 'Candor Status <status@candor.test>';
const SENDER = '+15005550006';
const RETRY = { baseMs: 50, capMs: 2000, maxAttempts: 8 };
/** Limits raised out of the way where a case is not about limits. */
const FAST: LimitSettings = { ratePerSecond: 100_000, burst: 100_000, concurrency: 16 };
const INCIDENT_LINK = 'https://trust.candor.test/incidents/1';

const whsec = () => `whsec_${randomBytes(24).toString('base64')}`;

let resend: ResendFake;
let twilio: TwilioFake;
let slack: SlackFake;
/** four receivers sharing the fan-out's webhooks, each with its own signing secret */
let receivers: { receiver: WebhookReceiver; secret: string }[];
/** an endpoint that says "gone" (410) and one that always fails (500) */
let gone: WebhookReceiver;
let broken: WebhookReceiver;
let allowHosts: string[];
/** Microsoft Teams Workflows and Discord webhooks */
let chats: ChatWebhooksFake;

beforeAll(async () => {
  resend = await startFakeResend();
  twilio = await startFakeTwilio({ statusCallbacks: false });
  slack = await startFakeSlack();
  receivers = await Promise.all(
    [0, 1, 2, 3].map(async () => {
      const secret = whsec();
      return { receiver: await startWebhookReceiver({ secret }), secret };
    }),
  );
  gone = await startWebhookReceiver({ status: 410 });
  broken = await startWebhookReceiver({ status: 500 });
  chats = await startChatWebhooksFake();
  allowHosts = [...receivers.map((r) => r.receiver.url), gone.url, broken.url, chats.url].map((u) => new URL(u).host);
});

afterAll(async () => {
  await Promise.all([resend, twilio, slack, gone, broken, chats, ...receivers.map((r) => r.receiver)].map((f) => f?.close()));
});

beforeEach(() => {
  for (const fake of [resend, twilio, slack, gone, broken, chats, ...receivers.map((r) => r.receiver)]) fake.reset();
});

// ---------------------------------------------------------------------------------------------
// what is sent, and how a case seeds and inspects either engine

const slackBlocks = (text: string) => [{ type: 'section' as const, text: { type: 'mrkdwn' as const, text } }];

/** A long update: the SMS must be cut to two segments and still end with the link. */
const SMS_BODY =
  'Elevated error rates on the EU API — requests to /v1/* may fail with 503 and retries succeed. ' +
  'Engineers are rolling back the 14:02 deploy; the next update follows within 30 minutes or sooner if the state changes.';

function incidentContent(status = 'investigating'): NotificationContent {
  const line = `API degraded: ${status}`;
  return {
    email: { subject: `[Incident] ${line}`, html: `<p>${line}. We will update this page.</p>`, text: `${line}. We will update this page.` },
    sms: { body: SMS_BODY, link: INCIDENT_LINK },
    slack: { text: line, blocks: slackBlocks(line), root: { text: `Incident: ${status}`, blocks: slackBlocks(`*Incident*: ${status}`) } },
    webhook: { type: 'incident.updated', data: { incident: 1, status } },
  };
}

/** One transaction of either engine, with the product's own code (outbox, recipients, stores) in it. */
function inTransaction<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.engine === 'sqlite' ? db.transaction((tx) => fn(tx)) : db.transaction((tx) => fn(tx));
}

function enqueue(
  db: Database,
  content: NotificationContent,
  audience: Audience = { kind: 'topic', topic: 'incidents' },
  threadKey?: string,
): Promise<Enqueued> {
  const input = { kind: 'incident.update', title: 'API degraded', threadKey: threadKey ?? null, content, audience };
  return inTransaction(db, (tx) => enqueueNotification(tx, input, new Date()));
}

/** Waits until no delivery is pending or sending. */
async function settle(db: Database, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await deliveryCountsOf(db);
    if (!counts.pending && !counts.sending) return;
    if (Date.now() > deadline) throw new Error(`deliveries still open after ${timeoutMs} ms: ${JSON.stringify(counts)}`);
    await sleep(20);
  }
}

/** The production mode: one loop per channel, until the outbox is empty, then a graceful stop. */
async function runToEnd(d: Dispatcher, db: Database, timeoutMs?: number): Promise<void> {
  d.start();
  try {
    await settle(db, timeoutMs);
  } finally {
    await d.stop();
  }
}

/** The deliveries of one notification, in the order they were made. */
function deliveriesOf(db: Database, notificationId: number) {
  return readRows(db, (q) => {
    const d = q.t.deliveries;
    return q.db
      .select({
        id: d.id,
        recipientId: d.recipientId,
        channel: d.channel,
        status: d.status,
        attempts: d.attempts,
        providerMessageId: d.providerMessageId,
        leaseOwner: d.leaseOwner,
        lastError: d.lastError,
      })
      .from(d)
      .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, notificationId)))
      .orderBy(asc(d.id));
  });
}

/** Every attempt recorded, in order. */
function attemptsOf(db: Database) {
  return readRows(db, (q) => {
    const a = q.t.deliveryAttempts;
    return q.db
      .select({ deliveryId: a.deliveryId, outcome: a.outcome, httpStatus: a.httpStatus, providerCode: a.providerCode })
      .from(a)
      .where(eq(a.trustCenterId, q.trustCenter))
      .orderBy(asc(a.id));
  });
}

async function recipientStatus(db: Database, id: number): Promise<{ status: string; suppressedReason: string | null } | undefined> {
  const [row] = await readRows(db, (q) => {
    const r = q.t.recipients;
    return q.db
      .select({ status: r.status, suppressedReason: r.suppressedReason })
      .from(r)
      .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, id)));
  });
  return row;
}

/** The Slack threads remembered: each root's ts and who still claims it. */
function slackThreadsOf(db: Database) {
  return readRows(db, (q) => {
    const t = q.t.slackThreads;
    return q.db
      .select({ recipientId: t.recipientId, threadKey: t.threadKey, ts: t.ts, claimedBy: t.claimedBy })
      .from(t)
      .where(eq(t.trustCenterId, q.trustCenter));
  });
}

/** How many times each key occurs, and which occur more than once. */
function tally<T>(items: readonly T[]): { counts: Map<T, number>; repeated: T[] } {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return { counts, repeated: [...counts].filter(([, n]) => n > 1).map(([k]) => k) };
}

const emailAddress = (i: number) => `person${i}@customer.example`;
const smsNumber = (i: number) => `+1415555${String(i).padStart(4, '0')}`;

// ---------------------------------------------------------------------------------------------
// the world of one case, on each engine

describe.each(enginesUnderTest())('notification engine against the provider fakes on $name', (engine) => {
  const opened: (() => Promise<void>)[] = [];

  /** A fresh database of the engine for one case, and `another()` handle on it as a second process would have. */
  async function freshDb(): Promise<{ db: Database; another: () => Database; analyze: () => Promise<void> }> {
    const { database, another, analyze, close } = await engine.open();
    opened.push(close);
    return { db: database, another, analyze };
  }

  afterEach(async () => {
    for (const close of opened.splice(0)) await close();
  });

  type Limits = Partial<Record<ChannelName, LimitSettings>>;

  function liveChannels(db: Database, limits: Limits = {}): Record<ChannelName, Channel> {
    return {
      email: new ResendEmailChannel({ apiKey: resend.apiKey, from: FROM, baseUrl: resend.url, limits: limits.email ?? FAST }),
      sms: new TwilioSmsChannel({
        accountSid: twilio.accountSid,
        authToken: twilio.authToken,
        from: SENDER,
        apiBaseUrl: twilio.url,
        statusCallbackUrl: new URL('webhooks/twilio/status', PUBLIC_URL).href,
        limits: limits.sms ?? FAST,
      }),
      slack: new SlackChannel(db, { apiUrl: slack.url, limits: limits.slack ?? FAST }),
      webhook: new WebhookChannel({ allowHosts }, limits.webhook ?? FAST),
      teams: new TeamsChannel(allowHosts, limits.teams ?? FAST),
      discord: new DiscordChannel(allowHosts, limits.discord ?? FAST),
    };
  }

  function dispatcher(db: Database, options: Partial<DispatcherOptions> & { limits?: Limits } = {}): Dispatcher {
    const { limits, ...rest } = options;
    return new Dispatcher({
      database: db,
      channels: liveChannels(db, limits),
      keys: TEST_KEYS,
      publicUrl: PUBLIC_URL,
      retry: RETRY,
      pollMs: 20,
      ...rest,
    });
  }

  it('fans out to 10,000 recipients on four channels: each gets exactly one message per channel', async () => {
    const { db, analyze } = await freshDb();
    const emailIds = await addSubscribersTo(db, TEST_KEYS, { count: 7000, channel: 'email', address: emailAddress });
    await addSubscribersTo(db, TEST_KEYS, { count: 1000, channel: 'sms', address: smsNumber });
    // Recipients are unique per (channel, address), so each is its own Slack channel; 50 workspaces (tokens).
    const slackChannel = (i: number) => `C${String(i).padStart(9, '0')}`;
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1000,
      channel: 'slack',
      address: slackChannel,
      secret: (i) => `xoxb-ws${i % 50}-token`,
    });
    const hookUrl = (i: number) => `${receivers[i % receivers.length]?.receiver.url}/hooks/${i % 7}/${i}`;
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1000,
      channel: 'webhook',
      address: hookUrl,
      secret: (i) => receivers[i % receivers.length]?.secret ?? null,
    });
    // 10,000 recipients written at once: the statistics a bulk fill needs before the first fan-out
    await analyze();

    const started = performance.now();
    const first = await enqueue(db, incidentContent(), undefined, 'incident:1');
    const enqueueMs = performance.now() - started;
    expect(first.deliveries).toBe(10_000);
    expect(first.byChannel).toEqual({ email: 7000, sms: 1000, slack: 1000, webhook: 1000 });
    expect(enqueueMs).toBeLessThan(5000);

    await runToEnd(dispatcher(db), db, 60_000);
    expect(await deliveryCountsOf(db, first.notificationId)).toEqual({ sent: 10_000 });
    // one attempt each, all of them successful
    const attempts = await attemptsOf(db);
    expect(attempts).toHaveLength(10_000);
    expect(attempts.every((a) => a.outcome === 'sent')).toBe(true);

    // Email: 70 batches of 100, one email per address, with one-click unsubscribe for that recipient.
    expect(resend.emails).toHaveLength(7000);
    expect(resend.requests.filter((r) => r.path === '/emails/batch')).toHaveLength(70);
    const byAddress = tally(resend.emails.flatMap((e) => e.to));
    expect(byAddress.repeated).toEqual([]);
    expect(byAddress.counts.size).toBe(7000);
    const idOf = new Map(emailIds.map((id, i) => [emailAddress(i), id]));
    for (const email of resend.emails) {
      const to = email.to[0] ?? '';
      expect(email.from).toBe(FROM);
      expect(email.subject).toBe('[Incident] API degraded: investigating');
      expect(email.text).toContain('We will update this page.');
      expect(email.html).toContain('<p>API degraded: investigating.');
      expect(email.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
      const unsubscribe = /^<https:\/\/trust\.candor\.test\/unsubscribe\/([^>]+)>$/.exec(email.headers['List-Unsubscribe'] ?? '');
      expect(unsubscribe, `List-Unsubscribe of ${to}`).not.toBeNull();
      expect(readRecipientToken(TEST_KEYS.secret, 'unsubscribe', unsubscribe?.[1] ?? '')).toBe(idOf.get(to));
      expect(email.text).toContain(`/unsubscribe/${unsubscribe?.[1]}`);
    }
    const emailDeliveries = (await deliveriesOf(db, first.notificationId)).filter((d) => d.channel === 'email');
    expect(new Set(emailDeliveries.map((d) => d.providerMessageId))).toEqual(new Set(resend.emails.map((e) => e.id)));

    // SMS: one per number, within two segments, ending with the incident link marked with its delivery (issue 18).
    expect(twilio.messages).toHaveLength(1000);
    expect(tally(twilio.messages.map((m) => m.to)).repeated).toEqual([]);
    const smsDeliveryOf = new Map(
      (await deliveriesOf(db, first.notificationId)).filter((d) => d.channel === 'sms').map((d) => [d.providerMessageId, d.id]),
    );
    for (const m of twilio.messages) {
      expect(m.from).toBe(SENDER);
      expect(m.numSegments).toBeLessThanOrEqual(2);
      expect(m.body.endsWith(`${INCIDENT_LINK}?d=${(smsDeliveryOf.get(m.sid) ?? 0).toString(36)}`), m.body).toBe(true);
      expect(m.body).toContain('...');
    }

    // Slack: one root per channel, no replies yet; each root remembered for the thread.
    expect(slack.messages).toHaveLength(1000);
    expect(tally(slack.messages.map((m) => m.channel)).repeated).toEqual([]);
    expect(slack.messages.every((m) => m.threadTs === undefined && m.text === 'API degraded: investigating')).toBe(true);
    expect(await slackThreadsOf(db)).toHaveLength(1000);

    // Webhooks: one per endpoint, each verifying with its endpoint's secret (standardwebhooks).
    const received = receivers.flatMap((r) => r.receiver.received);
    expect(received).toHaveLength(1000);
    for (const { receiver, secret } of receivers) {
      expect(receiver.received.every((w) => w.verified === true)).toBe(true);
      const verified = receiver.verified(secret);
      expect(verified).toHaveLength(receiver.received.length);
      for (const { payload } of verified) expect(payload).toMatchObject({ type: 'incident.updated', data: { incident: 1 } });
    }
    expect(tally(received.map((w) => w.headers['webhook-id'])).repeated).toEqual([]);
    expect(new Set(receivers.flatMap((r) => r.receiver.received.map((w) => `${r.receiver.url}${w.path}`)))).toEqual(
      new Set(Array.from({ length: 1000 }, (_, i) => hookUrl(i))),
    );

    // The next update of the same incident goes under each root, and each root is edited to the current state.
    const second = await enqueue(db, { slack: incidentContent('identified').slack }, undefined, 'incident:1');
    expect(second.byChannel).toEqual({ slack: 1000 });
    await runToEnd(dispatcher(db), db, 30_000);
    expect(await deliveryCountsOf(db, second.notificationId)).toEqual({ sent: 1000 });
    for (let i = 0; i < 1000; i += 1) {
      const threads = slack.threads(slackChannel(i));
      expect(threads).toHaveLength(1);
      const [thread] = threads;
      expect(thread?.replies.map((r) => r.text)).toEqual(['API degraded: identified']);
      expect(thread?.root.text).toBe('Incident: identified');
      expect(thread?.root.edits).toBe(1);
    }
    expect(slack.updates).toHaveLength(1000);
  }, 90_000);

  it('rides out a Resend outage: retries are recorded, then everything is sent once', async () => {
    const { db } = await freshDb();
    await addSubscribersTo(db, TEST_KEYS, { count: 500, channel: 'email', address: emailAddress });
    const n = await enqueue(db, { email: incidentContent().email });
    resend.outage(1000);
    await runToEnd(dispatcher(db), db);

    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 500 });
    expect(resend.requests.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    const attempts = await attemptsOf(db);
    const retries = attempts.filter((a) => a.outcome === 'retry');
    // the outage began before the first send: every delivery has a recorded 503 retry, then exactly one success
    expect(new Set(retries.map((a) => a.deliveryId)).size).toBe(500);
    expect(retries.every((a) => a.httpStatus === 503)).toBe(true);
    expect(attempts.filter((a) => a.outcome === 'sent')).toHaveLength(500);
    expect(resend.emails).toHaveLength(500);
    expect(resend.duplicates()).toEqual([]);
    expect(tally(resend.emails.flatMap((e) => e.to)).counts.size).toBe(500);
  });

  it('obeys Retry-After: no request reaches Resend or Twilio before the 429 allows', async () => {
    const { db } = await freshDb();
    await addSubscribersTo(db, TEST_KEYS, { count: 400, channel: 'email', address: emailAddress });
    await addSubscribersTo(db, TEST_KEYS, { count: 6, channel: 'sms', address: smsNumber });
    const n = await enqueue(db, { email: incidentContent().email, sms: incidentContent().sms });
    const retryAfterSeconds = 1;
    resend.rateLimitStorm(1200, retryAfterSeconds);
    twilio.rateLimitStorm(1200, retryAfterSeconds);
    // Fast tokens but one request at a time, so every later request was decided after the 429 came back.
    const oneAtATime = { ratePerSecond: 1000, burst: 1000, concurrency: 1 };
    await runToEnd(dispatcher(db, { limits: { email: oneAtATime, sms: oneAtATime } }), db);

    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 406 });
    for (const [name, requests] of [
      ['resend', resend.requests],
      ['twilio', twilio.requests],
    ] as const) {
      const limited = requests.filter((r) => r.status === 429);
      expect(limited.length, `${name} answered 429`).toBeGreaterThan(0);
      const early: string[] = [];
      for (const q of limited) {
        const allowedAt = (q.respondedAt ?? q.time) + retryAfterSeconds * 1000;
        for (const r of requests) {
          if (r.seq > q.seq && r.time < allowedAt) early.push(`#${r.seq} at +${r.time - q.time} ms after 429 #${q.seq}`);
        }
      }
      expect(early, `${name}: requests sent before Retry-After elapsed`).toEqual([]);
    }
    const limitedAttempts = (await attemptsOf(db)).filter((a) => a.httpStatus === 429);
    expect(limitedAttempts.length).toBeGreaterThan(0);
    expect(limitedAttempts.every((a) => a.outcome === 'retry')).toBe(true);
    expect(resend.duplicates()).toEqual([]);
    expect(tally(twilio.messages.map((m) => m.to)).repeated).toEqual([]);
  });

  it('reuses the idempotency key when an answer is lost: the batch is not emailed twice', async () => {
    const { db } = await freshDb();
    await addSubscribersTo(db, TEST_KEYS, { count: 250, channel: 'email', address: emailAddress });
    const n = await enqueue(db, { email: incidentContent().email });
    resend.loseResponseNext(1);
    await runToEnd(dispatcher(db), db);

    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 250 });
    const lost = resend.requests.filter((r) => r.outcome === 'fault:lost-response');
    expect(lost).toHaveLength(1);
    const key = lost[0]?.headers['idempotency-key'];
    expect(key).toMatch(/^candor-email-/);
    const replays = resend.requests.filter((r) => r.outcome === 'idempotent-replay');
    expect(replays.map((r) => r.headers['idempotency-key'])).toEqual([key]);
    // one email per address, and the deliveries carry the ids of the emails the lost request sent
    expect(resend.emails).toHaveLength(250);
    expect(tally(resend.emails.flatMap((e) => e.to)).repeated).toEqual([]);
    const lostBatch = resend.emails.filter((e) => e.idempotencyKey === key);
    expect(lostBatch.length).toBeGreaterThan(0);
    const retried = new Set((await attemptsOf(db)).filter((a) => a.outcome === 'retry').map((a) => a.deliveryId));
    expect(retried.size).toBe(lostBatch.length);
    const messageIds = new Set((await deliveriesOf(db, n.notificationId)).filter((d) => retried.has(d.id)).map((d) => d.providerMessageId));
    expect(messageIds).toEqual(new Set(lostBatch.map((e) => e.id)));
  });

  it('two updates of one thread claimed in the same round: the second waits for the root and goes into its thread', async () => {
    const { db } = await freshDb();
    await addSubscribersTo(db, TEST_KEYS, {
      count: 3,
      channel: 'slack',
      address: (i) => `C0THREAD${i}`,
      secret: () => 'xoxb-one-workspace',
    });
    await enqueue(db, { slack: incidentContent('investigating').slack }, undefined, 'incident:77');
    await enqueue(db, { slack: incidentContent('identified').slack }, undefined, 'incident:77');
    await dispatcher(db).drain();
    const byChannel = new Map<string, typeof slack.messages>();
    for (const m of slack.messages) byChannel.set(m.channel, [...(byChannel.get(m.channel) ?? []), m]);
    expect(byChannel.size).toBe(3);
    for (const [, messages] of byChannel) {
      expect(messages).toHaveLength(2);
      expect(messages[0]?.threadTs).toBeUndefined();
      expect(messages[1]?.threadTs).toBe(messages[0]?.ts);
    }
  });

  it('two dispatchers racing on the first two updates of a thread: one root, the second message in its thread', async () => {
    // on PostgreSQL, B is another process's pool: its claims race A's for real
    const { db, another } = await freshDb();
    const other = another();
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'slack', address: () => 'C0RACE', secret: () => 'xoxb-race' });
    // A posts the root slowly; B claims the second update while A's root is on its way
    slack.latency(400);
    const a = dispatcher(db, { owner: 'dispatcher-a' });
    const b = dispatcher(other, { owner: 'dispatcher-b' });
    const first = await enqueue(db, { slack: incidentContent('investigating').slack }, undefined, 'incident:90');
    const aRound = a.round('slack');
    const deadline = Date.now() + 5000;
    while (slack.requests.length === 0 && Date.now() < deadline) await sleep(5);
    const second = await enqueue(other, { slack: incidentContent('identified').slack }, undefined, 'incident:90');
    expect(await b.round('slack')).toBe(1);
    // B found the root claimed and not yet posted: its delivery waits, unattempted, instead of posting a second root
    const [waiting] = await deliveriesOf(db, second.notificationId);
    expect(waiting?.status).toBe('pending');
    expect(waiting?.attempts).toBe(0);
    await aRound;
    slack.latency(0);
    await runToEnd(b, db);

    expect(await deliveryCountsOf(db, first.notificationId)).toEqual({ sent: 1 });
    expect(await deliveryCountsOf(db, second.notificationId)).toEqual({ sent: 1 });
    expect(slack.messages).toHaveLength(2);
    const channel = slack.messages[0]?.channel ?? '';
    const threads = slack.threads(channel);
    expect(threads).toHaveLength(1);
    expect(threads[0]?.root.text).toBe('Incident: identified');
    expect(threads[0]?.replies.map((m) => m.text)).toEqual(['API degraded: identified']);
    // the wait was no attempt: one recorded attempt, sent
    const secondId = (await deliveriesOf(db, second.notificationId))[0]?.id;
    expect((await attemptsOf(db)).filter((x) => x.deliveryId === secondId)).toEqual([
      { deliveryId: secondId, outcome: 'sent', httpStatus: 200, providerCode: null },
    ]);
  });

  it('two dispatchers sending updates of the same threads at once: one root per channel, the rest in its thread', async () => {
    // On PostgreSQL B is another process's pool. Each claims sixteen deliveries a round (eight sends at a
    // time), one update's worth: A the first update to the sixteen channels, B the second to the same
    // sixteen, and both look for each thread's root at once, so both may find none and race to claim it.
    const { db, another } = await freshDb();
    const channels = 16;
    const statuses = ['investigating', 'identified', 'monitoring', 'resolved'];
    await addSubscribersTo(db, TEST_KEYS, {
      count: channels,
      channel: 'slack',
      address: (i) => `C0BOTH${String(i).padStart(4, '0')}`,
      secret: () => 'xoxb-both',
    });
    const updates = [];
    for (const status of statuses) updates.push(await enqueue(db, { slack: incidentContent(status).slack }, undefined, 'incident:92'));
    slack.latency(10);
    const limits: Limits = { slack: { ...FAST, concurrency: 8 } };
    const a = dispatcher(db, { owner: 'dispatcher-a', limits });
    const b = dispatcher(another(), { owner: 'dispatcher-b', limits });
    // a delivery that finds the root claimed by the other goes back to the queue for a second: drain again
    const drainAll = async (d: Dispatcher) => {
      let sent = 0;
      for (;;) {
        sent += await d.drain();
        const open = await deliveryCountsOf(db);
        if (!open.pending && !open.sending) return sent;
        await sleep(50);
      }
    };
    const [byA, byB] = await Promise.all([drainAll(a), drainAll(b)]);

    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
    for (const update of updates) expect(await deliveryCountsOf(db, update.notificationId)).toEqual({ sent: channels });
    expect(slack.messages).toHaveLength(statuses.length * channels);
    const byChannel = new Map<string, typeof slack.messages>();
    for (const m of slack.messages) byChannel.set(m.channel, [...(byChannel.get(m.channel) ?? []), m]);
    expect(byChannel.size).toBe(channels);
    for (const [channel, messages] of byChannel) {
      const roots = messages.filter((m) => m.threadTs === undefined);
      expect(roots, `roots posted in ${channel}`).toHaveLength(1);
      expect(messages.filter((m) => m.threadTs === roots[0]?.ts)).toHaveLength(statuses.length - 1);
      expect(slack.threads(channel)).toHaveLength(1);
    }
    // every root recorded once, no claim left behind
    const threads = await slackThreadsOf(db);
    expect(threads).toHaveLength(channels);
    expect(threads.every((t) => t.ts !== null && t.claimedBy === null)).toBe(true);
    expect(new Set(threads.map((t) => t.ts))).toEqual(
      new Set([...byChannel.values()].map((messages) => messages.find((m) => m.threadTs === undefined)?.ts)),
    );
  });

  it('a root claimed by a dispatcher that crashed is taken over once the claim expires', async () => {
    const { db } = await freshDb();
    const [recipient] = await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      address: () => 'C0CRASH',
      secret: () => 'xoxb-crash',
    });
    // a dispatcher claimed the root and died before posting it
    expect(
      await inTransaction(db, (tx) => claimThread(tx, recipient ?? 0, 'incident:91', 'slack-crashed', new Date(Date.now() + 60_000))),
    ).toBe(true);
    const n = await enqueue(db, { slack: incidentContent('investigating').slack }, undefined, 'incident:91');
    const d = dispatcher(db);
    await d.round('slack');
    expect(slack.messages).toHaveLength(0);
    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ pending: 1 });
    // the claim expires: the next try takes it over and posts the root, and later updates go in its thread
    await writeRows(db, async (q) => {
      await q.db
        .update(q.t.slackThreads)
        .set({ claimExpiresAt: new Date(Date.now() - 1) })
        .where(eq(q.t.slackThreads.trustCenterId, q.trustCenter));
      await q.db.update(q.t.deliveries).set({ nextAttemptAt: new Date() }).where(eq(q.t.deliveries.trustCenterId, q.trustCenter));
    });
    await d.drain();
    await enqueue(db, { slack: incidentContent('resolved').slack }, undefined, 'incident:91');
    await d.drain();

    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 1 });
    expect(slack.messages).toHaveLength(2);
    expect(slack.messages[0]?.threadTs).toBeUndefined();
    expect(slack.messages[1]?.threadTs).toBe(slack.messages[0]?.ts);
    expect((await slackThreadsOf(db)).map(({ ts, claimedBy }) => ({ ts, claimedBy }))).toEqual([
      { ts: slack.messages[0]?.ts, claimedBy: null },
    ]);
  });

  it('a lost answer, then an unsubscribe before the retry: the changed batch is recognised as sent, not failed or sent twice', async () => {
    const { db } = await freshDb();
    const ids = await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'email', address: emailAddress });
    const n = await enqueue(db, { email: incidentContent().email });
    resend.loseResponseNext(1);
    const d = dispatcher(db);
    await d.round('email');
    expect(resend.emails).toHaveLength(3);
    // one of the three leaves before the retry: the resent request no longer matches the key's
    await writeRows(db, async (q) => {
      await q.db.delete(q.t.recipients).where(and(eq(q.t.recipients.trustCenterId, q.trustCenter), eq(q.t.recipients.id, ids[0] ?? 0)));
      const d = q.t.deliveries;
      await q.db
        .update(d)
        .set({ nextAttemptAt: new Date(0) })
        .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.status, 'pending')));
    });
    await d.drain();
    expect(resend.emails).toHaveLength(3);
    expect(resend.requests.filter((r) => r.status === 409)).toHaveLength(1);
    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 2, suppressed: 1 });
  });

  it('suppresses STOPped numbers, gone webhooks and missing Slack channels, and later fan-outs skip them', async () => {
    const { db } = await freshDb();
    const sms = await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'sms', address: smsNumber });
    const hooks = await addSubscribersTo(db, TEST_KEYS, {
      count: 2,
      channel: 'webhook',
      address: (i) => (i === 0 ? `${gone.url}/hooks/gone` : `${receivers[0]?.receiver.url}/hooks/alive`),
      secret: (i) => (i === 0 ? whsec() : (receivers[0]?.secret ?? null)),
    });
    const slackIds = await addSubscribersTo(db, TEST_KEYS, {
      count: 2,
      channel: 'slack',
      address: (i) => (i === 0 ? 'CGONE00001' : 'CALIVE0001'),
      secret: () => 'xoxb-ws1-token',
    });
    const emails = await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: emailAddress });
    twilio.unsubscribe(smsNumber(0));
    slack.setChannelError('CGONE00001', 'channel_not_found');
    const first = await enqueue(db, incidentContent());
    expect(first.deliveries).toBe(9);
    // suppressed between fan-out and sending (a bounce webhook, an unsubscribe click): nothing goes out
    await inTransaction(db, (tx) => suppressRecipient(tx, emails[0] ?? 0, 'bounced', new Date()));
    await runToEnd(dispatcher(db), db);

    const byRecipient = new Map((await deliveriesOf(db, first.notificationId)).map((d) => [d.recipientId, d]));
    const suppressedIds = [sms[0], hooks[0], slackIds[0]].map((id) => id ?? 0);
    for (const id of suppressedIds) {
      expect(byRecipient.get(id)?.status, `delivery to recipient ${id}`).toBe('suppressed');
      expect((await recipientStatus(db, id))?.status).toBe('suppressed');
    }
    expect(byRecipient.get(emails[0] ?? 0)).toMatchObject({ status: 'suppressed', lastError: 'recipient suppressed' });
    expect(resend.emails.map((e) => e.to[0])).toEqual([emailAddress(1)]);
    const codes = new Map((await attemptsOf(db)).map((a) => [a.deliveryId, a]));
    expect(codes.get(byRecipient.get(sms[0] ?? 0)?.id ?? 0)).toMatchObject({ outcome: 'suppressed', providerCode: '21610' });
    expect(codes.get(byRecipient.get(hooks[0] ?? 0)?.id ?? 0)).toMatchObject({ outcome: 'suppressed', httpStatus: 410 });
    expect(codes.get(byRecipient.get(slackIds[0] ?? 0)?.id ?? 0)).toMatchObject({
      outcome: 'suppressed',
      providerCode: 'channel_not_found',
    });
    expect(await deliveryCountsOf(db, first.notificationId)).toEqual({ sent: 5, suppressed: 4 });

    // The next fan-out does not include them, even after the provider would accept again.
    twilio.resubscribe(smsNumber(0));
    const second = await enqueue(db, incidentContent('resolved'));
    expect(second.byChannel).toEqual({ email: 1, sms: 2, slack: 1, webhook: 1 });
    const recipientsOfSecond = new Set((await deliveriesOf(db, second.notificationId)).map((d) => d.recipientId));
    for (const id of [...suppressedIds, emails[0] ?? 0]) expect(recipientsOfSecond.has(id)).toBe(false);
    const requestsBefore = twilio.messages.length;
    await runToEnd(dispatcher(db), db);
    expect(await deliveryCountsOf(db, second.notificationId)).toEqual({ sent: 5 });
    expect(twilio.messagesTo(smsNumber(0))).toHaveLength(0);
    expect(twilio.messages.length - requestsBefore).toBe(2);
    expect(gone.received).toHaveLength(1);
  });

  it("Teams and Discord: one message per channel in each one's shape, Retry-After obeyed, deleted webhooks suppressed and skipped", async () => {
    const { db } = await freshDb();
    const teams = await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'teams', address: (i) => chats.teamsUrl(`flow${i}`) });
    const discord = await addSubscribersTo(db, TEST_KEYS, {
      count: 3,
      channel: 'discord',
      address: (i) => chats.discordUrl(String(900 + i)),
    });
    chats.remove(chats.teamsUrl('flow0'));
    chats.remove(chats.discordUrl('900'));
    const content = incidentContent();
    // the notification has Slack content and no Teams or Discord of its own: both are built from it
    const first = await enqueue(db, {
      slack: {
        ...content.slack,
        text: 'API degraded &amp; slow',
        blocks: slackBlocks('*API* is <https://trust.candor.test/incidents/1|degraded> &amp; slow'),
      } as NonNullable<NotificationContent['slack']>,
    });
    expect(first.byChannel).toEqual({ teams: 3, discord: 3 });
    const retryAfterSeconds = 1;
    chats.rateLimitStorm(600, retryAfterSeconds);
    const oneAtATime = { ratePerSecond: 1000, burst: 1000, concurrency: 1 };
    await runToEnd(dispatcher(db, { limits: { teams: oneAtATime, discord: oneAtATime } }), db);

    expect(await deliveryCountsOf(db, first.notificationId)).toEqual({ sent: 4, suppressed: 2 });
    for (const id of [teams[0], discord[0]]) expect((await recipientStatus(db, id ?? 0))?.status).toBe('suppressed');
    // exactly one accepted post per live webhook, none before Retry-After allowed after a 429
    expect(tally(chats.posts.map((p) => p.path)).repeated).toEqual([]);
    expect(chats.posts.map((p) => p.path).sort()).toEqual(
      [chats.teamsUrl('flow1'), chats.teamsUrl('flow2'), chats.discordUrl('901'), chats.discordUrl('902')]
        .map((u) => new URL(u).pathname)
        .sort(),
    );
    const requests = chats.requests;
    const limited = requests.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    for (const q of limited) {
      const allowedAt = (q.respondedAt ?? q.time) + retryAfterSeconds * 1000;
      expect(requests.filter((r) => r.seq > q.seq && r.time < allowedAt && r.path === q.path)).toEqual([]);
    }
    // Teams: an Adaptive Card whose text and button carry the message; Discord: an embed with no pings allowed
    const card = chats.posts.find((p) => p.kind === 'teams')?.payload as {
      attachments: { content: { body: { text: string }[]; actions?: { url: string }[] } }[];
    };
    expect(card.attachments[0]?.content.body.map((b) => b.text).join('\n')).toContain(
      '**API** is [degraded](https://trust.candor.test/incidents/1) & slow',
    );
    expect(card.attachments[0]?.content.actions?.[0]?.url).toBe('https://trust.candor.test/incidents/1');
    const embedPost = chats.posts.find((p) => p.kind === 'discord');
    expect(embedPost?.query.wait).toBe('true');
    expect(embedPost?.payload).toMatchObject({
      allowed_mentions: { parse: [] },
      embeds: [{ title: 'API degraded & slow', url: 'https://trust.candor.test/incidents/1' }],
    });
    // Discord's message id is kept as the provider's id; Teams gives none
    const sent = (await deliveriesOf(db, first.notificationId)).filter((d) => d.status === 'sent');
    expect(sent.filter((d) => d.channel === 'discord').every((d) => /^\d{19}$/.test(d.providerMessageId ?? ''))).toBe(true);
    const codes = (await attemptsOf(db)).filter((a) => a.outcome === 'suppressed');
    expect(codes.map((a) => a.httpStatus)).toEqual([404, 404]);

    // the next fan-out skips the deleted webhooks
    const second = await enqueue(db, { slack: content.slack });
    expect(second.byChannel).toEqual({ teams: 2, discord: 2 });
  });

  it('fails an invalid number after one attempt, and a broken endpoint after the maximum attempts', async () => {
    const { db } = await freshDb();
    const [invalid] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '555-not-a-number' });
    const [endpoint] = await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'webhook',
      address: () => `${broken.url}/hooks/broken`,
      secret: () => whsec(),
    });
    const n = await enqueue(db, { sms: incidentContent().sms, webhook: incidentContent().webhook });
    await runToEnd(dispatcher(db, { retry: { baseMs: 20, capMs: 200, maxAttempts: 3 } }), db);

    const byRecipient = new Map((await deliveriesOf(db, n.notificationId)).map((d) => [d.recipientId, d]));
    const sms = byRecipient.get(invalid ?? 0);
    expect(sms).toMatchObject({ status: 'failed', attempts: 1 });
    const hook = byRecipient.get(endpoint ?? 0);
    expect(hook).toMatchObject({ status: 'failed', attempts: 3, lastError: 'endpoint answered 500' });
    const attempts = await attemptsOf(db);
    expect(attempts.filter((a) => a.deliveryId === sms?.id)).toEqual([
      { deliveryId: sms?.id, outcome: 'failed', httpStatus: 400, providerCode: '21211' },
    ]);
    const hookAttempts = attempts.filter((a) => a.deliveryId === hook?.id);
    expect(hookAttempts).toHaveLength(3);
    expect(hookAttempts.every((a) => a.outcome === 'retry' && a.httpStatus === 500)).toBe(true);
    // the receiver saw three tries of one message: same webhook-id each time
    expect(broken.received).toHaveLength(3);
    expect(new Set(broken.received.map((w) => w.headers['webhook-id'])).size).toBe(1);
    // failed recipients stay active: a failure is not a suppression
    expect((await recipientStatus(db, invalid ?? 0))?.status).toBe('active');
    expect((await recipientStatus(db, endpoint ?? 0))?.status).toBe('active');
  });

  it('two dispatchers on one database never send a delivery twice', async () => {
    const { db, another } = await freshDb();
    await addSubscribersTo(db, TEST_KEYS, { count: 3000, channel: 'email', address: emailAddress });
    await addSubscribersTo(db, TEST_KEYS, { count: 300, channel: 'sms', address: smsNumber });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 300,
      channel: 'webhook',
      address: (i) => `${receivers[i % 2]?.receiver.url}/hooks/${i}`,
      secret: (i) => receivers[i % 2]?.secret ?? null,
    });
    const n = await enqueue(db, { email: incidentContent().email, sms: incidentContent().sms, webhook: incidentContent().webhook });
    resend.latency(15);
    twilio.latency(2);
    // Two dispatchers, as two processes would have: on PostgreSQL each on a pool of its own, their claims
    // racing in concurrent transactions; on SQLite on one handle (`another()` says why), interleaving
    // at every await.
    const other = another();
    const limits: Limits = { email: { ...FAST, concurrency: 2 }, sms: { ...FAST, concurrency: 4 }, webhook: { ...FAST, concurrency: 4 } };
    const a = dispatcher(db, { owner: 'dispatcher-a', limits });
    const b = dispatcher(other, { owner: 'dispatcher-b', limits });
    const [byA, byB] = await Promise.all([a.drain(), b.drain()]);

    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 3600 });
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
    expect(byA + byB).toBe(3600);
    // exactly one attempt per delivery, one message per recipient at each provider
    const attempts = await attemptsOf(db);
    expect(attempts).toHaveLength(3600);
    expect(tally(attempts.map((x) => x.deliveryId)).repeated).toEqual([]);
    expect(resend.emails).toHaveLength(3000);
    expect(tally(resend.emails.flatMap((e) => e.to)).repeated).toEqual([]);
    expect(resend.requests.filter((r) => r.outcome === 'idempotent-replay')).toEqual([]);
    expect(twilio.messages).toHaveLength(300);
    expect(tally(twilio.messages.map((m) => m.to)).repeated).toEqual([]);
    const hooks = receivers.flatMap((r) => r.receiver.received);
    expect(hooks).toHaveLength(300);
    expect(tally(hooks.map((w) => w.headers['webhook-id'])).repeated).toEqual([]);
  });

  it('stops gracefully: sends in flight finish and are recorded, unstarted claims are handed back', async () => {
    const { db } = await freshDb();
    await addSubscribersTo(db, TEST_KEYS, { count: 2000, channel: 'email', address: emailAddress });
    const n = await enqueue(db, { email: incidentContent().email });
    // long enough that the test sees both requests in flight even on a loaded machine
    resend.latency(400);
    const d = dispatcher(db, { owner: 'dispatcher-stopping', limits: { email: { ...FAST, concurrency: 2 } } });
    d.start();
    // both slots busy: two batches have reached Resend and wait for their answers
    const deadline = Date.now() + 10_000;
    while (resend.requests.length < 2) {
      if (Date.now() > deadline) throw new Error('no request reached the fake');
      await sleep(2);
    }
    const inFlight = resend.requests.length;
    expect(resend.requests.every((r: RecordedRequest) => r.status === 0)).toBe(true);
    await d.stop();

    // nothing new was started after stop(); what was in flight finished and was recorded
    expect(resend.requests).toHaveLength(inFlight);
    expect(resend.requests.every((r) => r.status === 200)).toBe(true);
    const counts = await deliveryCountsOf(db, n.notificationId);
    expect(counts.sent).toBe(resend.emails.length);
    expect(counts.sent).toBe(inFlight * 100);
    expect(counts.sending).toBeUndefined();
    const rows = await deliveriesOf(db, n.notificationId);
    expect(rows.filter((r) => r.leaseOwner === 'dispatcher-stopping')).toEqual([]);
    // the claims that never reached the provider are back in the queue, their attempt not counted
    expect(rows.filter((r) => r.status === 'pending').every((r) => r.attempts === 0)).toBe(true);

    // and another dispatcher finishes the job without sending anything twice
    resend.latency(0);
    await runToEnd(dispatcher(db), db);
    expect(await deliveryCountsOf(db, n.notificationId)).toEqual({ sent: 2000 });
    expect(resend.emails).toHaveLength(2000);
    expect(resend.duplicates()).toEqual([]);
  });
});
