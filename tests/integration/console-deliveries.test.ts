/**
 * The console's view of the engine: a test send from Settings goes through
 * the outbox (log transport without keys, a real signed webhook with one),
 * Deliveries shows its progress and attempts, failed ones can be retried,
 * and each of these is audited. On each engine (tests/helpers/engine-server.ts):
 * SQLite, and PostgreSQL under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, eq } from 'drizzle-orm';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import type { RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

type Receiver = Awaited<ReturnType<typeof startWebhookReceiver>>;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let receiver: Receiver;
  let db: Database;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    running = await engine.start({ env: { CANDOR_WEBHOOK_ALLOW_HOSTS: new URL(receiver.url).host, CANDOR_LEASE_SECONDS: '5' } });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
    await receiver?.close();
  });

  const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
  const audit = (action: string) =>
    readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ actorId: a.actorId, target: a.target, summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)));
    });
  async function until(check: () => Promise<boolean> | boolean, what: string, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  describe('settings', () => {
    it('shows which channels are live', async () => {
      const admin = new ConsoleClient(server.url);
      admin.setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token);
      const page = await admin.get('/console/settings');
      expect(page.status).toBe(200);
      expect(text(page.html)).toMatch(/email not configured: messages are logged log transport/);
      expect(text(page.html)).toMatch(/webhook live signed webhooks/);
    });

    it('a test email without provider keys is kept by the log transport and shown in the console; bad addresses are refused', async () => {
      const { token, staffId } = await signedInStaffOn(db, 'admin');
      const admin = new ConsoleClient(server.url);
      admin.setCookie('candor_session', token);
      const bad = await admin.post('/console/settings?_action=sendTestMessage', { channel: 'email', address: 'not an address' });
      expect(text(bad.html)).toContain('Enter a valid email address.');
      const badHook = await admin.post('/console/settings?_action=sendTestMessage', {
        channel: 'webhook',
        address: 'http://169.254.169.254/latest/meta-data',
      });
      expect(text(badHook.html)).toContain('This URL cannot be used: it must use https://.');
      const sent = await admin.post('/console/settings?_action=sendTestMessage', { channel: 'email', address: 'oncall@lumenwork.example' });
      const link = /href="\/console\/deliveries\/(\d+)"/.exec(sent.html)?.[1];
      expect(link).toBeDefined();
      await until(
        async () => text((await admin.get(`/console/deliveries/${link}`)).html).includes('1 of 1 finished'),
        'the test email to be logged',
      );
      const log = await admin.get('/console/deliveries/log');
      expect(log.html).toContain('on…@lumenwork.example');
      expect(log.html).toContain('test notification');
      expect(log.html).not.toContain('oncall@lumenwork.example');
      expect(await audit('settings.test_sent')).toEqual([expect.objectContaining({ actorId: staffId, target: `notification:${link}` })]);
    });
  });

  describe('logged messages', () => {
    it('hide the links and codes that act for a recipient from staff who may not manage subscribers', async () => {
      const sms = { body: '123456 is your Lumenwork status alerts code. It expires in 10 minutes.', link: '' };
      const email = {
        subject: 'Subprocessor change',
        html: '<p><a href="http://127.0.0.1/objections/1.7.MACmac">Object</a></p>',
        text: 'Unsubscribe: http://127.0.0.1/unsubscribe/7.SECRETTOKENabc_-123 Object: http://127.0.0.1/objections/1.7.MACmac',
        headers: {},
      };
      await writeRows(db, async (q) => {
        const at = new Date();
        await q.db.insert(q.t.loggedMessages).values([
          { channel: 'sms', to: '+4…99', payload: sms, at, trustCenterId: q.trustCenter },
          { channel: 'email', to: 'cu…@customer.example', payload: email, at, trustCenterId: q.trustCenter },
        ]);
      });
      const as = async (role: 'viewer' | 'admin') => {
        const client = new ConsoleClient(server.url);
        client.setCookie('candor_session', (await signedInStaffOn(db, role)).token);
        return (await client.get('/console/deliveries/log')).html;
      };
      const viewer = await as('viewer');
      expect(viewer).not.toContain('SECRETTOKEN');
      expect(viewer).not.toContain('MACmac');
      expect(viewer).not.toContain('123456');
      expect(viewer).toContain('/unsubscribe/[hidden]');
      const admin = await as('admin');
      expect(admin).toContain('SECRETTOKENabc_-123');
      expect(admin).toContain('123456 is your');
    });
  });

  describe('deliveries', () => {
    it('a webhook test is signed; a failed one can be retried by a responder, and the retry is audited', async () => {
      const admin = new ConsoleClient(server.url);
      admin.setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token);
      receiver.respondWith(400);
      const sent = await admin.post('/console/settings?_action=sendTestMessage', {
        channel: 'webhook',
        address: `${receiver.url}/hooks/candor`,
      });
      const id = /href="\/console\/deliveries\/(\d+)"/.exec(sent.html)?.[1] ?? '';
      const secret = /<code id="webhook-secret">([^<]+)<\/code>/.exec(sent.html)?.[1] ?? '';
      expect(secret).toMatch(/^whsec_/);
      const status = async () => {
        const rows = await readRows(db, (q) => {
          const d = q.t.deliveries;
          return q.db
            .select({ status: d.status, attempts: d.attempts })
            .from(d)
            .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, Number(id))));
        });
        expect(rows).toHaveLength(1);
        return rows[0]?.status;
      };
      await until(async () => (await status()) === 'failed', 'the 400 to fail the delivery');
      const first = receiver.received[0];
      expect(first).toBeDefined();
      expect(() => new Webhook(secret).verify(first?.body ?? '', first?.headers ?? {})).not.toThrow();

      const responder = new ConsoleClient(server.url);
      const { staffId, token } = await signedInStaffOn(db, 'responder');
      responder.setCookie('candor_session', token);
      const page = await responder.get(`/console/deliveries/${id}`);
      expect(page.status).toBe(200);
      expect(text(page.html)).toMatch(/failed.*endpoint answered 400/);
      expect(page.html).toContain('HTTP 400');
      receiver.respondWith(200);
      const retried = await responder.post(`/console/deliveries/${id}?_action=retryFailedDeliveries`, { notificationId: id });
      expect(text(retried.html)).toContain('1 failed deliveries are queued again.');
      await until(async () => (await status()) === 'sent', 'the retried webhook to be sent');
      expect(receiver.received).toHaveLength(2);
      // the same message id both times: the receiver can tell it is a repeat
      expect(receiver.received[1]?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
      expect(await audit('deliveries.retried')).toEqual([expect.objectContaining({ actorId: staffId, target: `notification:${id}` })]);
      const progress = await responder.get(`/console/deliveries/progress.json?ids=${id}`);
      expect(JSON.parse(progress.html)).toEqual([expect.objectContaining({ id: Number(id), total: 1, finished: 1 })]);
    });

    it('a delivery whose sender crashed mid-send shows the questions to the provider as such, not as sends', async () => {
      const admin = new ConsoleClient(server.url);
      admin.setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token);
      receiver.respondWith(200);
      const sent = await admin.post('/console/settings?_action=sendTestMessage', {
        channel: 'webhook',
        address: `${receiver.url}/hooks/crash`,
      });
      const id = Number(/href="\/console\/deliveries\/(\d+)"/.exec(sent.html)?.[1] ?? '');
      const sentRow = () =>
        readRows(db, (q) => {
          const d = q.t.deliveries;
          return q.db
            .select({ id: d.id, status: d.status })
            .from(d)
            .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, id)));
        });
      await until(async () => (await sentRow())[0]?.status === 'sent', 'the test webhook to be sent');
      const deliveryId = (await sentRow())[0]?.id ?? 0;
      // what a crash leaves on a channel that reconciles: the dead sender's claim counted one send, then the
      // provider was asked twice (no answer yet, then: it has the message), and nothing was sent again
      await writeRows(db, async (q) => {
        const { deliveries: d, deliveryAttempts: a } = q.t;
        await q.db.delete(a).where(and(eq(a.trustCenterId, q.trustCenter), eq(a.deliveryId, deliveryId)));
        const row = { deliveryId, httpStatus: null, providerCode: null, trustCenterId: q.trustCenter, kind: 'reconcile' as const };
        await q.db.insert(a).values([
          { ...row, at: new Date(), outcome: 'retry', durationMs: 40, error: 'listing not ready' },
          { ...row, at: new Date(), outcome: 'sent', durationMs: 35, error: null },
        ]);
        await q.db
          .update(d)
          .set({ attempts: 1 })
          .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.id, deliveryId)));
      });
      const page = text((await admin.get(`/console/deliveries/${id}`)).html);
      expect(page).toMatch(/\b1 \+ 2 asked the provider\b/);
      expect(page).toMatch(/asked the provider: no answer yet, asking again later: listing not ready in 40 ms/);
      expect(page).toMatch(/asked the provider: it already has the message, not sent again in 35 ms/);
      expect(page).not.toMatch(/: sent in 35 ms/);
    });

    it('a viewer sees deliveries but cannot retry them', async () => {
      const viewer = new ConsoleClient(server.url);
      viewer.setCookie('candor_session', (await signedInStaffOn(db, 'viewer')).token);
      expect((await viewer.get('/console/deliveries')).status).toBe(200);
      expect((await viewer.post('/console/deliveries?_action=retryFailedDeliveries', { notificationId: '1' })).status).toBe(403);
    });
  });
});
