/**
 * Slack without an idempotency key, exactly once: every message carries metadata naming its delivery;
 * a send whose answer was lost says it may have sent, and `reconcile` finds the message in the
 * channel's history (or its thread's replies) instead of posting it again, waits out Slack's listing
 * lag before it answers `absent`, and sends again when it cannot look. Through @slack/web-api against
 * the loopback Slack fake, on each engine (the thread roots live in the database).
 */
import { createServer } from 'node:net';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { DELIVERY_EVENT_TYPE, ROOT_CLAIM_MS, SlackChannel, type SlackSettings } from '../../src/core/notify/channels/slack.ts';
import type { SendJob, SendResult } from '../../src/core/notify/types.ts';
import { ManualClock } from '../fakes/common.ts';
import { type SlackFake, startFakeSlack } from '../fakes/slack.ts';
import { readRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { enginesUnderTest } from '../helpers/postgres.ts';

const SETTLE_MS = 120_000;
const POLL_MS = 30_000;
/** Slack's listing lag in the fake */
const LAG_MS = 5_000;
const CHANNEL = 'C0RECONCL1';

let slack: SlackFake;
const clock = new ManualClock();

beforeAll(async () => {
  slack = await startFakeSlack({ clock });
});
afterAll(() => slack.close());
beforeEach(() => {
  slack.reset();
  slack.setListingDelay(LAG_MS);
});

const blocks = (text: string) => [{ type: 'section' as const, text: { type: 'mrkdwn' as const, text } }];

describe.each(enginesUnderTest())('Slack reconciliation against the fake on $name', (engine) => {
  const opened: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of opened.splice(0)) await close();
  });

  /** A database with one Slack installation (a channel id and its bot token), and a channel on it. */
  async function world(settings: Partial<SlackSettings> = {}) {
    const { database, close } = await engine.open();
    opened.push(close);
    const [recipientId] = await addSubscribersTo(database, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      address: () => CHANNEL,
      secret: () => slack.botToken,
    });
    if (recipientId === undefined) throw new Error('no recipient');
    const channel = new SlackChannel(database, {
      apiUrl: slack.url,
      now: () => clock.now(),
      reconcileSettleMs: SETTLE_MS,
      reconcilePollMs: POLL_MS,
      ...settings,
    });
    let nextId = 1;
    const job = (overrides: Partial<SendJob> = {}): SendJob => {
      const id = nextId++;
      return {
        deliveryId: 9000 + id,
        notificationId: id,
        recipientId,
        address: CHANNEL,
        secret: slack.botToken,
        content: {
          slack: { text: `update ${id}`, blocks: blocks(`update ${id}`), root: { text: 'Incident: open', blocks: blocks('*open*') } },
        },
        threadKey: null,
        batchKey: null,
        attempt: 1,
        unknownSince: null,
        links: { unsubscribe: null, manage: null },
        ...overrides,
      };
    };
    const sendOne = async (j: SendJob): Promise<SendResult> => {
      const [result] = await channel.send([j]);
      if (!result) throw new Error('no result');
      return result;
    };
    return { database, channel, job, sendOne, recipientId };
  }

  const threadRoot = (database: Database, recipientId: number) =>
    readRows(database, (q) =>
      q.db
        .select({ ts: q.t.slackThreads.ts, claimedBy: q.t.slackThreads.claimedBy })
        .from(q.t.slackThreads)
        .where(eq(q.t.slackThreads.recipientId, recipientId)),
    );

  it('every message, thread root and reply, carries metadata naming its delivery', async () => {
    const { job, sendOne } = await world();
    const plain = job();
    const root = job({ threadKey: 'incident:1' });
    const reply = job({ threadKey: 'incident:1' });
    for (const j of [plain, root, reply]) expect((await sendOne(j)).outcome).toBe('sent');
    expect(slack.messages.map((m) => m.metadata)).toEqual(
      [plain, root, reply].map((j) => ({ event_type: DELIVERY_EVENT_TYPE, event_payload: { delivery_id: j.deliveryId } })),
    );
    expect(slack.threads(CHANNEL)).toHaveLength(2);
  });

  it('a lost answer: mayHaveSent; unknown while the listing lags, then found with the same ts and nothing posted again', async () => {
    const { channel, job, sendOne } = await world();
    const lost = job();
    const since = new Date(clock.now());
    slack.loseResponseNext(1);
    const result = await sendOne(lost);
    expect(result).toMatchObject({ outcome: 'retry', mayHaveSent: true });
    expect(slack.messages).toHaveLength(1);
    const posted = slack.messages[0]?.ts;

    const retried = { ...lost, attempt: 2, unknownSince: since };
    const early = await channel.reconcile(retried);
    expect(early).toMatchObject({ outcome: 'unknown', retryAfterMs: POLL_MS });
    clock.advance(LAG_MS);
    const later = await channel.reconcile(retried);
    expect(later).toMatchObject({ outcome: 'found', providerMessageId: posted });
    expect(slack.messages).toHaveLength(1);
    const looked = slack.requests.filter((r) => r.path === '/api/conversations.history');
    expect(looked).toHaveLength(2);
  });

  it('a send that never reached Slack: unknown until the settle time has passed, then absent', async () => {
    const { channel, job, sendOne } = await world();
    const never = { ...job(), attempt: 2, unknownSince: new Date(clock.now()) };
    // another delivery's message in the window, and not this one's
    expect((await sendOne(job())).outcome).toBe('sent');
    clock.advance(LAG_MS);
    expect(await channel.reconcile(never)).toMatchObject({ outcome: 'unknown', retryAfterMs: POLL_MS });
    clock.advance(SETTLE_MS - LAG_MS - 10_000);
    // inside the settle time, asked again no later than when it ends
    expect(await channel.reconcile(never)).toMatchObject({ outcome: 'unknown', retryAfterMs: 10_000 });
    clock.advance(10_000);
    const answer = await channel.reconcile(never);
    // asked, and Slack has none: absent, not unverified
    expect(answer).toMatchObject({ outcome: 'absent' });
    expect(answer).not.toHaveProperty('unverified');
    expect(slack.messages).toHaveLength(1);
  });

  it('a lost reply is found in its thread (conversations.replies) among other messages', async () => {
    const { channel, job, sendOne } = await world();
    const key = 'incident:7';
    expect((await sendOne(job({ threadKey: key }))).outcome).toBe('sent');
    const other = job({ threadKey: key });
    expect((await sendOne(other)).outcome).toBe('sent');
    const lost = job({ threadKey: key });
    const since = new Date(clock.now());
    slack.loseResponseNext(1);
    expect(await sendOne(lost)).toMatchObject({ outcome: 'retry', mayHaveSent: true });
    clock.advance(LAG_MS);
    const found = await channel.reconcile({ ...lost, attempt: 2, unknownSince: since });
    const [thread] = slack.threads(CHANNEL);
    expect(thread?.replies.map((m) => m.metadata?.event_payload.delivery_id)).toEqual([other.deliveryId, lost.deliveryId]);
    expect(found).toMatchObject({ outcome: 'found', providerMessageId: thread?.replies[1]?.ts });
    expect(slack.requests.filter((r) => r.path === '/api/conversations.replies')).toHaveLength(1);
    expect(slack.threads(CHANNEL)).toHaveLength(1);
  });

  it("a lost thread root is recorded as the thread's root when found: later messages reply to it, none starts a second thread", async () => {
    const { database, channel, job, sendOne, recipientId } = await world();
    const key = 'incident:9';
    const root = job({ threadKey: key });
    const since = new Date(clock.now());
    slack.loseResponseNext(1);
    expect(await sendOne(root)).toMatchObject({ outcome: 'retry', mayHaveSent: true });
    // while the root is uncertain, the next message of its thread waits rather than posting a root of its own
    const next = job({ threadKey: key });
    expect(await sendOne(next)).toMatchObject({ outcome: 'deferred' });
    clock.advance(LAG_MS);
    const found = await channel.reconcile({ ...root, attempt: 2, unknownSince: since });
    const rootTs = slack.messages[0]?.ts;
    expect(found).toMatchObject({ outcome: 'found', providerMessageId: rootTs });
    expect(await threadRoot(database, recipientId)).toEqual([{ ts: rootTs, claimedBy: null }]);
    expect(await sendOne(next)).toMatchObject({ outcome: 'sent' });
    const threads = slack.threads(CHANNEL);
    expect(threads).toHaveLength(1);
    expect(threads[0]?.replies.map((m) => m.metadata?.event_payload.delivery_id)).toEqual([next.deliveryId]);
  });

  it('a lost root whose claim another dispatcher took over: found at the top of the channel, not posted again into the new thread', async () => {
    const { database, channel, job, sendOne } = await world();
    const key = 'incident:11';
    const root = job({ threadKey: key });
    const since = new Date(clock.now());
    slack.loseResponseNext(1);
    expect(await sendOne(root)).toMatchObject({ outcome: 'retry', mayHaveSent: true });
    const lostTs = slack.messages[0]?.ts;
    // the claim expires; another dispatcher's next message of the thread takes it over and posts a root
    clock.advance(ROOT_CLAIM_MS + 1000);
    const other = new SlackChannel(database, { apiUrl: slack.url, now: () => clock.now() });
    const [taken] = await other.send([job({ threadKey: key })]);
    expect(taken?.outcome).toBe('sent');
    expect(slack.threads(CHANNEL)).toHaveLength(2);
    const found = await channel.reconcile({ ...root, attempt: 2, unknownSince: since });
    expect(found).toMatchObject({ outcome: 'found', providerMessageId: lostTs });
    expect(slack.messages).toHaveLength(2);
  });

  it('an installation that cannot read history (missing_scope): unknown, then after the settle time absent, and sent again', async () => {
    const { channel, job, sendOne } = await world();
    const lost = job();
    const since = new Date(clock.now());
    slack.loseResponseNext(1);
    await sendOne(lost);
    slack.setHistoryError('missing_scope');
    clock.advance(LAG_MS);
    expect(await channel.reconcile({ ...lost, unknownSince: since })).toMatchObject({
      outcome: 'unknown',
      error: 'Slack said missing_scope',
    });
    clock.advance(SETTLE_MS);
    expect(await channel.reconcile({ ...lost, unknownSince: since })).toMatchObject({ outcome: 'absent' });
  });

  it('a rate-limited lookup is unknown and asks again after Retry-After', async () => {
    const { channel, job } = await world();
    slack.setHistoryError('ratelimited');
    clock.advance(SETTLE_MS * 2);
    const answer = await channel.reconcile({ ...job(), unknownSince: new Date(clock.now() - SETTLE_MS) });
    expect(answer).toMatchObject({ outcome: 'unknown', retryAfterMs: 60_000 });
    // after the settle time, a lookup that fails is asked again at the poll interval, not at once
    slack.setHistoryError(undefined);
    slack.failNext(1, 500);
    const failed = await channel.reconcile({ ...job(), unknownSince: new Date(clock.now() - SETTLE_MS) });
    expect(failed).toMatchObject({ outcome: 'unknown', retryAfterMs: POLL_MS });
  });

  it('an incoming-webhook address cannot be looked up: absent at once, unverified (sent again, a known limit)', async () => {
    const { channel, job } = await world();
    const url = slack.registerIncomingWebhook('#status');
    const answer = await channel.reconcile({ ...job(), address: url, secret: null, unknownSince: new Date(clock.now()) });
    expect(answer).toMatchObject({ outcome: 'absent', unverified: expect.stringContaining('incoming webhook') });
    expect(slack.requests).toHaveLength(0);
  });

  it('mayHaveSent only when Slack may have acted: 5xx yes; rate limit, refusal and no connection no', async () => {
    const { database, job, sendOne } = await world();
    slack.failNext(1, 500);
    expect(await sendOne(job())).toMatchObject({ outcome: 'retry', httpStatus: 500, mayHaveSent: true });
    slack.failNext(1, 503);
    expect(await sendOne(job())).toMatchObject({ outcome: 'retry', httpStatus: 503, mayHaveSent: false });
    slack.rateLimitStorm(1000, 2);
    expect(await sendOne(job())).toMatchObject({ outcome: 'retry', httpStatus: 429, mayHaveSent: false });
    clock.advance(2000);
    slack.setChannelError(CHANNEL, 'not_in_channel');
    const refused = await sendOne(job());
    expect(refused.outcome).toBe('suppressed');
    expect(refused.mayHaveSent).toBeUndefined();
    slack.setChannelError(CHANNEL, undefined);
    // a port nothing listens on: the connection is refused before any request goes
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const nowhere = new SlackChannel(database, { apiUrl: `http://127.0.0.1:${port}` });
    const [unreached] = await nowhere.send([job()]);
    expect(unreached).toMatchObject({ outcome: 'retry', mayHaveSent: false });
    expect(slack.messages).toHaveLength(0);
  });
});

