/**
 * Proof an attacker would try to forge, replay or keep past its time: the
 * providers' signatures on every callback, every signed or one-time token
 * (subscriber links, email confirmations, Slack OAuth state, console links,
 * the sealed enrolment form), the session cookie (fixation), and every
 * redirect that takes a destination. On each engine (tests/helpers/engine-server.ts):
 * SQLite, and PostgreSQL under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 *
 * Unsigned, wrongly signed and tampered callbacks are also in
 * tests/integration/provider-callbacks.test.ts; a forged session cookie and
 * the basic `//evil` redirect in tests/integration/console-auth.test.ts.
 */
import { and, eq, like } from 'drizzle-orm';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { deviceCookie } from '../../src/core/auth/devices.ts';
import { hashPassword } from '../../src/core/auth/password.ts';
import type { Role } from '../../src/core/auth/permissions.ts';
import { sessionCookie } from '../../src/core/auth/session.ts';
import { recipientToken } from '../../src/core/notify/links.ts';
import { enqueueNotification } from '../../src/core/notify/outbox.ts';
import { type StaffChanges, updateStaffRow } from '../../src/stores/staff.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { Client, type HttpAnswer, pageText, send, until } from '../helpers/security.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn, totpFromKeyText } from '../helpers/staff.ts';
import { flipLast } from '../helpers/tamper.ts';

const PUBLIC = 'https://trust.lumenwork.example';
const COOKIE = sessionCookie(true).name;
const PASSWORD = 'another long unguessable passphrase 41';
const RESEND_SECRET = `whsec_${Buffer.from('signature-suite-resend-secret!!!').toString('base64')}`;

