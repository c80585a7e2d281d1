/**
 * The notify-customers clock of a breach, against the built server and the
 * fake providers: it is met only when a notice reached everyone it was
 * queued for, as the deliveries recorded it (accepted by Resend or Slack,
 * or confirmed delivered by Resend's signed webhook). A targeted notice
 * that reached no one, and a notice of which one email bounced, are shown
 * as problems with who was reached per channel, on the incident page and
 * on the dashboard, never as met.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const WEBHOOK_SECRET = `whsec_${Buffer.from('breach-clock-webhook-secret-test').toString('base64')}`;
const breach = (title: string) => ({
  title,
  kind: 'breach',
  severity: 'critical',
  status: 'identified',
  'component:web-app': 'operational',
  body: 'We found unauthorised access to data exports.',
  breachAwareAt: new Date(Date.now() - 2 * 3_600_000).toISOString().slice(0, 16),
  breachNature: 'A leaked support credential was used to download workspace exports.',
  breachSubjects: 'not yet known',
  breachRecords: 'not yet known',
  breachConsequences: 'not yet known',
  breachMeasures: 'Credential revoked.',
});

const idFrom = (location: string | null) => /\/console\/incidents\/(\d+)/.exec(location ?? '')?.[1] ?? '';
const utc = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC`;

interface DeliveryFact {
  id: number;
  channel: string;
  status: string;
  sent_at: number | null;
  provider_message_id: string | null;
}
/** The deliveries of the incident's n-th notice (from 0), as recorded. */
function noticeDeliveries(db: Database, incidentId: string, n: number): Promise<{ notificationId: number; rows: DeliveryFact[] }> {
  return readRows(db, async (q) => {
    const u = q.t.incidentUpdates;
    const [update] = await q.db
      .select({ notificationId: u.notificationId })
      .from(u)
      .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(incidentId))))
      .orderBy(asc(u.publishedAt), asc(u.id))
      .limit(1)
      .offset(n);
    if (!update?.notificationId) return { notificationId: 0, rows: [] };
    const d = q.t.deliveries;
    const rows = await q.db
      .select({ id: d.id, channel: d.channel, status: d.status, sentAt: d.sentAt, providerMessageId: d.providerMessageId })
      .from(d)
      .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, update.notificationId)))
      .orderBy(asc(d.id));
    return {
      notificationId: update.notificationId,
      rows: rows.map((r) => ({
        id: r.id,
        channel: r.channel,
        status: r.status,
        sent_at: r.sentAt?.getTime() ?? null,
        provider_message_id: r.providerMessageId,
      })),
    };
  });
}

/** The clock table's rows: name → [state, done cell, state cell text]. */
function clocksOf(html: string): Record<string, { state: string; done: string; says: string }> {
  const rows = [
    ...html.matchAll(/<tr data-state="(\w+)"><th scope="row">([^<]+)<\/th><td>[^<]*<\/td><td>([^<]*)<\/td>\s*<td>([\s\S]*?)<\/td><\/tr>/g),
  ];
  return Object.fromEntries(rows.map((m) => [m[2], { state: m[1] ?? '', done: m[3] ?? '', says: text(m[4] ?? '').trim() }]));
}

