/**
 * Subscribing, confirming, managing and leaving, against the built server
 * with the fake providers: what a customer does, checked where it lands.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, count, eq, isNull, like, max } from 'drizzle-orm';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { type ChatWebhooksFake, startChatWebhooksFake } from '../fakes/chat-webhooks.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { flipLast } from '../helpers/tamper.ts';

/** How many addresses of the channel are stored, and (when given) of that status. */
const recipientCount = (database: Database, channel: ChannelName, status?: 'active') =>
  readRows(database, async (q) => {
    const r = q.t.recipients;
    const [row] = await q.db
      .select({ n: count() })
      .from(r)
      .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.channel, channel), status ? eq(r.status, status) : undefined));
    return Number(row?.n);
  });

const deliveryCount = (database: Database) =>
  readRows(database, async (q) => {
    const [row] = await q.db.select({ n: count() }).from(q.t.deliveries).where(eq(q.t.deliveries.trustCenterId, q.trustCenter));
    return Number(row?.n);
  });

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let chats: ChatWebhooksFake;
  let db: Database;
  let publicUrl: string;

  beforeAll(async () => {
    resend = await startFakeResend();
    twilio = await startFakeTwilio();
    slack = await startFakeSlack({ clientId: 'candor-client', clientSecret: 'candor-secret' });
    receiver = await startWebhookReceiver();
    chats = await startChatWebhooksFake();
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: {
        ...providerEnv({ port, resend, twilio, slack }),
        SLACK_CLIENT_ID: 'candor-client',
        SLACK_CLIENT_SECRET: 'candor-secret',
        CANDOR_WEBHOOK_ALLOW_HOSTS: `${new URL(receiver.url).host},${new URL(slack.url).host},${chats.host}`,
      },
    });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
    await Promise.all([resend?.close(), twilio?.close(), slack?.close(), receiver?.close(), chats?.close()]);
  });

  const text = (html: string) =>
    html
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .replaceAll('&quot;', '"')
      .replaceAll('&#39;', "'")
      .replaceAll('&amp;', '&');
  async function until<T>(get: () => T | undefined | false, what: string, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const value = get();
      if (value) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const form = (fields: Record<string, string | string[]>) =>
    Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Array.isArray(v) ? v.join('\u0000') : v]));

  /** Posts the subscribe form with repeated fields (topics, components), as a browser would. */
  async function subscribe(
    client: ConsoleClient,
    fields: { channel: string; address?: string; topics?: string[]; components?: string[]; organisation?: string },
  ) {
    const body = new URLSearchParams();
    body.set('channel', fields.channel);
    if (fields.address !== undefined) body.set('address', fields.address);
    for (const t of fields.topics ?? ['incidents']) body.append('topics', t);
    for (const c of fields.components ?? []) body.append('components', c);
    if (fields.organisation) body.set('organisation', fields.organisation);
    const res = await fetch(`${server.url}/subscribe?_action=subscribe`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: server.url,
        'sec-fetch-site': 'same-origin',
        'x-test-client': client.base,
      },
      body: body.toString(),
    });
    return { status: res.status, location: res.headers.get('location'), html: await res.text(), headers: res.headers };
  }
  void form;

  describe('email double opt-in', () => {
    it('sends a confirmation link, which confirms on a click; the answer is the same for every address state', async () => {
      const client = new ConsoleClient(server.url);
      const first = await subscribe(client, {
        channel: 'email',
        address: 'Ada@Customer.example',
        topics: ['incidents', 'subprocessors'],
        components: ['public-api'],
        organisation: 'Customer Ltd',
      });
      expect(first.status).toBe(200);
      const answer = text(first.html).match(/Check your inbox[^.]*\.[^.]*\./)?.[0];
      expect(answer).toBeDefined();
      const email = await until(() => resend.emailsTo('ada@customer.example')[0], 'the confirmation email');
      expect(email.subject).toBe('Confirm your subscription to Lumenwork updates');
      const link = /(http:\/\/127\.0\.0\.1:\d+\/subscribe\/confirm\/[a-z0-9.]+)/.exec(email.text ?? '')?.[1] ?? '';
      expect(link).not.toBe('');
      // the address stays pending until the click; a GET alone (a mail scanner) confirms nothing
      const page = await client.get(new URL(link).pathname);
      expect(page.status).toBe(200);
      expect(await recipientCount(db, 'email', 'active')).toBe(0);
      const token = new URL(link).pathname.split('/').at(-1) ?? '';
      const confirmed = await client.post(`${new URL(link).pathname}?_action=confirmEmail`, { token });
      expect(text(confirmed.html)).toContain('You are subscribed.');
      expect(await recipientCount(db, 'email', 'active')).toBe(1);
      const used = await client.post(`${new URL(link).pathname}?_action=confirmEmail`, { token });
      expect(text(used.html)).toContain('already used');

      // same answer for a confirmed address, a new one, and one that is suppressed
      const again = await subscribe(client, { channel: 'email', address: 'ada@customer.example' });
      const fresh = await subscribe(client, { channel: 'email', address: 'bob@customer.example' });
      await writeRows(db, async (q) => {
        const r = q.t.recipients;
        const [newest] = await q.db
          .select({ id: max(r.id) })
          .from(r)
          .where(eq(r.trustCenterId, q.trustCenter));
        await q.db
          .update(r)
          .set({ status: 'suppressed' })
          .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.id, newest?.id ?? -1)));
      });
      const suppressed = await subscribe(client, { channel: 'email', address: 'bob@customer.example' });
      for (const r of [again, fresh, suppressed]) {
        expect(r.status).toBe(200);
        expect(text(r.html)).toContain(answer ?? 'x');
      }
      const already = await until(
        () => resend.emailsTo('ada@customer.example').find((e) => e.subject.startsWith('You are already subscribed')),
        'the already-subscribed email',
      );
      expect(already.text).toMatch(/\/subscription\//);
    });

    it('refuses an expired confirmation link', async () => {
      const client = new ConsoleClient(server.url);
      await subscribe(client, { channel: 'email', address: 'late@customer.example' });
      const email = await until(() => resend.emailsTo('late@customer.example')[0], 'the confirmation email');
      const path = new URL(/(http:\/\/\S+\/subscribe\/confirm\/[a-z0-9.]+)/.exec(email.text ?? '')?.[1] ?? '').pathname;
      await writeRows(db, async (q) => {
        const c = q.t.subscriptionChallenges;
        await q.db
          .update(c)
          .set({ expiresAt: new Date(Date.now() - 1000) })
          .where(and(eq(c.trustCenterId, q.trustCenter), isNull(c.usedAt)));
      });
      const res = await client.post(`${path}?_action=confirmEmail`, { token: path.split('/').at(-1) ?? '' });
      expect(text(res.html)).toContain('This confirmation link has expired');
    });

    it('refuses malformed input with a clear message', async () => {
      const client = new ConsoleClient(server.url);
      expect(text((await subscribe(client, { channel: 'email', address: 'not-an-email' })).html)).toContain(
        '"not-an-email" is not a valid email address.',
      );
      expect(text((await subscribe(client, { channel: 'email', address: 'a@b.example', topics: [] })).html)).toContain(
        'Choose at least one thing to follow.',
      );
      expect(text((await subscribe(client, { channel: 'email', address: 'a@b.example', components: ['mainframe'] })).html)).toContain(
        'There is no service called "mainframe".',
      );
      expect(text((await subscribe(client, { channel: 'email', address: 'x'.repeat(3000) })).html)).toMatch(/too (long|big)|at most|2048/i);
    });
  });

  describe('SMS', () => {
    it('confirms a number with a 6-digit code; wrong codes are refused', async () => {
      const client = new ConsoleClient(server.url);
      const asked = await subscribe(client, { channel: 'sms', address: '+44 7911 123456' });
      expect(text(asked.html)).toContain('We sent a 6-digit code to +447911123456');
      const sms = await until(() => twilio.messagesTo('+447911123456')[0], 'the code SMS');
      const code = /\b(\d{6})\b/.exec(sms.body)?.[1] ?? '';
      const challenge = /name="challengeId" value="([a-z0-9]+)"/.exec(asked.html)?.[1] ?? '';
      const wrong = await client.post(`/subscribe?challenge=${challenge}&_action=confirmSmsCode`, {
        challengeId: challenge,
        code: code === '000000' ? '111111' : '000000',
      });
      expect(text(wrong.html)).toContain('That code is not right.');
      expect(wrong.html).toContain(`name="challengeId" value="${challenge}"`);
      const ok = await client.post(`/subscribe?challenge=${challenge}&_action=confirmSmsCode`, { challengeId: challenge, code });
      expect(text(ok.html)).toContain('Your number is confirmed.');
    });

    it('refuses invalid and landline numbers clearly', async () => {
      const client = new ConsoleClient(server.url);
      expect(text((await subscribe(client, { channel: 'sms', address: '12345' })).html)).toMatch(
        /is not a (valid phone number|phone number we can read)/,
      );
      expect(text((await subscribe(client, { channel: 'sms', address: '+44 20 7946 0958' })).html)).toContain(
        'cannot receive text messages',
      );
    });
  });

  describe('Slack', () => {
    it('"Add to Slack" goes through OAuth v2 with a signed single-use state, and a welcome message confirms it', async () => {
      const client = new ConsoleClient(server.url);
      const started = await subscribe(client, { channel: 'slack-app', topics: ['incidents', 'maintenance'] });
      expect(started.status).toBe(303);
      const authorize = new URL(started.location ?? '');
      expect(authorize.origin + authorize.pathname).toBe('https://slack.com/oauth/v2/authorize');
      expect(authorize.searchParams.get('scope')).toBe('incoming-webhook,chat:write,channels:history,groups:history');
      expect(authorize.searchParams.get('redirect_uri')).toBe(`${publicUrl}/subscribe/slack/callback`);
      const state = authorize.searchParams.get('state') ?? '';
      const code = slack.issueCode({ channel: '#status', redirectUri: `${publicUrl}/subscribe/slack/callback` });
      const forged = await client.get(`/subscribe/slack/callback?code=${code}&state=${flipLast(state)}`);
      expect(forged.status).toBe(400);
      const done = await client.get(`/subscribe/slack/callback?code=${code}&state=${encodeURIComponent(state)}`);
      expect(done.status).toBe(200);
      expect(text(done.html)).toContain('will receive our updates');
      await until(() => slack.messages.find((m) => m.text?.includes('This channel now receives Lumenwork updates')), 'the welcome message');
      const replay = await client.get(`/subscribe/slack/callback?code=${code}&state=${encodeURIComponent(state)}`);
      expect(text(replay.html)).toContain('expired or was already used');
    });

    it('accepts an incoming-webhook URL on hooks.slack.com only', async () => {
      const client = new ConsoleClient(server.url);
      expect(text((await subscribe(client, { channel: 'slack-webhook', address: 'https://evil.example/services/T/B/X' })).html)).toContain(
        'https://hooks.slack.com/services/',
      );
      const hook = slack.registerIncomingWebhook('#alerts');
      const ok = await subscribe(client, { channel: 'slack-webhook', address: hook });
      expect(text(ok.html)).toContain('Your Slack channel is subscribed');
      await until(() => slack.webhookPosts.length > 0, 'the welcome post');
    });

    it('subscribes a Microsoft Teams or Discord channel by its webhook URL and welcomes it there with the link to manage it', async () => {
      const client = new ConsoleClient(server.url);
      expect(text((await subscribe(client, { channel: 'teams', address: 'https://evil.example/workflows/x' })).html)).toContain(
        'Enter a Microsoft Teams Workflows webhook URL',
      );
      expect(text((await subscribe(client, { channel: 'discord', address: 'https://discord.com/api/oauth2/authorize' })).html)).toContain(
        'Enter a Discord webhook URL',
      );
      const teams = await subscribe(client, { channel: 'teams', address: chats.teamsUrl('status-room') });
      expect(text(teams.html)).toContain('Your Microsoft Teams channel is subscribed');
      const discord = await subscribe(client, { channel: 'discord', address: chats.discordUrl('4242') });
      expect(text(discord.html)).toContain('Your Discord channel is subscribed');
      await until(() => chats.posts.length >= 2, 'the two welcome posts');
      const card = JSON.stringify(chats.posts.find((p) => p.kind === 'teams')?.payload);
      expect(card).toContain('This channel now receives Lumenwork updates');
      expect(card).toContain('/subscription/');
      const embed = chats.posts.find((p) => p.kind === 'discord')?.payload as { embeds: { description: string }[] };
      expect(embed.embeds[0]?.description).toContain('This channel now receives Lumenwork updates');
      // the manage link of the welcome opens the subscription
      const manage = /\/subscription\/[^"\\)\s]+/.exec(card)?.[0] ?? '';
      expect((await client.get(manage)).status).toBe(200);
    });
  });

  describe('webhooks', () => {
    interface Event {
      type: string;
      data: { secret?: string; manageUrl?: string; message?: string };
    }
    const events = (path: string) => receiver.received.filter((r) => r.path === path);

    it('a signed verification event must be answered with 2xx; it carries the signing secret, which verifies it', async () => {
      const client = new ConsoleClient(server.url);
      receiver.respondWith(500);
      const refused = await subscribe(client, { channel: 'webhook', address: `${receiver.url}/candor` });
      expect(text(refused.html)).toContain('Your endpoint did not confirm: it answered HTTP 500');
      receiver.respondWith(204);
      const ok = await subscribe(client, { channel: 'webhook', address: `${receiver.url}/candor` });
      expect(text(ok.html)).toContain('Your endpoint answered our signed event');
      const event = events('/candor')[1];
      const unverified = JSON.parse(event?.body ?? '{}') as Event;
      expect(unverified.type).toBe('subscription.verification');
      const secret = unverified.data.secret ?? '';
      expect(secret).toMatch(/^whsec_/);
      const payload = new Webhook(secret).verify(event?.body ?? '', event?.headers ?? {}) as Event;
      expect(payload.type).toBe('subscription.verification');
      // the secret never appears on the page: it reaches only the endpoint, which then hears that it is subscribed
      expect(ok.html).not.toContain(secret);
      await until(() => events('/candor').length > 2, 'the confirmation event');
      const confirmed = new Webhook(secret).verify(events('/candor')[2]?.body ?? '', events('/candor')[2]?.headers ?? {}) as Event;
      expect(confirmed.type).toBe('subscription.confirmed');
      expect(confirmed.data.manageUrl).toMatch(/\/subscription\/[a-z0-9]+\.[A-Za-z0-9_-]+$/);
      expect(text((await subscribe(client, { channel: 'webhook', address: 'http://example.com/hook' })).html)).toContain(
        'must use https://',
      );
      expect(text((await subscribe(client, { channel: 'webhook', address: 'https://10.0.0.5/hook' })).html)).toContain(
        'private, loopback or link-local',
      );
    });

    it('answers identically whether or not the endpoint is already subscribed, and duplicates nothing', async () => {
      receiver.respondWith(200);
      const address = `${receiver.url}/already`;
      const fresh = await subscribe(new ConsoleClient(server.url), { channel: 'webhook', address });
      await until(() => events('/already').length === 2, 'the verification and confirmation events');
      const again = await subscribe(new ConsoleClient(server.url), { channel: 'webhook', address });
      expect(fresh.status).toBe(200);
      expect(again.status).toBe(fresh.status);
      expect(again.html).toBe(fresh.html);
      for (const header of ['content-type', 'cache-control', 'set-cookie', 'location', 'referrer-policy', 'content-length'])
        expect(again.headers.get(header), header).toBe(fresh.headers.get(header));
      // one subscription, and the endpoint (not the page) hears that it already was one, signed with its own secret
      const stored = await recipientCount(db, 'webhook');
      const [verification, confirmation, notice] = events('/already');
      const secret = (JSON.parse(verification?.body ?? '{}') as Event).data.secret ?? '';
      const repeated = new Webhook(secret).verify(notice?.body ?? '', notice?.headers ?? {}) as Event;
      expect(repeated.type).toBe('subscription.already_subscribed');
      expect(repeated.data.secret).toBeUndefined();
      expect(repeated.data.manageUrl).toBe((JSON.parse(confirmation?.body ?? '{}') as Event).data.manageUrl);
      const third = await subscribe(new ConsoleClient(server.url), { channel: 'webhook', address });
      expect(third.html).toBe(fresh.html);
      expect(await recipientCount(db, 'webhook')).toBe(stored);
      expect(events('/already')).toHaveLength(4);
    });
  });

  describe('managing and leaving', () => {
    async function activeEmail(address: string): Promise<{ manage: string; unsubscribe: string }> {
      const client = new ConsoleClient(server.url);
      await subscribe(client, { channel: 'email', address });
      const email = await until(() => resend.emailsTo(address)[0], 'the confirmation');
      const path = new URL(/(http:\/\/\S+\/subscribe\/confirm\/[a-z0-9.]+)/.exec(email.text ?? '')?.[1] ?? '').pathname;
      const confirmed = await client.post(`${path}?_action=confirmEmail`, { token: path.split('/').at(-1) ?? '' });
      const manage = /href="(http:\/\/[^"]+\/subscription\/[^"]+)"/.exec(confirmed.html)?.[1] ?? '';
      const page = await client.get(new URL(manage).pathname);
      const unsubscribe = /href="(\/unsubscribe\/[^"]+)"/.exec(page.html)?.[1] ?? '';
      return { manage: new URL(manage).pathname, unsubscribe };
    }

    it('one-click unsubscribe by POST (RFC 8058) removes the address at once', async () => {
      const { unsubscribe } = await activeEmail('leaver@customer.example');
      const res = await fetch(`${server.url}${unsubscribe}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('Unsubscribed.');
      const again = await fetch(`${server.url}${unsubscribe}`);
      expect(again.status).toBe(404);
      const forged = await fetch(`${server.url}/unsubscribe/1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`, {
        method: 'POST',
        body: 'List-Unsubscribe=One-Click',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(forged.status).toBe(404);
    });

    it('changes topics, exports all data as JSON, and erases it', async () => {
      const { manage } = await activeEmail('keeper@customer.example');
      const client = new ConsoleClient(server.url);
      const token = manage.split('/').at(-1) ?? '';
      const body = new URLSearchParams({ token });
      body.append('topics', 'maintenance');
      body.append('topics', 'docs');
      const saved = await fetch(`${server.url}${manage}?_action=updateTopics`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
        body: body.toString(),
      });
      expect(text(await saved.text())).toContain('Saved.');
      const exported = await client.get(`${manage}/export.json`);
      const data = JSON.parse(exported.html) as { channels: { address: string }[]; follows: { topic: string }[]; messages: unknown[] };
      expect(data.channels).toEqual([expect.objectContaining({ channel: 'email', address: 'keeper@customer.example', status: 'active' })]);
      expect(data.follows.map((f) => f.topic).sort()).toEqual(['docs', 'maintenance']);
      expect(data.messages.length).toBeGreaterThan(0);
      const deliveriesBefore = await deliveryCount(db);
      const erased = await client.post(`${manage}?_action=eraseSubscription`, { token, confirm: 'yes' });
      expect(text(erased.html)).toContain('Everything we held about your subscription is deleted.');
      expect((await client.get(`${manage}/export.json`)).status).toBe(404);
      // delivery counts survive, anonymous
      expect(await deliveryCount(db)).toBe(deliveriesBefore);
      const audit = await readRows(db, (q) =>
        q.db
          .select({ action: q.t.auditLog.action })
          .from(q.t.auditLog)
          .where(and(eq(q.t.auditLog.trustCenterId, q.trustCenter), like(q.t.auditLog.action, 'subscriber.%')))
          .orderBy(asc(q.t.auditLog.id)),
      );
      expect(audit).toEqual(
        expect.arrayContaining([{ action: 'subscriber.exported' }, { action: 'subscriber.erased' }, { action: 'subscriber.unsubscribed' }]),
      );
    });

    it('refuses forged manage tokens', async () => {
      const client = new ConsoleClient(server.url);
      expect((await client.get('/subscription/2.notavalidsignatureatall00000000')).status).toBe(404);
      expect((await client.get('/subscription/..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
    });
  });

  describe('personal data at rest', () => {
    it('the database holds no subscriber address in clear text', async () => {
      // SQLite: the raw file; PostgreSQL: every row of every table as text
      const raw = await running.storedText();
      // what is kept in clear is there to be found (the audit entry of the erasure above)
      expect(raw).toContain('subscriber.erased');
      for (const secret of ['ada@customer.example', 'keeper@customer.example', '+447911123456', 'customer.example'])
        expect(raw).not.toContain(secret);
    });
  });

  describe('abuse limits', () => {
    it('refuses a body larger than any form with 413, before reading it', async () => {
      const res = await fetch(`${server.url}/subscribe?_action=subscribe`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
        body: `channel=email&address=${'a'.repeat(70 * 1024)}`,
      });
      expect(res.status).toBe(413);
      expect(await res.text()).toContain('too large');
    });

    it('refuses a burst of sign-ups from one address with a clear message', async () => {
      const client = new ConsoleClient(server.url);
      let last = '';
      for (let i = 0; i < 12; i++) last = text((await subscribe(client, { channel: 'sms', address: `+4479111${String(10000 + i)}` })).html);
      expect(last).toContain('Too many sign-up attempts from your network.');
    });
  });
});