const text = (answer: HttpAnswer) => pageText(answer.body);
/** The same string with its last character changed. */
const flip = flipLast;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let twilioFake: Awaited<ReturnType<typeof startFakeTwilio>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let db: Database;
  let passwordHash = '';

  beforeAll(async () => {
    resend = await startFakeResend();
    twilioFake = await startFakeTwilio({ statusCallbacks: false });
    slack = await startFakeSlack({ clientId: 'candor-client', clientSecret: 'candor-secret' });
    const port = await freePort();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: {
        ...providerEnv({ port, resend, twilio: twilioFake, slack, testKeys: true }),
        // the address readers (and providers) use is not the one the server listens on
        CANDOR_PUBLIC_URL: PUBLIC,
        RESEND_WEBHOOK_SECRET: RESEND_SECRET,
        SLACK_CLIENT_ID: 'candor-client',
        SLACK_CLIENT_SECRET: 'candor-secret',
      },
    });
    server = running.server;
    db = running.database;
    passwordHash = await hashPassword(PASSWORD);
  });
  afterAll(async () => {
    await running?.stop();
    await Promise.all([resend?.close(), twilioFake?.close(), slack?.close()]);
  });

  const recipient = async (id: number) =>
    (
      await readRows(db, (q) =>
        q.db
          .select({ status: q.t.recipients.status, suppressed_reason: q.t.recipients.suppressedReason })
          .from(q.t.recipients)
          .where(and(eq(q.t.recipients.trustCenterId, q.trustCenter), eq(q.t.recipients.id, id))),
      )
    )[0];
  const post = (path: string, body: string, headers: Record<string, string>) =>
    send(`${server.url}${path}`, { method: 'POST', headers, body });
  const changeStaff = (staffId: number, changes: StaffChanges) =>
    db.engine === 'sqlite'
      ? db.transaction((tx) => updateStaffRow(tx, staffId, changes, new Date()))
      : db.transaction((tx) => updateStaffRow(tx, staffId, changes, new Date()));
  /** A second ago: what the server reads as expired. */
  const past = () => new Date(Date.now() - 1000);

  async function member(role: Role): Promise<{ email: string; staffId: number; token: string }> {
    const created = await signedInStaffOn(db, role);
    await changeStaff(created.staffId, { passwordHash });
    return created;
  }

  describe('Resend callbacks', () => {
    let emailId = '';
    let recipientId = 0;
    beforeAll(async () => {
      [recipientId = 0] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'bouncy@customer.example' });
      await db.transaction((tx) =>
        enqueueNotification(
          tx,
          {
            kind: 'test',
            title: 'Test',
            content: { email: { subject: 'Test', html: '<p>t</p>', text: 't' } },
            audience: { kind: 'recipients', ids: [recipientId] },
          },
          new Date(),
        ),
      );
      await until(() => resend.emailsTo('bouncy@customer.example').length === 1, 'the email');
      await until(
        async () =>
          (
            await readRows(db, (q) =>
              q.db
                .select({ id: q.t.deliveries.id })
                .from(q.t.deliveries)
                .where(
                  and(
                    eq(q.t.deliveries.trustCenterId, q.trustCenter),
                    eq(q.t.deliveries.recipientId, recipientId),
                    eq(q.t.deliveries.status, 'sent'),
                  ),
                ),
            )
          ).length > 0,
        'sent',
      );
      emailId = resend.emailsTo('bouncy@customer.example')[0]?.id ?? '';
    });
    const email = () => {
      const found = resend.emails.find((e) => e.id === emailId);
      if (!found) throw new Error('no email');
      return found;
    };

    it('refuses a correctly signed event that is stale or from the future', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const timestamp of [now - 6 * 60, now - 86_400, now + 6 * 60, 0]) {
        const old = resend.signedWebhook(RESEND_SECRET, { type: 'email.bounced', email: email() }, { timestamp });
        expect((await post('/webhooks/resend', old.body, old.headers)).status, `timestamp ${timestamp}`).toBe(401);
      }
      expect(await recipient(recipientId)).toMatchObject({ status: 'active' });
    });

    it('refuses signatures that are not Resend’s: several wrong ones, another scheme, the header names of the other standard', async () => {
      const good = resend.signedWebhook(RESEND_SECRET, { type: 'email.complained', email: email() });
      const wrong = resend.signedWebhook(`whsec_${Buffer.from('not the secret at all, forged!!!').toString('base64')}`, {
        type: 'email.complained',
        email: email(),
      });
      const variants: Record<string, string>[] = [
        { ...good.headers, 'svix-signature': `${wrong.headers['svix-signature']} v1,${'A'.repeat(44)}` },
        { ...good.headers, 'svix-signature': good.headers['svix-signature'].replace('v1,', 'v2,') },
        { ...good.headers, 'svix-signature': good.headers['svix-signature'].replace('v1,', 'v1a,') },
        { ...good.headers, 'svix-id': `${good.headers['svix-id']}x` },
        {
          'content-type': 'application/json',
          'webhook-id': good.headers['svix-id'],
          'webhook-timestamp': good.headers['svix-timestamp'],
          'webhook-signature': wrong.headers['svix-signature'],
        },
      ];
      for (const headers of variants) expect((await post('/webhooks/resend', good.body, headers)).status).toBe(401);
      expect(await recipient(recipientId)).toMatchObject({ status: 'active' });
    });

    it('acts on an event once: a replayed bounce does not suppress again an address staff un-suppressed', async () => {
      const bounce = resend.signedWebhook(RESEND_SECRET, { type: 'email.bounced', email: email() });
      const first = await post('/webhooks/resend', bounce.body, bounce.headers);
      expect(JSON.parse(first.body)).toMatchObject({ status: 'applied' });
      expect(await recipient(recipientId)).toMatchObject({ status: 'suppressed' });
      const admin = new Client(server.url).setCookie(COOKIE, (await signedInStaffOn(db, 'admin')).token);
      const lifted = await admin.post('/console/subscribers/quarantine?_action=liftSuppression', { recipientId: String(recipientId) });
      expect(lifted.status).toBeLessThan(400);
      expect(await recipient(recipientId)).toMatchObject({ status: 'active' });
      const replay = await post('/webhooks/resend', bounce.body, bounce.headers);
      expect(replay.status).toBe(200);
      expect(JSON.parse(replay.body)).toEqual({ status: 'ignored', detail: 'already received' });
      expect(await recipient(recipientId)).toMatchObject({ status: 'active' });
    });
  });

  describe('Twilio callbacks', () => {
    const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
    const signed = (url: string, params: Record<string, string>) => ({
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilio.getExpectedTwilioSignature(twilioFake.authToken, url, params),
    });

    it('refuse a signature made for another URL, another route, or before a parameter was added', async () => {
      const params = { MessageSid: 'SM11111111111111111111111111111111', MessageStatus: 'undelivered', ErrorCode: '21610' };
      // the address the server listens on is not the one Twilio calls
      expect((await post('/webhooks/twilio/status', form(params), signed(`${server.url}/webhooks/twilio/status`, params))).status).toBe(
        401,
      );
      expect((await post('/webhooks/twilio/status', form(params), signed(`${PUBLIC}/webhooks/twilio/inbound`, params))).status).toBe(401);
      const added = { ...params, ErrorCode: '30006' };
      expect((await post('/webhooks/twilio/status', form(added), signed(`${PUBLIC}/webhooks/twilio/status`, params))).status).toBe(401);
      expect((await post('/webhooks/twilio/status?x=1', form(params), signed(`${PUBLIC}/webhooks/twilio/status`, params))).status).toBe(
        401,
      );
      expect((await post('/webhooks/twilio/status', form(params), signed(`${PUBLIC}/webhooks/twilio/status`, params))).status).toBe(200);
    });

    it('refuse a correctly signed callback without a MessageSid (400), changing nothing', async () => {
      const [id = 0] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447911123488' });
      const callbacks = () =>
        readRows(db, (q) =>
          q.db.$count(q.t.rateLimits, and(eq(q.t.rateLimits.trustCenterId, q.trustCenter), like(q.t.rateLimits.bucket, 'callback:%'))),
        );
      const before = await callbacks();
      for (const sid of [undefined, '', '   ']) {
        const status = { ...(sid === undefined ? {} : { MessageSid: sid }), MessageStatus: 'undelivered', ErrorCode: '21610' };
        const answer = await post('/webhooks/twilio/status', form(status), signed(`${PUBLIC}/webhooks/twilio/status`, status));
        expect(answer.status, JSON.stringify(status)).toBe(400);
        expect(answer.body).toMatch(/MessageSid/);
        const inbound = { ...(sid === undefined ? {} : { MessageSid: sid }), From: '+447911123488', To: '+15005550006', Body: 'STOP' };
        const stop = await post('/webhooks/twilio/inbound', form(inbound), signed(`${PUBLIC}/webhooks/twilio/inbound`, inbound));
        expect(stop.status, JSON.stringify(inbound)).toBe(400);
        expect(stop.body).toMatch(/MessageSid/);
      }
      expect(await recipient(id)).toMatchObject({ status: 'active', suppressed_reason: null });
      expect(await callbacks()).toEqual(before);
    });

    it('act on a message once: a replayed STOP does not silence a number that texted START since', async () => {
      const [id = 0] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447911123499' });
      const url = `${server.url}/webhooks/twilio/inbound`;
      const signatureUrl = `${PUBLIC}/webhooks/twilio/inbound`;
      const stop = await twilioFake.sendInbound(url, { From: '+447911123499', To: '+15005550006', Body: 'STOP' }, { signatureUrl });
      expect(stop.status).toBe(200);
      expect(await recipient(id)).toMatchObject({ status: 'suppressed' });
      expect(
        (await twilioFake.sendInbound(url, { From: '+447911123499', To: '+15005550006', Body: 'START' }, { signatureUrl })).status,
      ).toBe(200);
      expect(await recipient(id)).toMatchObject({ status: 'active' });
      const replay = await post('/webhooks/twilio/inbound', form(stop.params), signed(signatureUrl, stop.params));
      expect(replay.status).toBe(200);
      expect(await recipient(id)).toMatchObject({ status: 'active' });
      // status callbacks too: a message's status is applied once
      const status = { MessageSid: 'SM22222222222222222222222222222222', MessageStatus: 'delivered' };
      const headers = signed(`${PUBLIC}/webhooks/twilio/status`, status);
      await post('/webhooks/twilio/status', form(status), headers);
      expect(JSON.parse((await post('/webhooks/twilio/status', form(status), headers)).body)).toEqual({
        status: 'ignored',
        detail: 'already received',
      });
    });
  });

  describe('signed subscriber links', () => {
    let manage = '';
    let unsubscribe = '';
    let otherId = 0;
    beforeAll(async () => {
      const [id = 0, other = 0] = await addSubscribersTo(db, TEST_KEYS, {
        count: 2,
        channel: 'email',
        address: (i) => `linked${i}@customer.example`,
      });
      otherId = other;
      manage = recipientToken(TEST_KEYS.secret, 'manage', id);
      unsubscribe = recipientToken(TEST_KEYS.secret, 'unsubscribe', id);
    });

    it('open only as signed, for their own purpose and their own recipient', async () => {
      const [idPart, mac = ''] = manage.split('.');
      const forgeries = [
        ['an unsubscribe token on the manage page', `/subscription/${unsubscribe}`],
        ['a manage token as an unsubscribe link', `/unsubscribe/${manage}`],
        ['another recipient’s id under this signature', `/subscription/${otherId.toString(36)}.${mac}`],
        ['a truncated signature', `/subscription/${idPart}.${mac.slice(0, -1)}`],
        ['the signature in another case', `/subscription/${idPart}.${mac.toUpperCase() === mac ? mac.toLowerCase() : mac.toUpperCase()}`],
        ['a signature with padding', `/subscription/${idPart}.${mac}=`],
        ['an extra segment', `/subscription/${manage}.x`],
        ['the id with a leading zero', `/subscription/0${idPart}.${mac}`],
        ['no signature', `/subscription/${idPart}`],
        ['an empty signature', `/subscription/${idPart}.`],
        ['a manage token for the data export of another', `/subscription/${otherId.toString(36)}.${mac}/export.json`],
      ] as const;
      const client = new Client(server.url, '127.0.30.1');
      for (const [what, path] of forgeries) expect((await client.get(path)).status, what).toBe(404);
      expect((await new Client(server.url, '127.0.30.2').get(`/subscription/${manage}`)).status).toBe(200);
    });

    it('an email confirmation link works once, not forged, not replayed, not after 48 hours', async () => {
      const client = new Client(server.url, '127.0.31.1');
      const subscribe = (address: string) =>
        client.post('/subscribe?_action=subscribe', { channel: 'email', address, topics: 'incidents' });
      const linkTo = async (address: string) => {
        await subscribe(address);
        await until(() => resend.emailsTo(address).length > 0, `the confirmation to ${address}`);
        const link =
          /(https:\/\/trust\.lumenwork\.example\/subscribe\/confirm\/\S+)/.exec(resend.emailsTo(address)[0]?.text ?? '')?.[1] ?? '';
        return new URL(link).pathname;
      };
      const path = await linkTo('confirm-once@customer.example');
      const token = path.split('/').at(-1) ?? '';
      const [id, secret = ''] = token.split('.');
      const confirm = (t: string) => client.post(`${path}?_action=confirmEmail`, { token: t });
      expect(text(await confirm(`${id}.${flip(secret)}`))).toContain('This confirmation link is not valid');
      expect(text(await confirm(`${id}.`))).toContain('This confirmation link is not valid');
      expect(text(await confirm(token))).toContain('You are subscribed.');
      expect(text(await confirm(token))).toContain('was already used');

      const stalePath = await linkTo('confirm-late@customer.example');
      const challengeId = stalePath.split('/').at(-1)?.split('.')[0] ?? '';
      await writeRows(db, (q) =>
        q.db
          .update(q.t.subscriptionChallenges)
          .set({ expiresAt: past() })
          .where(and(eq(q.t.subscriptionChallenges.trustCenterId, q.trustCenter), eq(q.t.subscriptionChallenges.id, challengeId))),
      );
      expect(text(await client.post(`${stalePath}?_action=confirmEmail`, { token: stalePath.split('/').at(-1) ?? '' }))).toContain(
        'has expired',
      );
    });

    it('a Slack OAuth state works once, only as signed, and not after 10 minutes', async () => {
      const client = new Client(server.url, '127.0.32.1');
      const start = async () => {
        const started = await client.post('/subscribe?_action=subscribe', { channel: 'slack-app', topics: 'incidents' });
        expect(started.status).toBe(303);
        const authorize = new URL(started.headers.get('location') ?? '');
        expect(authorize.origin).toBe('https://slack.com');
        return authorize.searchParams.get('state') ?? '';
      };
      const callback = (state: string, code: string) =>
        client.get(`/subscribe/slack/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`);
      const redirectUri = `${PUBLIC}/subscribe/slack/callback`;
      const [idA, macA = ''] = (await start()).split('.');
      const [idB, macB = ''] = (await start()).split('.');
      // each signature belongs to its own state
      expect((await callback(`${idA}.${macB}`, slack.issueCode({ redirectUri }))).status).toBe(400);
      expect((await callback(`${idB}.${macA}`, slack.issueCode({ redirectUri }))).status).toBe(400);
      expect((await callback(`${idA}`, slack.issueCode({ redirectUri }))).status).toBe(400);
      await writeRows(db, (q) =>
        q.db
          .update(q.t.slackOauthStates)
          .set({ expiresAt: past() })
          .where(and(eq(q.t.slackOauthStates.trustCenterId, q.trustCenter), eq(q.t.slackOauthStates.id, idA ?? ''))),
      );
      const stale = await callback(`${idA}.${macA}`, slack.issueCode({ redirectUri }));
      expect(stale.status).toBe(400);
      expect(text(stale)).toContain('expired or was already used');
      expect((await callback(`${idB}.${macB}`, slack.issueCode({ redirectUri }))).status).toBe(200);
      expect((await callback(`${idB}.${macB}`, slack.issueCode({ redirectUri }))).status).toBe(400);
    });
  });

  describe('console one-time links and the enrolment form', () => {
    async function invite(email: string): Promise<string> {
      const owner = new Client(server.url).setCookie(COOKIE, (await signedInStaffOn(db, 'owner')).token);
      const page = await owner.post('/console/staff?_action=inviteStaff', { email, role: 'viewer' });
      const link = /<code id="invite-link">([^<]+)<\/code>/.exec(page.body)?.[1] ?? '';
      expect(link).toMatch(/^https:\/\/trust\.lumenwork\.example\/console\/link\/[a-z0-9]+\.[a-z0-9]+$/);
      return new URL(link).pathname;
    }

    it('work once, only as issued, for 24 hours', async () => {
      const path = await invite('linked-once@lumenwork.example');
      const [id, secret = ''] = (path.split('/').at(-1) ?? '').split('.');
      const visitor = new Client(server.url, '127.0.33.1');
      for (const forged of [`${id}.${flip(secret)}`, `${id}`, `${id}.${secret}.x`, `${secret}.${id}`]) {
        const res = await visitor.get(`/console/link/${forged}`);
        expect(res.status, forged).toBe(410);
        expect(text(res)).toContain('This link is not valid');
        expect(
          text(
            await visitor.post(`/console/link/${forged}?_action=completeLink`, { token: forged, password: PASSWORD, confirm: PASSWORD }),
          ),
        ).toContain('This link is not valid');
      }
      const token = `${id}.${secret}`;
      const done = await visitor.post(`${path}?_action=completeLink`, { token, password: PASSWORD, confirm: PASSWORD });
      expect(done.status).toBe(303);
      expect(
        text(await new Client(server.url).post(`${path}?_action=completeLink`, { token, password: PASSWORD, confirm: PASSWORD })),
      ).toContain('already been used');

      const late = await invite('linked-late@lumenwork.example');
      const lateId = late.split('/').at(-1)?.split('.')[0] ?? '';
      await writeRows(db, (q) =>
        q.db
          .update(q.t.staffLinks)
          .set({ expiresAt: past() })
          .where(and(eq(q.t.staffLinks.trustCenterId, q.trustCenter), eq(q.t.staffLinks.id, lateId))),
      );
      expect(text(await visitor.get(late))).toContain('This link has expired');
    });

    it('an enrolment form is sealed to its session: another session cannot complete it', async () => {
      const { token } = await signedInStaffOn(db, 'responder');
      const owner = new Client(server.url).setCookie(COOKIE, token);
      const page = await owner.get('/console/mfa/enrol');
      const keyText = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)?.[1] ?? '';
      const pending = (/name="pending" value="([^"]+)"/.exec(page.body)?.[1] ?? '').replaceAll('&#43;', '+').replaceAll('&amp;', '&');
      const other = new Client(server.url).setCookie(COOKIE, (await signedInStaffOn(db, 'responder')).token);
      const res = await other.post('/console/mfa/enrol?_action=enrolMfa', { pending, code: totpFromKeyText(keyText) });
      expect(text(res)).toContain('This enrolment form has expired');
    });
  });

  describe('sessions', () => {
    it('a cookie planted before sign-in is replaced, never adopted (session fixation)', async () => {
      const { email } = await member('owner');
      const planted = 'plantedid0000000000000000.plantedsecret000000000000000000';
      const browser = new Client(server.url).setCookie(COOKIE, planted);
      const res = await browser.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
      expect(res.status).toBe(303);
      const issued = browser.cookie(COOKIE) ?? '';
      expect(issued).not.toBe(planted);
      expect(issued).toMatch(/^[a-z0-9]{16,}\.[a-z0-9]{24,}$/);
      expect((await new Client(server.url).setCookie(COOKIE, planted).get('/console')).headers.get('location')).toMatch(
        /^\/console\/sign-in/,
      );
    });

    it('an attacker’s own valid session planted in a browser stays the attacker’s after the victim signs in', async () => {
      const attacker = await signedInStaffOn(db, 'viewer');
      const { email } = await member('owner');
      const browser = new Client(server.url).setCookie(COOKIE, attacker.token);
      await browser.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
      expect(browser.cookie(COOKIE)).not.toBe(attacker.token);
      // the planted session was not raised to the victim's account
      expect((await new Client(server.url).setCookie(COOKIE, attacker.token).get('/console/staff')).status).toBe(403);
    });

    it('the cookie is __Host-, Secure, HttpOnly, SameSite=Lax, for the whole site and no other domain', async () => {
      const { email } = await member('viewer');
      const res = await new Client(server.url).post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`)) ?? '';
      const attributes = cookie
        .split(';')
        .slice(1)
        .map((a) => a.trim().toLowerCase());
      expect(attributes).toEqual(expect.arrayContaining(['path=/', 'secure', 'httponly', 'samesite=lax']));
      expect(attributes.some((a) => a.startsWith('domain='))).toBe(false);
      const token = cookie.split(';')[0]?.split('=')[1] ?? '';
      // the token is never written into a page or a URL
      expect(res.body).not.toContain(token);
      expect(res.headers.get('location') ?? '').not.toContain(token);
    });
  });

  describe('recognised devices', () => {
    it('the device cookie comes only with a complete sign-in, and is __Host-, Secure, HttpOnly, SameSite=Lax, for 90 days', async () => {
      const name = deviceCookie(true).name;
      expect(name).toBe('__Host-candor_device');
      const { email } = await member('viewer');
      const res = await new Client(server.url).post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`)) ?? '';
      const attributes = cookie
        .split(';')
        .slice(1)
        .map((a) => a.trim().toLowerCase());
      expect(attributes).toEqual(expect.arrayContaining(['path=/', 'secure', 'httponly', 'samesite=lax', `max-age=${90 * 24 * 3600}`]));
      expect(attributes.some((a) => a.startsWith('domain='))).toBe(false);
      const value = cookie.split(';')[0]?.split('=')[1] ?? '';
      expect(value).toMatch(/^d1\.[0-9a-z]+\.0\.[a-z2-7]{24}\.[0-9a-z]+\.[A-Za-z0-9_-]{43}$/);
      expect(res.body).not.toContain(value);
      expect(res.headers.get('location') ?? '').not.toContain(value);
      // an owner must still give the second factor: the password alone sets no cookie
      const owner = await member('owner');
      await changeStaff(owner.staffId, { totpEnrolledAt: new Date(), totpSecret: 'sealed' });
      const half = await new Client(server.url).post('/console/sign-in?_action=signIn', {
        email: owner.email,
        password: PASSWORD,
        next: '/console',
      });
      expect(half.headers.get('location')).toBe('/console/mfa');
      expect(half.headers.getSetCookie().join()).not.toContain(name);
    });
  });

  describe('open redirects', () => {
    const destinations = [
      '//evil.example/phish',
      '///evil.example',
      '////evil.example',
      '/\\evil.example',
      '\\\\evil.example',
      '/\t/evil.example',
      'https://evil.example/console',
      'http:evil.example',
      'javascript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      '/console@evil.example',
      '/console\r\nLocation: https://evil.example',
      '/console%0d%0aSet-Cookie:%20x=y',
      ' //evil.example',
      '/%2f%2fevil.example',
      '/console/..//evil.example',
    ];
    const sameSite = (location: string | null) => {
      expect(location).not.toBeNull();
      expect(location).not.toMatch(/[\r\n]/);
      const resolved = new URL(location ?? '', `${PUBLIC}/console/sign-in`);
      expect(resolved.origin, location ?? '').toBe(PUBLIC);
    };

    it('sign-in sends people only to a console page, whatever `next` says', async () => {
      const { email } = await member('viewer');
      let n = 0;
      for (const next of destinations) {
        const res = await new Client(server.url, `127.0.40.${++n}`).post('/console/sign-in?_action=signIn', {
          email,
          password: PASSWORD,
          next,
        });
        expect(res.status, next).toBe(303);
        sameSite(res.headers.get('location'));
        expect(res.headers.get('location'), next).toMatch(/^\/console(\/|$|\?)/);
      }
    });

    it('the second-factor step does too', async () => {
      const { email, token } = await member('responder');
      // enrol, keeping the recovery codes: each is a second factor that works once
      const enrolling = new Client(server.url).setCookie(COOKIE, token);
      const page = await enrolling.get('/console/mfa/enrol');
      const keyText = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)?.[1] ?? '';
      const pending = (/name="pending" value="([^"]+)"/.exec(page.body)?.[1] ?? '').replaceAll('&#43;', '+').replaceAll('&amp;', '&');
      const enrolled = await enrolling.post('/console/mfa/enrol?_action=enrolMfa', { pending, code: totpFromKeyText(keyText) });
      const codes = [...enrolled.body.matchAll(/<li>([a-z0-9]{5}-[a-z0-9]{5})<\/li>/g)].map((m) => m[1] ?? '');
      let n = 0;
      for (const next of destinations.slice(0, 4)) {
        const browser = new Client(server.url, `127.0.41.${++n}`);
        await browser.post('/console/sign-in?_action=signIn', { email, password: PASSWORD, next: '/console' });
        const res = await browser.post('/console/mfa?_action=verifyMfa', { code: codes[n] ?? '', next });
        expect(res.status, next).toBe(303);
        sameSite(res.headers.get('location'));
      }
    });

    it('the server’s own redirects (trailing slashes, the console guard) stay on the site', async () => {
      for (const path of [
        '/%2fevil.example//',
        '/%5cevil.example//',
        '/status//',
        '/console//evil.example',
        '/console/staff?next=//evil.example',
        '/.//evil.example//',
      ]) {
        const res = await send(`${server.url}${path}`);
        expect(res.status, path).toBeLessThan(500);
        if (res.status >= 300 && res.status < 400) sameSite(res.headers.get('location'));
      }
    });

    it('"Add to Slack" leaves only for slack.com', async () => {
      const res = await new Client(server.url, '127.0.42.1').post('/subscribe?_action=subscribe', {
        channel: 'slack-app',
        topics: 'incidents',
        address: 'https://evil.example/oauth',
        next: 'https://evil.example',
        redirect: 'https://evil.example',
      });
      expect(new URL(res.headers.get('location') ?? '').origin).toBe('https://slack.com');
      expect(new URL(res.headers.get('location') ?? '').searchParams.get('redirect_uri')).toBe(`${PUBLIC}/subscribe/slack/callback`);
    });
  });
});