const NOTIFY = 'Notify customers within 72 h';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let db: Database;
  let responder: ConsoleClient;

  beforeAll(async () => {
    resend = await startFakeResend();
    slack = await startFakeSlack();
    const port = await freePort();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: { ...providerEnv({ port, resend, slack, testKeys: true }), RESEND_WEBHOOK_SECRET: WEBHOOK_SECRET },
    });
    server = running.server;
    db = running.database;
    // everyone follows incidents: three email addresses and a Slack workspace
    await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'email', address: (i) => `reader${i}@customer.example` });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      address: () => 'C0BREACH',
      secret: () => 'xoxb-customer-workspace',
    });
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await running?.stop();
    await resend?.close();
    await slack?.close();
  });

  describe('a targeted breach notice that reached no one', () => {
    it('leaves the notify clock not met, says the notice reached no one, and the dashboard lists it', async () => {
      // a customer organisation whose domain no subscriber has: it has no verified member
      const quiet = await keepOrganisationOn(db, 'Quiet GmbH', { domains: ['quiet.example'] });
      const fields = { ...breach('Exports of one quiet customer'), [`organisation:${quiet}`]: 'yes' };
      const refused = await responder.post('/console/incidents/new?_action=publishIncident', fields);
      expect(refused.status).toBe(412);
      const res = await responder.post('/console/incidents/new?_action=publishIncident', { ...fields, confirmNoRecipients: 'yes' });
      expect(res.status).toBe(303);
      const id = idFrom(res.location);
      // what is recorded: a notice whose notification queued no delivery
      expect((await noticeDeliveries(db, id, 0)).rows).toEqual([]);

      const page = await responder.get(`/console/incidents/${id}`);
      const notify = clocksOf(page.html)[NOTIFY];
      expect(notify?.state).toBe('unreached');
      expect(notify?.done).toBe('');
      expect(notify?.says).toMatch(/^not met: the notices reached no one/);
      expect(notify?.says).toContain('reached no one: no recipient matched its audience, so nothing was queued');
      expect(notify?.says).not.toMatch(/\bmet\b(?!:)/);
      const t = text(page.html);
      expect(t).toMatch(
        /Initial notice · Identified \S+ \S+ UTC Reached no one · nothing was queued: no recipient matched its audience none none queued/,
      );

      const dashboard = await responder.get('/console');
      const item = [...dashboard.html.matchAll(/<li data-state="(\w+)">([\s\S]*?)<\/li>/g)].find(
        (m) => (m[2] ?? '').includes(`/console/incidents/${id}"`) && (m[2] ?? '').includes(NOTIFY),
      );
      expect(item?.[1]).toBe('unreached');
      expect(text(item?.[2] ?? '')).toMatch(
        /Exports of one quiet customer : Notify customers within 72 h not met: the notices reached no one by .* UTC/,
      );
    });
  });

  describe('a breach notice to subscribers through the providers', () => {
    let id = '';

    it('shows who was reached and who was not per channel, and the clock computed from those rows', async () => {
      const res = await responder.post('/console/incidents/new?_action=publishIncident', breach('Exports of every workspace'));
      expect(res.status).toBe(303);
      id = idFrom(res.location);
      await until(async () => {
        const { rows } = await noticeDeliveries(db, id, 0);
        return rows.length === 4 && rows.every((r) => r.status === 'sent');
      }, 'Resend and Slack accepted the four deliveries');
      const { notificationId, rows } = await noticeDeliveries(db, id, 0);
      const email = (i: number) => {
        const sent = resend.emails.find(
          (e) => e.to.includes(`reader${i}@customer.example`) && e.subject.includes('Exports of every workspace'),
        );
        if (!sent) throw new Error(`no email to reader${i}`);
        return sent;
      };
      // Resend confirms one delivery and reports a hard bounce for another, signed as Resend signs them
      const url = `${server.url}/webhooks/resend`;
      expect((await resend.postWebhook(url, WEBHOOK_SECRET, { type: 'email.delivered', email: email(0) })).status).toBe(200);
      expect((await resend.postWebhook(url, WEBHOOK_SECRET, { type: 'email.bounced', email: email(1) })).status).toBe(200);

      // the figures the page must show, from the rows as they now are
      const now = (await noticeDeliveries(db, id, 0)).rows;
      const count = (channel: string, ...statuses: string[]) =>
        now.filter((r) => r.channel === channel && statuses.includes(r.status)).length;
      expect([count('email', 'sent', 'delivered'), count('email', 'delivered'), count('email', 'failed')]).toEqual([2, 1, 1]);
      expect(count('slack', 'sent', 'delivered')).toBe(1);
      const reached = now.filter((r) => r.status === 'sent' || r.status === 'delivered').length;

      const page = await responder.get(`/console/incidents/${id}`);
      const notify = clocksOf(page.html)[NOTIFY];
      expect(notify?.state).toBe('incomplete');
      expect(notify?.done).toBe('');
      expect(notify?.says).toMatch(/^not met: not everyone was reached/);
      expect(notify?.says).toContain(`reached ${reached} of ${rows.length}; 1 failed`);
      const t = text(page.html);
      expect(t).toContain(`Not everyone reached · ${reached} of ${rows.length}; 1 failed last reached`);
      expect(t).toContain('Email: 2 of 3 reached (1 confirmed delivered), 1 failed');
      expect(t).toContain('Slack: 1 of 1 reached');
      expect(page.html).toContain(`href="/console/deliveries/${notificationId}"`);
      expect(page.html).toContain(`href="/console/deliveries/${notificationId}?status=failed"`);

      // the deliveries page lists the failure and why
      const failed = await responder.get(`/console/deliveries/${notificationId}?status=failed`);
      const bounced = now.find((r) => r.status === 'failed');
      expect(failed.html).toMatch(new RegExp(`<tr data-status="failed">\\s*<td>${bounced?.id}</td>`));
      expect(text(failed.html)).toContain('bounced (Permanent)');

      const dashboard = await responder.get('/console');
      const item = [...dashboard.html.matchAll(/<li data-state="(\w+)">([\s\S]*?)<\/li>/g)].find(
        (m) => (m[2] ?? '').includes(`/console/incidents/${id}"`) && (m[2] ?? '').includes(NOTIFY),
      );
      expect(item?.[1]).toBe('incomplete');
      expect(text(item?.[2] ?? '')).toContain('not met: not everyone was reached');
    });

    it('a later notice that reaches everyone it was queued for meets it, at its last acceptance; the first still shows its loss', async () => {
      const res = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        incidentId: id,
        status: 'monitoring',
        body: 'The exported names could be used for phishing.',
      });
      expect(res.status).toBe(303);
      // the bounced address is quarantined: notice 2 is queued for the other three
      await until(async () => {
        const { rows } = await noticeDeliveries(db, id, 1);
        return rows.length === 3 && rows.every((r) => r.status === 'sent');
      }, 'notice 2 accepted for the three reachable addresses');
      const lastAccepted = Math.max(...(await noticeDeliveries(db, id, 1)).rows.map((r) => r.sent_at ?? 0));
      const page = await responder.get(`/console/incidents/${id}`);
      const notify = clocksOf(page.html)[NOTIFY];
      expect(notify?.state).toBe('met');
      expect(notify?.done).toBe(utc(lastAccepted));
      expect(notify?.says).toContain('Notice 2');
      expect(notify?.says).toContain('reached all 3 recipients');
      expect(notify?.says).toMatch(/Before it: Initial notice .* reached 3 of 4; 1 failed/);
      expect(text(page.html)).toContain('Not everyone reached · 3 of 4; 1 failed');
    });
  });
});
