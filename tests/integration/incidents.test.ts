/**
 * The core loop: a responder declares an incident in the console, updates and
 * resolves it; each update reaches the right subscribers (topic, components,
 * organisations) on their channels, Slack replies thread under the root, and
 * the public status page, incident page, feeds and status.json show it.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, count, eq } from 'drizzle-orm';
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

/** The audit entries about a target, oldest first. */
const auditOf = (database: Database, target: string) =>
  readRows(database, (q) =>
    q.db
      .select({ action: q.t.auditLog.action })
      .from(q.t.auditLog)
      .where(and(eq(q.t.auditLog.trustCenterId, q.trustCenter), eq(q.t.auditLog.target, target)))
      .orderBy(asc(q.t.auditLog.id)),
  );

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let db: Database;
  let responder: ConsoleClient;
  let viewer: ConsoleClient;

  beforeAll(async () => {
    resend = await startFakeResend();
    slack = await startFakeSlack();
    const port = await freePort();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: providerEnv({ port, resend, slack, testKeys: true }),
    });
    server = running.server;
    db = running.database;
    // who follows what: all of incidents, only the API, only the web app, maintenance only, and a Slack workspace
    await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'email', address: (i) => `all${i}@customer.example` });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 2,
      channel: 'email',
      component: 'public-api',
      address: (i) => `api${i}@customer.example`,
    });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 2,
      channel: 'email',
      component: 'community',
      address: (i) => `forum${i}@customer.example`,
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', topic: 'maintenance', address: () => 'maint@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      address: () => 'C0INCIDENTS',
      secret: () => 'xoxb-customer-workspace',
    });
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
    viewer = new ConsoleClient(server.url);
    viewer.setCookie('candor_session', (await signedInStaffOn(db, 'viewer')).token);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await running?.stop();
    await resend?.close();
    await slack?.close();
  });

  let incidentId = '';
  const XSS = '<script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3))';
  const OUTAGE = {
    title: 'Elevated API errors',
    kind: 'outage',
    severity: 'major',
    status: 'investigating',
    'component:public-api': 'partial_outage',
    'component:web-app': 'degraded',
    body: `We are investigating errors on the API. ${XSS}`,
  };

  describe('declare, update, resolve', () => {
    it('previews each channel and the recipients before publishing', async () => {
      const preview = await responder.post('/console/incidents/new?_action=previewIncident', OUTAGE);
      expect(preview.status).toBe(200);
      const t = text(preview.html);
      // everyone following incidents, plus the API followers; not the forum-only or maintenance-only ones
      expect(t).toContain('Recipients: email 5 · sms 0 · slack 1 · webhook 0');
      expect(t).toMatch(/Email Subject: \[Partial outage\] Elevated API errors/);
      expect(preview.html).not.toContain('<script>alert(1)');
      expect(preview.html).toContain('value="Elevated API errors"');
    });

    it('a responder declares a major outage on two services; it fans out to the right subscribers', async () => {
      const published = await responder.post('/console/incidents/new?_action=publishIncident', OUTAGE);
      expect(published.status).toBe(303);
      incidentId = /\/console\/incidents\/(\d+)/.exec(published.location ?? '')?.[1] ?? '';
      expect(incidentId).not.toBe('');
      await until(() => resend.emails.length === 5, 'five emails');
      const to = resend.emails.flatMap((e) => e.to).sort();
      expect(to).toEqual([
        'all0@customer.example',
        'all1@customer.example',
        'all2@customer.example',
        'api0@customer.example',
        'api1@customer.example',
      ]);
      const email = resend.emails[0];
      expect(email?.subject).toBe('[Partial outage] Elevated API errors — Investigating');
      expect(email?.html).not.toMatch(/<script|<img|href="javascript:/i);
      expect(email?.headers?.['List-Unsubscribe']).toMatch(/^<http:\/\/127\.0\.0\.1:\d+\/unsubscribe\//);
      await until(() => slack.messages.length === 1, 'the Slack root');
      const page = await responder.get(`/console/incidents/${incidentId}`);
      expect(text(page.html)).toMatch(/Next update promised by \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);
    });

    it('shows on the public status page, its own page, the feeds and status.json, with markdown made safe', async () => {
      const status = await fetch(`${server.url}/status`);
      const html = await status.text();
      expect(html).toContain('Partial outage: Public API');
      expect(html).toMatch(
        /<li class="component" data-component="public-api" data-state="partial_outage">\s*<p class="component-head"><span class="component-name">Public API<\/span> <span class="component-state state-partial_outage">Partial outage<\/span>/,
      );
      expect(html).toContain(`href="/incidents/${incidentId}"`);
      const page = await (await fetch(`${server.url}/incidents/${incidentId}`)).text();
      expect(page).toContain('We are investigating errors on the API.');
      expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(page).not.toMatch(/<script>alert|<img src=x|href="javascript:/);
      expect(page).toMatch(/Next update by <time datetime=/);
      const json = (await (await fetch(`${server.url}/api/v1/status.json`)).json()) as {
        overall: string;
        openIncidents: { id: number; status: string }[];
      };
      expect(json.overall).toBe('outage');
      expect(json.openIncidents).toEqual([expect.objectContaining({ id: Number(incidentId), status: 'investigating' })]);
      const rss = await (await fetch(`${server.url}/feeds/incidents.xml`)).text();
      expect(rss).toContain('<title>Elevated API errors (Investigating)</title>');
      expect(rss).not.toContain('<script>');
    });

    it('an update goes into the Slack thread and edits the root; resolving returns services to operational', async () => {
      const update = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'identified',
        body: 'A faulty deploy of the rate limiter. Rolling back.',
      });
      expect(update.status).toBe(303);
      await until(() => slack.messages.length === 2, 'the Slack reply');
      const [root, reply] = slack.messages;
      expect(reply?.threadTs).toBe(root?.ts);
      await until(() => (slack.updates?.length ?? 0) >= 1, 'the root edit');
      const resolved = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'resolved',
        body: 'Rolled back; error rates are normal.',
      });
      expect(resolved.status).toBe(303);
      await until(() => resend.emails.length === 15, 'three rounds of five emails');
      // rounds are sent as they become due, and two rounds' batches may arrive in either order
      const subjects = resend.emails.map((e) => e.subject);
      expect(subjects.filter((s) => s === '[Partial outage] Elevated API errors — Resolved')).toHaveLength(5);
      expect(subjects.filter((s) => s === '[Partial outage] Elevated API errors — Identified')).toHaveLength(5);
      const status = await (await fetch(`${server.url}/status`)).text();
      expect(status).toContain('All services are operational');
      expect(status).toContain('Past 90 days');
      const audit = await auditOf(db, `incident:${incidentId}`);
      expect(audit).toEqual([{ action: 'incidents.declared' }, { action: 'incidents.updated' }, { action: 'incidents.resolved' }]);
    });

    it('refuses an update to a resolved incident, with a clear message', async () => {
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'monitoring',
        body: 'Again?',
      });
      expect(text(res.html)).toContain('This incident is resolved: it takes no more updates.');
    });
  });

  const BREACH = {
    title: 'Unauthorised access to exports',
    kind: 'breach',
    severity: 'critical',
    status: 'identified',
    'component:web-app': 'operational',
    body: 'We found unauthorised access to data exports of your workspace.',
    breachAwareAt: new Date(Date.now() - 2 * 3_600_000).toISOString().slice(0, 16),
    breachNature: 'A leaked support credential was used to download workspace exports.',
    breachSubjects: 'End users of one workspace, about 1,200 people.',
    breachRecords: 'Names and email addresses, about 1,200 records.',
    breachConsequences: 'not yet known',
    breachMeasures: 'Credential revoked; exports disabled; all support sessions ended.',
  };

  describe('data breaches', () => {
    it('refuses the first notice while a required Art. 33(3) field is empty, naming it', async () => {
      const res = await responder.post('/console/incidents/new?_action=publishIncident', { ...BREACH, breachMeasures: '' });
      expect(text(res.html)).toContain('Fill in: Measures taken or proposed');
      expect(text(res.html).replaceAll('&quot;', '"')).toContain('Write "not yet known" where that is the truth.');
    });

    it('carries the facts, the DPO contact and "not yet known" to subscribers, and shows the clocks', async () => {
      const res = await responder.post('/console/incidents/new?_action=publishIncident', BREACH);
      expect(res.status).toBe(303);
      const id = /\/console\/incidents\/(\d+)/.exec(res.location ?? '')?.[1] ?? '';
      const subject = '[Data breach notice] Unauthorised access to exports';
      await until(() => resend.emails.some((e) => e.subject.includes(subject)), 'the breach notice');
      const notice = resend.emails.find((e) => e.subject.includes(subject));
      expect(notice?.text).toContain('Likely consequences: not yet known');
      expect(notice?.text).toContain('dpo@lumenwork.example');
      expect(notice?.subject).toBe(`${subject} — Initial notice: Identified`);
      // Art. 33(4): what was not known goes out as a further, numbered notice
      const composer = await responder.get(`/console/incidents/${id}`);
      expect(text(composer.html)).toContain('This will go out as notice 2');
      const followUp = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        incidentId: id,
        status: 'monitoring',
        body: 'Likely consequences are now known: the exported names could be used for phishing.',
      });
      expect(followUp.status).toBe(303);
      await until(() => resend.emails.some((e) => e.subject === `${subject} — Notice 2: Monitoring`), 'the second notice');
      // the notify clock is met by what the deliveries recorded: wait until the providers took every one
      const firstNotice = () =>
        readRows(db, async (q) => {
          const { deliveries: d, incidentUpdates: u } = q.t;
          const [first] = await q.db
            .select({ notificationId: u.notificationId })
            .from(u)
            .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(id))))
            .orderBy(asc(u.publishedAt), asc(u.id))
            .limit(1);
          return q.db
            .select({ status: d.status, channel: d.channel, sentAt: d.sentAt })
            .from(d)
            .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, first?.notificationId ?? -1)));
        });
      await until(
        async () => (await firstNotice()).every((d) => d.status === 'sent' || d.status === 'delivered'),
        'the first notice accepted for everyone',
      );
      const rows = await firstNotice();
      // everyone following incidents for the web app: three email addresses and the Slack workspace
      expect(rows.map((d) => d.channel).sort()).toEqual(['email', 'email', 'email', 'slack']);
      const lastAccepted = new Date(Math.max(...rows.map((d) => d.sentAt?.getTime() ?? 0)));
      const page = await responder.get(`/console/incidents/${id}`);
      expect(text(page.html)).toMatch(/Notice 2 · Monitoring .* Initial notice · Identified/);
      const clocks = [...page.html.matchAll(/<tr data-state="(\w+)"><th scope="row">([^<]+)<\/th>/g)].map((m) => [m[2], m[1]]);
      expect(clocks).toEqual([
        ['Detect within 1 h', 'unknown'],
        ['Assess within 6 h of awareness', 'met'],
        ['Notify customers within 72 h', 'met'],
        ['Notify the supervisory authority within 72 h (GDPR Art. 33)', 'due'],
      ]);
      // met when the last of the four was accepted, and it says so
      const notify = /<tr data-state="met"><th scope="row">Notify customers within 72 h<\/th><td>[^<]*<\/td><td>([^<]*)<\/td>/.exec(
        page.html,
      );
      expect(notify?.[1]).toBe(`${lastAccepted.toISOString().replace('T', ' ').slice(0, 16)} UTC`);
      const t = text(page.html);
      expect(t).toMatch(/Initial notice \([^)]+\) reached all 4 recipients; the last was reached/);
      expect(t).toMatch(/Whom each notice reached/);
      expect(t).toMatch(/Initial notice · Identified .*? Reached everyone · all 4 .*? Email: 3 of 3 reached Slack: 1 of 1 reached/);
      const marked = await responder.post(`/console/incidents/${id}?_action=markAuthorityNotified`, { incidentId: id });
      expect(text(marked.html)).toContain('Recorded: the supervisory authority was notified.');
      expect(marked.html).toMatch(/<tr data-state="met"><th scope="row">Notify the supervisory authority/);
      expect((await auditOf(db, `incident:${id}`)).filter((e) => e.action === 'incidents.authority_notified')).toHaveLength(1);
    });
  });

  describe('guards', () => {
    it('flags personal data before publishing; publishing anyway needs a confirmation, which is audited', async () => {
      const body = 'Affected account: jane.doe@customer.example, card 4242 4242 4242 4242.';
      const fields = {
        title: 'Billing page errors',
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:web-app': 'degraded',
        body,
      };
      const refused = await responder.post('/console/incidents/new?_action=publishIncident', fields);
      expect(text(refused.html)).toContain('looks like it contains personal data or a secret');
      const billing = await readRows(db, (q) =>
        q.db
          .select({ n: count() })
          .from(q.t.incidents)
          .where(and(eq(q.t.incidents.trustCenterId, q.trustCenter), eq(q.t.incidents.title, 'Billing page errors'))),
      );
      expect(billing.map((r) => Number(r.n))).toEqual([0]);
      const confirmed = await responder.post('/console/incidents/new?_action=publishIncident', { ...fields, confirmPersonalData: 'yes' });
      expect(confirmed.status).toBe(303);
      const entries = await readRows(db, (q) =>
        q.db
          .select({ summary: q.t.auditLog.summary })
          .from(q.t.auditLog)
          .where(and(eq(q.t.auditLog.trustCenterId, q.trustCenter), eq(q.t.auditLog.action, 'incidents.personal_data_confirmed'))),
      );
      expect(entries).toHaveLength(1);
      const summary = JSON.stringify(entries[0]?.summary);
      expect(summary).not.toContain('jane.doe');
      expect(summary).not.toContain('4242');
    });

    it('a targeted breach notice reaches only the chosen organisation and stays off the public page', async () => {
      // staff placed the first subscriber's address in Customer Ltd (tests/integration/organisations.test.ts covers how)
      const customer = await keepOrganisationOn(db, 'Customer Ltd', { recipients: [1] });
      const res = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...BREACH,
        title: 'Access to one customer export',
        [`organisation:${customer}`]: 'yes',
      });
      expect(res.status).toBe(303);
      const notices = () => resend.emails.filter((e) => e.subject.includes('[Data breach notice] Access to one customer export'));
      await until(() => notices().length === 1, 'one breach notice');
      await new Promise((r) => setTimeout(r, 500));
      expect(notices().map((e) => e.to)).toEqual([['all0@customer.example']]);
      const id = /\/console\/incidents\/(\d+)/.exec(res.location ?? '')?.[1] ?? '';
      expect((await fetch(`${server.url}/incidents/${id}`)).status).toBe(404);
      expect(await (await fetch(`${server.url}/status`)).text()).not.toContain('Access to one customer export');
    });

    it('a viewer sees incidents but cannot declare or update them', async () => {
      expect((await viewer.get('/console/incidents')).status).toBe(200);
      expect((await viewer.get('/console/incidents/new')).status).toBe(403);
      expect(
        (
          await viewer.post('/console/incidents/new?_action=publishIncident', {
            title: 'x',
            kind: 'outage',
            severity: 'minor',
            status: 'investigating',
            body: 'x',
          })
        ).status,
      ).toBe(403);
    });
  });

  describe('postmortems', () => {
    it('are published once for a resolved incident, announced in its thread and shown on its page', async () => {
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishPostmortem`, {
        incidentId,
        postmortem:
          '## Timeline\n\nA rate-limiter deploy at 14:02 UTC rejected valid requests.\n\n## What changes\n\n- Canary deploys for the rate limiter.',
      });
      // five emails and the Slack thread
      expect(text(res.html)).toContain('The postmortem is published: 6 deliveries queued.');
      const emails = () => resend.emails.filter((e) => e.subject.includes('Postmortem: Elevated API errors'));
      await until(() => emails().length === 5, 'the postmortem emails');
      const posted = () => slack.messages.find((m) => m.threadTs !== undefined && m.text?.includes('Postmortem: Elevated API errors'));
      await until(() => posted() !== undefined, 'the postmortem in Slack');
      expect(posted()?.threadTs).toBe(slack.messages[0]?.ts);
      const page = await (await fetch(`${server.url}/incidents/${incidentId}`)).text();
      expect(page).toContain('Canary deploys for the rate limiter.');
      const again = await responder.post(`/console/incidents/${incidentId}?_action=publishPostmortem`, { incidentId, postmortem: 'again' });
      expect(text(again.html)).toContain('This incident already has a postmortem.');
    });
  });

  describe('redaction', () => {
    it('"Redact them" replaces what the guard found and shows the cleaned text for publishing', async () => {
      const body = 'Customer jane.doe@customer.example reported it; token sk_live_51Habcdefghijklmnopqrstu was rotated.';
      const res = await responder.post('/console/incidents/new?_action=previewIncident', {
        title: 'Login errors',
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:web-app': 'degraded',
        body,
        redact: 'yes',
      });
      expect(res.status).toBe(200);
      const textarea = /<textarea name="body"[^>]*>([^<]*)<\/textarea>/.exec(res.html)?.[1] ?? '';
      expect(textarea).toContain('[email redacted]');
      expect(textarea).toContain('[secret redacted]');
      expect(textarea).not.toContain('jane.doe');
      expect(res.html).not.toContain('looks like it contains personal data');
    });
  });
});
