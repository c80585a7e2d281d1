/**
 * Provider callbacks against the built server, on each engine: Resend's delivery events and
 * Twilio's status callbacks and inbound replies change deliveries and recipients only when their
 * signatures verify, and only the delivery they name, sent to the address they name.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import { enqueueNotification, type NewNotification } from '../../src/core/notify/outbox.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, tempDir } from '../helpers/server.ts';

type ResendFake = Awaited<ReturnType<typeof startFakeResend>>;
type TwilioFake = Awaited<ReturnType<typeof startFakeTwilio>>;

const WEBHOOK_SECRET = `whsec_${Buffer.from('resend-webhook-secret-for-tests!').toString('base64')}`;

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(serverEnginesUnderTest())('provider callbacks on $name', (engine) => {
  let running: ServerOnEngine;
  let database: Database;
  let resend: ResendFake;
  let twilio: TwilioFake;
  let publicUrl: string;
  let server: ServerOnEngine['server'];

  beforeAll(async () => {
    resend = await startFakeResend();
    twilio = await startFakeTwilio();
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    running = await engine.start({
      dataDir: tempDir(),
      port,
      env: { ...providerEnv({ port, resend, twilio, testKeys: true }), RESEND_WEBHOOK_SECRET: WEBHOOK_SECRET },
    });
    server = running.server;
    database = running.database;
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
    await twilio?.close();
  });

  const enqueue = (input: NewNotification) => database.transaction((tx) => enqueueNotification(tx, input, new Date()));
  const deliveriesOf = (notificationId: number) =>
    readRows(database, (q) =>
      q.db
        .select({
          id: q.t.deliveries.id,
          recipient_id: q.t.deliveries.recipientId,
          provider_message_id: q.t.deliveries.providerMessageId,
          status: q.t.deliveries.status,
        })
        .from(q.t.deliveries)
        .where(eq(q.t.deliveries.notificationId, notificationId))
        .orderBy(asc(q.t.deliveries.recipientId)),
    );
  const status = async (id: number) =>
    (
      await readRows(database, (q) => q.db.select({ status: q.t.deliveries.status }).from(q.t.deliveries).where(eq(q.t.deliveries.id, id)))
    )[0] ?? {
      status: 'none',
    };
  const recipientStatus = async (id: number) =>
    (
      await readRows(database, (q) =>
        q.db
          .select({ status: q.t.recipients.status, suppressed_reason: q.t.recipients.suppressedReason })
          .from(q.t.recipients)
          .where(and(eq(q.t.recipients.id, id))),
      )
    )[0];

  describe('Resend webhooks', () => {
    it('mark a delivery delivered, and suppress the address on a bounce; unsigned or forged ones change nothing', async () => {
      const [good, bouncing] = await addSubscribersTo(database, TEST_KEYS, {
        count: 2,
        channel: 'email',
        address: (i) => `cb${i}@customer.example`,
      });
      const { notificationId } = await enqueue({
        kind: 'test',
        title: 'Test',
        content: { email: { subject: 'Test', html: '<p>t</p>', text: 't' } },
        audience: { kind: 'recipients', ids: [good ?? 0, bouncing ?? 0] },
      });
      await until(async () => resend.emails.length === 2, 'two emails');
      await until(async () => (await deliveriesOf(notificationId)).every((r) => r.status === 'sent'), 'deliveries recorded as sent');
      const [first, second] = await deliveriesOf(notificationId);
      if (!first?.provider_message_id || !second?.provider_message_id || first.recipient_id === null || second.recipient_id === null)
        throw new Error('two sent deliveries expected');
      const ids = { first: first.provider_message_id, second: second.provider_message_id };
      const recipients = { first: first.recipient_id, second: second.recipient_id };
      const email = (id: string) => {
        const found = resend.emails.find((e) => e.id === id);
        if (!found) throw new Error(`the fake did not record email ${id}`);
        return found;
      };
      const url = `${server.url}/webhooks/resend`;

      const unsigned = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'email.bounced', data: { email_id: ids.second } }),
      });
      expect(unsigned.status).toBe(401);
      const forged = resend.signedWebhook(`whsec_${Buffer.from('some other secret entirely!!!!!!').toString('base64')}`, {
        type: 'email.bounced',
        email: email(ids.second),
      });
      expect((await fetch(url, { method: 'POST', headers: forged.headers, body: forged.body })).status).toBe(401);
      const tampered = resend.signedWebhook(WEBHOOK_SECRET, { type: 'email.delivered', email: email(ids.second) });
      expect(
        (await fetch(url, { method: 'POST', headers: tampered.headers, body: tampered.body.replace('delivered', 'bounced') })).status,
      ).toBe(401);
      expect((await status(second.id)).status).toBe('sent');
      expect(await recipientStatus(recipients.second)).toMatchObject({ status: 'active' });

      // A report applies to the message it names as sent to whom it names: one email's id with the other
      // recipient's address (or none) changes neither delivery.
      for (const to of [email(ids.second).to, []]) {
        const crossed = resend.signedWebhook(WEBHOOK_SECRET, { type: 'email.bounced', email: { ...email(ids.first), to } });
        const ignored = await fetch(url, { method: 'POST', headers: crossed.headers, body: crossed.body });
        expect(await ignored.json()).toEqual({ status: 'ignored', detail: `no delivery for email ${ids.first}` });
      }
      expect([(await status(first.id)).status, (await status(second.id)).status]).toEqual(['sent', 'sent']);
      expect(await recipientStatus(recipients.first)).toMatchObject({ status: 'active' });
      const delivered = resend.signedWebhook(WEBHOOK_SECRET, { type: 'email.delivered', email: email(ids.first) });
      const answer = await fetch(url, { method: 'POST', headers: delivered.headers, body: delivered.body });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual({ status: 'applied', detail: 'delivered' });
      expect((await status(first.id)).status).toBe('delivered');
      const bounced = resend.signedWebhook(WEBHOOK_SECRET, { type: 'email.bounced', email: email(ids.second) });
      expect((await fetch(url, { method: 'POST', headers: bounced.headers, body: bounced.body })).status).toBe(200);
      expect((await status(second.id)).status).toBe('failed');
      expect(await recipientStatus(recipients.second)).toMatchObject({ status: 'suppressed' });
      // the next fan-out leaves the bounced address out
      const next = await enqueue({
        kind: 'test',
        title: 'Again',
        content: { email: { subject: 'Again', html: '<p>a</p>', text: 'a' } },
        audience: { kind: 'recipients', ids: [recipients.first, recipients.second] },
      });
      expect(next.deliveries).toBe(1);
    });
    it('a report that overtakes the record of its send is asked again later (503) and applies once the send is recorded', async () => {
      const [early] = await addSubscribersTo(database, TEST_KEYS, { count: 1, channel: 'email', address: () => 'early@customer.example' });
      const { notificationId } = await enqueue({
        kind: 'test',
        title: 'Early',
        content: { email: { subject: 'Early', html: '<p>e</p>', text: 'e' } },
        audience: { kind: 'recipients', ids: [early ?? 0] },
      });
      await until(async () => (await deliveriesOf(notificationId))[0]?.status === 'sent', 'the delivery recorded as sent');
      const [row] = await deliveriesOf(notificationId);
      const emailId = row?.provider_message_id;
      const sent = resend.emails.find((e) => e.id === emailId);
      if (!row || !emailId || !sent) throw new Error('a sent delivery expected');
      // the moment between Resend's answer and the dispatcher's record: being sent, no provider id yet
      const setRow = (values: { status: 'sending' | 'sent'; providerMessageId: string | null; leaseExpiresAt?: Date }) =>
        database.transaction(async (tx) => {
          const q = query(tx);
          await q.db.update(q.t.deliveries).set(values).where(eq(q.t.deliveries.id, row.id));
        });
      // (leased for a minute, so the server's dispatcher leaves it alone)
      await setRow({ status: 'sending', providerMessageId: null, leaseExpiresAt: new Date(Date.now() + 60_000) });
      const report = resend.signedWebhook(WEBHOOK_SECRET, { type: 'email.delivered', email: sent });
      const url = `${server.url}/webhooks/resend`;
      const tooEarly = await fetch(url, { method: 'POST', headers: report.headers, body: report.body });
      expect(tooEarly.status).toBe(503);
      expect(tooEarly.headers.get('retry-after')).toBe('30');
      expect(await tooEarly.json()).toEqual({ status: 'early', detail: `email ${emailId} is not recorded yet` });
      await setRow({ status: 'sent', providerMessageId: emailId });
      // Svix's retry: the same message id, not taken for a replay, since nothing was applied
      const retried = await fetch(url, { method: 'POST', headers: report.headers, body: report.body });
      expect(await retried.json()).toEqual({ status: 'applied', detail: 'delivered' });
      expect((await status(row.id)).status).toBe('delivered');
      const replayed = await fetch(url, { method: 'POST', headers: report.headers, body: report.body });
      expect(await replayed.json()).toEqual({ status: 'ignored', detail: 'already received' });
    });
  });

  describe('Twilio callbacks', () => {
    it('status callbacks (signed by the fake as Twilio does) mark the SMS delivered', async () => {
      const [recipient] = await addSubscribersTo(database, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447700900101' });
      const { notificationId } = await enqueue({
        kind: 'test',
        title: 'SMS',
        content: { sms: { body: 'API degraded', link: `${publicUrl}/incidents/1` } },
        audience: { kind: 'recipients', ids: [recipient ?? 0] },
      });
      await until(async () => (await deliveriesOf(notificationId))[0]?.status === 'delivered', 'the delivered status callback');
      const [delivery] = await deliveriesOf(notificationId);
      expect(twilio.messagesTo('+447700900101')[0]?.body).toBe(`API degraded ${publicUrl}/incidents/1?d=${delivery?.id.toString(36)}`);
    });

    it('an unsigned or forged status callback gets 401 and changes nothing', async () => {
      const url = `${server.url}/webhooks/twilio/status`;
      const body = new URLSearchParams({ MessageSid: 'SM00000000000000000000000000000000', MessageStatus: 'failed' }).toString();
      const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      expect(unsigned.status).toBe(401);
      const forged = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'bm90IGEgc2lnbmF0dXJl' },
        body,
      });
      expect(forged.status).toBe(401);
    });

    it('STOP suppresses the number, START lifts it, HELP is answered; a forged reply is refused', async () => {
      const [recipient] = await addSubscribersTo(database, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447700900202' });
      const url = `${publicUrl}/webhooks/twilio/inbound`;
      const forged = await twilio.sendInbound(url, { From: '+447700900202', To: '+15005550006', Body: 'STOP' }, { signature: 'invalid' });
      expect(forged.status).toBe(401);
      expect(await recipientStatus(recipient ?? 0)).toMatchObject({ status: 'active' });
      const stop = await twilio.sendInbound(url, { From: '+447700900202', To: '+15005550006', Body: 'stop' });
      expect(stop.status).toBe(200);
      expect(await recipientStatus(recipient ?? 0)).toMatchObject({ status: 'suppressed', suppressed_reason: 'replied STOP' });
      const start = await twilio.sendInbound(url, { From: '+447700900202', To: '+15005550006', Body: 'START' });
      expect(start.status).toBe(200);
      expect(await recipientStatus(recipient ?? 0)).toMatchObject({ status: 'active' });
      const help = await twilio.sendInbound(url, { From: '+447700900202', To: '+15005550006', Body: 'HELP' });
      expect(help.body).toContain('<Message>Lumenwork status alerts. Reply STOP to unsubscribe');
    });
  });

  describe('staff invitations with email live', () => {
    it('are emailed through the engine, and the emailed link opens the set-password page', async () => {
      const { signedInStaffOn } = await import('../helpers/staff.ts');
      const { ConsoleClient } = await import('../helpers/browser-less.ts');
      const owner = new ConsoleClient(server.url);
      owner.setCookie('candor_session', (await signedInStaffOn(database, 'owner')).token);
      const page = await owner.post('/console/staff?_action=inviteStaff', { email: 'new.responder@lumenwork.example', role: 'responder' });
      expect(page.html).toContain('The invitation email is on its way');
      await until(async () => resend.emailsTo('new.responder@lumenwork.example').length === 1, 'the invitation email');
      const email = resend.emailsTo('new.responder@lumenwork.example')[0];
      expect(email?.subject).toBe('You are invited to the Lumenwork trust center console');
      expect(email?.headers?.['List-Unsubscribe']).toBeUndefined();
      const link = /(http:\/\/\S+\/console\/link\/[a-z0-9.]+)/.exec(email?.text ?? '')?.[1] ?? '';
      const invited = new ConsoleClient(server.url);
      const res = await invited.get(new URL(link).pathname);
      expect(res.status).toBe(200);
      expect(res.html).toContain('new.responder@lumenwork.example');
    });
  });
});