describe('the Slack fake lists history like Slack', () => {
  it('returns metadata only when include_all_metadata is asked, and pages with a cursor', async () => {
    const { WebClient } = await import('@slack/web-api');
    slack.setListingDelay(0);
    const web = new WebClient(slack.botToken, { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } });
    for (const n of [1, 2, 3]) {
      await web.chat.postMessage({ channel: CHANNEL, text: `m${n}`, metadata: { event_type: 'x', event_payload: { n } } });
      clock.advance(1000);
    }
    const bare = await web.conversations.history({ channel: CHANNEL });
    expect(bare.messages?.map((m) => m.metadata)).toEqual([undefined, undefined, undefined]);
    const first = await web.conversations.history({ channel: CHANNEL, include_all_metadata: true, limit: 2 });
    expect(first.messages?.map((m) => m.metadata?.event_payload)).toEqual([{ n: 3 }, { n: 2 }]);
    expect(first.has_more).toBe(true);
    const second = await web.conversations.history({
      channel: CHANNEL,
      include_all_metadata: true,
      limit: 2,
      cursor: first.response_metadata?.next_cursor ?? '',
    });
    expect(second.messages?.map((m) => m.text)).toEqual(['m1']);
    const oldest = slack.messages[1]?.ts ?? '';
    const after = await web.conversations.history({ channel: CHANNEL, oldest });
    expect(after.messages?.map((m) => m.text)).toEqual(['m3']);
    const from = await web.conversations.history({ channel: CHANNEL, oldest, inclusive: true });
    expect(from.messages?.map((m) => m.text)).toEqual(['m3', 'm2']);
  });
});
