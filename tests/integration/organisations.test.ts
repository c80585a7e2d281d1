/**
 * Targeted breach notices reach only the members of a customer organisation
 * that Candor verified: confirmed email addresses in one of the domains staff
 * keep for it, and addresses staff assigned to it (or whose claim staff
 * approved). What a subscriber types as their company grants nothing. Every
 * person here subscribes through the public sign-up on the channel they use;
 * what reaches them is read at the fake providers, and what was enqueued in
 * the database. On each engine (tests/helpers/engine-server.ts): SQLite, and
 * PostgreSQL under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import type { ChannelName } from '../../db/schema/notify.ts';
import { recipientToken } from '../../src/core/notify/links.ts';
import { addressHash } from '../../src/core/notify/recipients.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let db: Database;
  let admin: ConsoleClient;
  let responder: ConsoleClient;

  beforeAll(async () => {
    resend = await startFakeResend();
    twilio = await startFakeTwilio();
    slack = await startFakeSlack();
    receiver = await startWebhookReceiver();
    const port = await freePort();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: {
        ...providerEnv({ port, resend, twilio, slack, testKeys: true }),
        CANDOR_WEBHOOK_ALLOW_HOSTS: `${new URL(receiver.url).host},${new URL(slack.url).host}`,
      },
    });
    server = running.server;
    db = running.database;
    admin = new ConsoleClient(server.url);
    admin.setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token);
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await running?.stop();
    await Promise.all([resend?.close(), twilio?.close(), slack?.close(), receiver?.close()]);
  });

  // ---------------------------------------------------------------------------------------------
  // Signing up as a customer would, through /subscribe

  async function subscribe(fields: { channel: string; address: string; organisation?: string }) {
    const body = new URLSearchParams({ channel: fields.channel, address: fields.address, topics: 'incidents' });
    if (fields.organisation) body.set('organisation', fields.organisation);
    const res = await fetch(`${server.url}/subscribe?_action=subscribe`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url, 'sec-fetch-site': 'same-origin' },
      body: body.toString(),
    });
    return { status: res.status, html: await res.text() };
  }

  async function confirmedEmail(address: string, organisation?: string): Promise<void> {
    await subscribe({ channel: 'email', address, ...(organisation ? { organisation } : {}) });
    let link = '';
    await until(() => {
      link = /(\/subscribe\/confirm\/[a-z0-9.]+)/.exec(resend.emailsTo(address)[0]?.text ?? '')?.[1] ?? '';
      return link !== '';
    }, `the confirmation email to ${address}`);
    const client = new ConsoleClient(server.url);
    const confirmed = await client.post(`${link}?_action=confirmEmail`, { token: link.split('/').at(-1) ?? '' });
    expect(text(confirmed.html)).toContain('You are subscribed.');
  }

  async function pendingEmail(address: string, organisation?: string): Promise<void> {
    await subscribe({ channel: 'email', address, ...(organisation ? { organisation } : {}) });
    await until(() => resend.emailsTo(address).length > 0, `the confirmation email to ${address}`);
  }

  async function confirmedSms(number: string, organisation?: string): Promise<void> {
    const asked = await subscribe({ channel: 'sms', address: number, ...(organisation ? { organisation } : {}) });
    const challenge = /name="challengeId" value="([a-z0-9]+)"/.exec(asked.html)?.[1] ?? '';
    let code = '';
    await until(() => {
      code = /\b(\d{6})\b/.exec(twilio.messagesTo(number)[0]?.body ?? '')?.[1] ?? '';
      return code !== '';
    }, `the code SMS to ${number}`);
    const client = new ConsoleClient(server.url);
    const ok = await client.post(`/subscribe?challenge=${challenge}&_action=confirmSmsCode`, { challengeId: challenge, code });
    expect(text(ok.html)).toContain('Your number is confirmed.');
  }

  async function slackHook(channel: string, organisation?: string): Promise<string> {
    const hook = slack.registerIncomingWebhook(channel);
    const ok = await subscribe({ channel: 'slack-webhook', address: hook, ...(organisation ? { organisation } : {}) });
    expect(text(ok.html)).toContain('Your Slack channel is subscribed');
    return hook;
  }

  async function webhookEndpoint(path: string, organisation?: string): Promise<string> {
    receiver.respondWith(204);
    const url = `${receiver.url}${path}`;
    const ok = await subscribe({ channel: 'webhook', address: url, ...(organisation ? { organisation } : {}) });
    expect(text(ok.html)).toContain('Your endpoint answered our signed event');
    return url;
  }

  /** The recipient an address became, and its subscriber: what the console's search finds. */
  async function recipientOf(channel: ChannelName, address: string): Promise<{ id: number; subscriberId: number }> {
    const [row] = await readRows(db, (q) => {
      const r = q.t.recipients;
      return q.db
        .select({ id: r.id, subscriberId: r.subscriberId })
        .from(r)
        .where(
          and(eq(r.trustCenterId, q.trustCenter), eq(r.channel, channel), eq(r.addressHash, addressHash(TEST_KEYS, channel, address))),
        );
    });
    if (!row?.subscriberId) throw new Error(`no ${channel} recipient ${address}`);
    return { id: row.id, subscriberId: row.subscriberId };
  }

  // ---------------------------------------------------------------------------------------------
  // What reached whom

  const TITLE = 'Unauthorised access to Acme Bank exports';
  const isNotice = (subjectOrText: string | undefined, title = TITLE) => (subjectOrText ?? '').includes(title);
  const emailsOf = (address: string, title = TITLE) => resend.emailsTo(address).filter((e) => isNotice(e.subject, title));
  const smsOf = (number: string, title = TITLE) => twilio.messagesTo(number).filter((m) => isNotice(m.body, title));
  const slackOf = (hook: string, title = TITLE) =>
    slack.webhookPosts.filter((p) => p.url === hook && isNotice(JSON.stringify(p.body), title));
  const webhooksOf = (url: string, title = TITLE) =>
    receiver.received.filter((r) => `${receiver.url}${r.path}` === url && r.body.includes(title.replaceAll('/', '\\/')));

  /** The recipients a published incident update was enqueued for, by channel. */
  async function enqueued(incidentId: string, nth = 0): Promise<{ recipients: (number | null)[]; byChannel: Record<string, number> }> {
    const rows = await readRows(db, async (q) => {
      const u = q.t.incidentUpdates;
      const d = q.t.deliveries;
      const [update] = await q.db
        .select({ notificationId: u.notificationId })
        .from(u)
        .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(incidentId))))
        .orderBy(asc(u.id))
        .limit(1)
        .offset(nth);
      if (!update?.notificationId) return [];
      return q.db
        .select({ recipientId: d.recipientId, channel: d.channel })
        .from(d)
        .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, update.notificationId)))
        .orderBy(asc(d.recipientId));
    });
    const byChannel: Record<string, number> = {};
    for (const r of rows) byChannel[r.channel] = (byChannel[r.channel] ?? 0) + 1;
    return { recipients: rows.map((r) => r.recipientId), byChannel };
  }

  /** The audit entries of an action, oldest first, each summary as JSON text. */
  const auditOf = async (action: string) => {
    const rows = await readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ actorId: a.actorId, target: a.target, summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)))
        .orderBy(asc(a.id));
    });
    return rows.map((r) => ({ ...r, summary: JSON.stringify(r.summary) }));
  };

  /** Incidents with this title. */
  const incidentsTitled = (title: string) =>
    readRows(db, (q) => q.db.$count(q.t.incidents, and(eq(q.t.incidents.trustCenterId, q.trustCenter), eq(q.t.incidents.title, title))));

  const breach = (title = TITLE) => ({
    title,
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
    breachMeasures: 'Credential revoked; exports disabled.',
  });
  const idFrom = (location: string | null, kind: 'incidents' | 'organisations') =>
    new RegExp(`/console/${kind}/(\\d+)`).exec(location ?? '')?.[1] ?? '';

  // The people: a stranger who only claims to be at Acme Bank, on every channel they can confirm,
  // and Acme Bank's verified member, on every channel.
  const STRANGER = {
    email: 'mallory@freemail.example',
    subdomainEmail: 'mallory@mail.acmebank.example',
    sms: '+447911123401',
    slack: '',
    webhook: '',
  };
  const MEMBER = { email: 'jane@acmebank.example', sms: '+447911123402', slack: '', webhook: '' };
  const UNCONFIRMED = 'eve@acmebank.example';
  const GLOBEX = 'hank@globex.example';

  let acme = '';
  let globex = '';

  describe('setting up: people subscribe, staff keep the organisations', () => {
    it('a stranger subscribes as "Acme Bank" on email, SMS, Slack and a webhook; Acme Bank staff subscribe too', async () => {
      await confirmedEmail(STRANGER.email, 'Acme Bank');
      await confirmedEmail(STRANGER.subdomainEmail, 'Acme Bank');
      await confirmedSms(STRANGER.sms, 'Acme Bank');
      STRANGER.slack = await slackHook('#mallory', 'Acme Bank');
      STRANGER.webhook = await webhookEndpoint('/mallory', 'ACME BANK');
      await pendingEmail(UNCONFIRMED, 'Acme Bank');
      await confirmedEmail(MEMBER.email);
      await confirmedSms(MEMBER.sms, 'Acme Bank plc');
      MEMBER.slack = await slackHook('#acme-security');
      MEMBER.webhook = await webhookEndpoint('/acme-siem');
      await confirmedEmail(GLOBEX);
    });

    it('staff keep Acme Bank with its verified email domain; the typed company stays a label', async () => {
      const created = await admin.post('/console/organisations?_action=createOrganisation', {
        name: 'Acme Bank',
        domains: 'AcmeBank.example',
      });
      expect(created.status).toBe(303);
      acme = idFrom(created.location, 'organisations');
      expect(acme).not.toBe('');
      const page = await admin.get(`/console/organisations/${acme}`);
      expect(page.status).toBe(200);
      const t = text(page.html);
      expect(t).toContain('acmebank.example');
      expect(t).toMatch(/subdomains do not match/i);
      // the one confirmed address in the domain is a member; the stranger's subdomain and the unconfirmed one are not
      expect(t).toContain('ja…@acmebank.example');
      expect(t).not.toContain('ma…@mail.acmebank.example');
      expect(t).not.toContain('ev…@acmebank.example');
      expect(await auditOf('organisations.created')).toEqual([
        expect.objectContaining({ target: `organisation:${acme}`, summary: expect.stringContaining('acmebank.example') }),
      ]);
      expect((await auditOf('organisations.viewed')).length).toBeGreaterThan(0);
      const other = await admin.post('/console/organisations?_action=createOrganisation', { name: 'Globex', domains: 'globex.example' });
      expect(other.status).toBe(303);
      globex = idFrom(other.location, 'organisations');
    });

    it('refuses domains that would let outsiders in, with a message naming the problem', async () => {
      const tries: [string, RegExp][] = [
        ['gmail.com', /gmail\.com is a public email provider/i],
        ['*.acmebank.example', /not a domain/i],
        ['jane@acmebank.example', /domain only/i],
        ['localhost', /not a domain/i],
        ['globex.example', /already a domain of Globex/i],
      ];
      for (const [domain, message] of tries) {
        const res = await admin.post(`/console/organisations/${acme}?_action=addOrganisationDomain`, { organisationId: acme, domain });
        expect(res.status, domain).toBe(400);
        expect(text(res.html), domain).toMatch(message);
      }
      const duplicate = await admin.post('/console/organisations?_action=createOrganisation', { name: ' acme bank ', domains: '' });
      expect(text(duplicate.html)).toContain('There is already an organisation called Acme Bank.');
    });

    it('staff assign the member’s Slack channel and webhook, and approve the claim of the member’s number', async () => {
      const sms = await recipientOf('sms', MEMBER.sms);
      const record = await admin.get(`/console/subscribers/${sms.subscriberId}`);
      // what they typed is shown as a claim, which grants nothing until approved
      expect(text(record.html)).toContain('Claims: Acme Bank plc');
      const approved = await admin.post(`/console/subscribers/${sms.subscriberId}?_action=approveOrganisationClaim`, {
        subscriberId: String(sms.subscriberId),
        organisationId: acme,
      });
      expect(approved.status).toBe(200);
      expect(text(approved.html)).toMatch(/Acme Bank: .*claim approved by/);
      for (const [channel, address] of [
        ['slack', MEMBER.slack],
        ['webhook', MEMBER.webhook],
      ] as const) {
        const r = await recipientOf(channel, address);
        const assigned = await admin.post(`/console/subscribers/${r.subscriberId}?_action=assignOrganisationMember`, {
          subscriberId: String(r.subscriberId),
          organisationId: acme,
          recipientId: String(r.id),
        });
        expect(assigned.status, channel).toBe(200);
        expect(text(assigned.html), channel).toMatch(/Acme Bank: .*assigned by/);
      }
      expect(await auditOf('organisations.claim_approved')).toHaveLength(1);
      expect(await auditOf('organisations.member_assigned')).toHaveLength(2);
      // the stranger's claims were never approved: nothing of theirs is a member
      const page = text((await admin.get(`/console/organisations/${acme}`)).html);
      expect(page).toMatch(/assigned by staff/);
      expect(page).not.toContain('#mallory');
    });
  });

  describe('a targeted breach notice', () => {
    let incidentId = '';
    let shown: Record<string, number> = {};

    it('typing a company name targets nobody: the old free-text audience is refused, and nothing is sent', async () => {
      const res = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...breach('Typed audience breach'),
        organisations: 'Acme Bank',
      });
      // nothing of it was enqueued for the one who typed the name, on any channel
      const strangers = [
        await recipientOf('email', STRANGER.email),
        await recipientOf('email', STRANGER.subdomainEmail),
        await recipientOf('sms', STRANGER.sms),
        await recipientOf('slack', STRANGER.slack),
        await recipientOf('webhook', STRANGER.webhook),
      ].map((r) => r.id);
      const reached = await readRows(db, (q) => {
        const { deliveries: d, incidentUpdates: u, incidents: i } = q.t;
        return q.db
          .select({ recipientId: d.recipientId })
          .from(d)
          .innerJoin(u, eq(u.notificationId, d.notificationId))
          .innerJoin(i, eq(i.id, u.incidentId))
          .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.title, 'Typed audience breach')));
      });
      expect(reached.map((r) => r.recipientId).filter((id) => id !== null && strangers.includes(id))).toEqual([]);
      await new Promise((r) => setTimeout(r, 500));
      expect(emailsOf(STRANGER.email, 'Typed audience breach')).toEqual([]);
      expect(smsOf(STRANGER.sms, 'Typed audience breach')).toEqual([]);
      expect(slackOf(STRANGER.slack, 'Typed audience breach')).toEqual([]);
      // and staff are told why: the list of kept organisations is the only way to target
      expect(res.status).toBe(400);
      expect(text(res.html)).toMatch(/Choose the customer organisations from the list/);
      expect(await incidentsTitled('Typed audience breach')).toBe(0);
    });

    it('the composer shows, per organisation and channel, how many it reaches and on what basis', async () => {
      const page = await responder.get('/console/incidents/new?kind=breach');
      expect(page.html).toContain(`name="organisation:${acme}"`);
      expect(text(page.html)).toContain('Acme Bank');
      const preview = await responder.post('/console/incidents/new?_action=previewIncident', {
        ...breach(),
        [`organisation:${acme}`]: 'yes',
      });
      expect(preview.status).toBe(200);
      const t = text(preview.html);
      expect(t).toContain('Recipients: email 1 · sms 1 · slack 1 · webhook 1');
      expect(t).toContain('Acme Bank: email 1 · sms 1 · slack 1 · webhook 1');
      expect(t).toContain('domain acmebank.example: 1 email');
      expect(t).toContain('claim approved by staff: 1 SMS');
      expect(t).toContain('assigned by staff: 1 Slack, 1 webhook');
      expect(preview.html).not.toContain('name="confirmNoRecipients"');
      const line = /Acme Bank: email (\d+) · sms (\d+) · slack (\d+) · webhook (\d+)/.exec(t);
      shown = { email: Number(line?.[1]), sms: Number(line?.[2]), slack: Number(line?.[3]), webhook: Number(line?.[4]) };
    });

    it('reaches the verified member on every channel they confirmed, once, and the stranger on none', async () => {
      const res = await responder.post('/console/incidents/new?_action=publishIncident', { ...breach(), [`organisation:${acme}`]: 'yes' });
      expect(res.status, text(res.html).slice(0, 400)).toBe(303);
      incidentId = idFrom(res.location, 'incidents');
      await until(
        () =>
          emailsOf(MEMBER.email).length > 0 &&
          smsOf(MEMBER.sms).length > 0 &&
          slackOf(MEMBER.slack).length > 0 &&
          webhooksOf(MEMBER.webhook).length > 0,
        'the notice on each of the member’s channels',
      );
      // exactly the member's four addresses were enqueued: the decision is in the database, not in timing
      const member = [
        await recipientOf('email', MEMBER.email),
        await recipientOf('sms', MEMBER.sms),
        await recipientOf('slack', MEMBER.slack),
        await recipientOf('webhook', MEMBER.webhook),
      ];
      expect((await enqueued(incidentId)).recipients).toEqual(member.map((m) => m.id).sort((a, b) => a - b));
      // what the composer showed is what was enqueued
      expect((await enqueued(incidentId)).byChannel).toEqual(shown);
      expect(shown).toEqual({ email: 1, sms: 1, slack: 1, webhook: 1 });
      await new Promise((r) => setTimeout(r, 500));
      expect(emailsOf(MEMBER.email)).toHaveLength(1);
      expect(smsOf(MEMBER.sms)).toHaveLength(1);
      expect(slackOf(MEMBER.slack)).toHaveLength(1);
      expect(webhooksOf(MEMBER.webhook)).toHaveLength(1);
      expect(emailsOf(STRANGER.email)).toEqual([]);
      expect(emailsOf(STRANGER.subdomainEmail)).toEqual([]);
      expect(emailsOf(UNCONFIRMED)).toEqual([]);
      expect(emailsOf(GLOBEX)).toEqual([]);
      expect(smsOf(STRANGER.sms)).toEqual([]);
      expect(slackOf(STRANGER.slack)).toEqual([]);
      expect(webhooksOf(STRANGER.webhook)).toEqual([]);
    });

    it('shows staff whom it reached', async () => {
      const page = await responder.get(`/console/incidents/${incidentId}`);
      const t = text(page.html);
      expect(t).toContain('only for Acme Bank');
      expect(t).toContain('Acme Bank: email 1 · sms 1 · slack 1 · webhook 1');
      const [update] = await readRows(db, (q) => {
        const u = q.t.incidentUpdates;
        return q.db
          .select({ notificationId: u.notificationId })
          .from(u)
          .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(incidentId))));
      });
      expect(update?.notificationId).toBeTypeOf('number');
      const deliveries = await responder.get(`/console/deliveries/${update?.notificationId}`);
      expect(text(deliveries.html)).toMatch(/\b\d of 4 finished/);
      const declared = (await auditOf('incidents.declared')).at(-1);
      expect(JSON.parse(declared?.summary ?? '{}')).toMatchObject({ organisations: [Number(acme)], deliveries: 4 });
    });

    it('removing a domain or an assignment stops the next notice', async () => {
      const slackMember = await recipientOf('slack', MEMBER.slack);
      const record = await admin.get(`/console/subscribers/${slackMember.subscriberId}`);
      const membership = /name="membershipId" value="(\d+)"/.exec(record.html)?.[1] ?? '';
      expect(membership).not.toBe('');
      const removed = await admin.post(`/console/subscribers/${slackMember.subscriberId}?_action=removeOrganisationMember`, {
        membershipId: membership,
      });
      expect(removed.status).toBe(200);
      const dropped = await admin.post(`/console/organisations/${acme}?_action=removeOrganisationDomain`, {
        organisationId: acme,
        domain: 'acmebank.example',
      });
      expect(dropped.status).toBe(200);
      expect(await auditOf('organisations.member_removed')).toHaveLength(1);
      expect(await auditOf('organisations.domain_removed')).toHaveLength(1);
      // the update composer already says who the next update reaches
      const composer = text((await responder.get(`/console/incidents/${incidentId}`)).html);
      expect(composer).toContain('Acme Bank: email 0 · sms 1 · slack 0 · webhook 1');
      const next = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'monitoring',
        body: `${TITLE}: exports are back under normal controls.`,
      });
      expect(next.status).toBe(303);
      expect((await enqueued(incidentId, 1)).byChannel).toEqual({ sms: 1, webhook: 1 });
    });
  });

  describe('a targeted notice that reaches no one', () => {
    it('warns loudly in the preview, is refused without confirmation, and is sent (to no one, audited) with it', async () => {
      const made = await admin.post('/console/organisations?_action=createOrganisation', { name: 'Initech', domains: 'initech.example' });
      const initech = idFrom(made.location, 'organisations');
      const fields = { ...breach('Initech export exposure'), [`organisation:${initech}`]: 'yes' };
      const preview = await responder.post('/console/incidents/new?_action=previewIncident', fields);
      expect(text(preview.html)).toContain('Initech: email 0 · sms 0 · slack 0 · webhook 0');
      expect(preview.html).toMatch(/role="alert"[^>]*>[\s\S]*This notice reaches no one/);
      expect(preview.html).toContain('name="confirmNoRecipients"');
      const refused = await responder.post('/console/incidents/new?_action=publishIncident', fields);
      expect(refused.status).toBe(412);
      expect(text(refused.html)).toContain('This targeted notice would reach no one');
      expect(refused.html).toContain('name="confirmNoRecipients"');
      expect(await incidentsTitled('Initech export exposure')).toBe(0);
      const sent = await responder.post('/console/incidents/new?_action=publishIncident', { ...fields, confirmNoRecipients: 'yes' });
      expect(sent.status).toBe(303);
      expect(sent.location).toMatch(/published=0$/);
      expect(JSON.parse((await auditOf('incidents.declared')).at(-1)?.summary ?? '{}')).toMatchObject({
        organisations: [Number(initech)],
        deliveries: 0,
        confirmedNoRecipients: true,
      });
      // its later notices ask again: a scheduled update, the resolution, the postmortem
      const id = idFrom(sent.location, 'incidents');
      const update = { incidentId: id, status: 'monitoring', body: 'Initech export exposure: contained.' };
      const later = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16);
      const schedule = await responder.post(`/console/incidents/${id}?_action=publishIncident`, { ...update, scheduleAt: later });
      expect(schedule.status).toBe(412);
      expect(text(schedule.html)).toContain('This targeted notice would reach no one: Initech has no verified member');
      const resolved = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        ...update,
        status: 'resolved',
        confirmNoRecipients: 'yes',
      });
      expect(resolved.status).toBe(303);
      const postmortem = { incidentId: id, postmortem: 'Initech export exposure: what happened and what changes.' };
      const refusedPostmortem = await responder.post(`/console/incidents/${id}?_action=publishPostmortem`, postmortem);
      expect(refusedPostmortem.status).toBe(412);
      expect(refusedPostmortem.html).toMatch(/role="alert"[^>]*>[\s\S]*This postmortem reaches no one/);
      expect(
        await readRows(db, (q) =>
          q.db.$count(q.t.postmortems, and(eq(q.t.postmortems.trustCenterId, q.trustCenter), eq(q.t.postmortems.incidentId, Number(id)))),
        ),
      ).toBe(0);
      const published = await responder.post(`/console/incidents/${id}?_action=publishPostmortem`, {
        ...postmortem,
        confirmNoRecipients: 'yes',
      });
      expect(text(published.html)).toContain('The postmortem is published: 0 deliveries queued.');
    });

    it('an incident targeted by typed names before this change reaches no one, and the console says so', async () => {
      // as such an incident was stored: the names, no organisation ids
      const id = await writeRows(db, async (q) => {
        const now = new Date();
        const [made] = await q.db
          .insert(q.t.incidents)
          .values({
            kind: 'breach',
            severity: 'critical',
            title: 'Legacy typed breach',
            status: 'identified',
            public: false,
            audienceOrganisations: ['Acme Bank'],
            startedAt: now,
            createdAt: now,
            trustCenterId: q.trustCenter,
          })
          .returning({ id: q.t.incidents.id });
        if (!made) throw new Error('the incident was not written');
        return made.id;
      });
      const page = text((await responder.get(`/console/incidents/${id}`)).html);
      expect(page).toMatch(/typed company names \(Acme Bank\).*reach no one/);
      const refused = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        incidentId: String(id),
        status: 'monitoring',
        body: 'Legacy typed breach: contained.',
      });
      expect(text(refused.html)).toContain('This targeted notice would reach no one');
      const sent = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        incidentId: String(id),
        status: 'monitoring',
        body: 'Legacy typed breach: contained.',
        confirmNoRecipients: 'yes',
      });
      expect(sent.status).toBe(303);
      expect((await enqueued(String(id))).recipients).toEqual([]);
      await new Promise((r) => setTimeout(r, 300));
      expect(emailsOf(STRANGER.email, 'Legacy typed breach')).toEqual([]);
      expect(smsOf(STRANGER.sms, 'Legacy typed breach')).toEqual([]);
    });
  });

  describe('memberships are personal data', () => {
    it('the subscriber’s export lists them; erasure removes them', async () => {
      const sms = await recipientOf('sms', MEMBER.sms);
      const token = recipientToken(TEST_KEYS.secret, 'manage', sms.id);
      const client = new ConsoleClient(server.url);
      const exported = JSON.parse((await client.get(`/subscription/${token}/export.json`)).html) as {
        organisations: { organisation: string; channel: string; basis: string }[];
      };
      expect(exported.organisations).toEqual([
        expect.objectContaining({ organisation: 'Acme Bank', channel: 'sms', basis: 'claim approved by staff' }),
      ]);
      const memberships = (recipientId?: number) =>
        readRows(db, (q) => {
          const m = q.t.organisationMembers;
          return q.db.$count(
            m,
            and(eq(m.trustCenterId, q.trustCenter), recipientId === undefined ? undefined : eq(m.recipientId, recipientId)),
          );
        });
      expect(await memberships(sms.id)).toBe(1);
      const erased = await client.post(`/subscription/${token}?_action=eraseSubscription`, { token, confirm: 'yes' });
      expect(text(erased.html)).toContain('Everything we held about your subscription is deleted.');
      expect(await memberships(sms.id)).toBe(0);
      // staff removing a subscriber removes their memberships too
      const hook = await recipientOf('webhook', MEMBER.webhook);
      expect(await memberships(hook.id)).toBe(1);
      const removed = await admin.post(`/console/subscribers/${hook.subscriberId}?_action=removeSubscriber`, {
        subscriberId: String(hook.subscriberId),
      });
      expect(removed.status).toBe(200);
      expect(await memberships(hook.id)).toBe(0);
      expect(await memberships()).toBe(0);
    });

    it('an organisation’s name is text wherever it shows', async () => {
      const name = '<img src=x onerror=alert(1)> Evil "Corp"';
      const made = await admin.post('/console/organisations?_action=createOrganisation', { name, domains: 'evil-corp.example' });
      expect(made.status).toBe(303);
      for (const [client, path] of [
        [admin, '/console/organisations'],
        [admin, made.location ?? ''],
        [responder, '/console/incidents/new?kind=breach'],
      ] as const) {
        const page = await client.get(path);
        // inside a quoted attribute (the rename field's value) a "<" is text; a quote would not be
        expect(page.html.replaceAll(/ value="[^"]*"/g, ''), path).not.toContain('<img src=x');
        expect(page.html, path).not.toContain('Evil "Corp"');
        expect(page.html, path).toContain('&lt;img src=x onerror=alert(1)&gt;');
      }
    });

    it('is renamed and deleted by staff, audited; not while an open incident is addressed to it', async () => {
      const renamed = await admin.post(`/console/organisations/${globex}?_action=renameOrganisation`, {
        organisationId: globex,
        name: 'Globex Corporation',
      });
      expect(renamed.status).toBe(200);
      expect(JSON.parse((await auditOf('organisations.renamed')).at(-1)?.summary ?? '{}')).toEqual({
        before: { name: 'Globex' },
        after: { name: 'Globex Corporation' },
      });
      const refused = await admin.post(`/console/organisations/${acme}?_action=deleteOrganisation`, { organisationId: acme });
      expect(refused.status).toBe(400);
      expect(text(refused.html)).toContain(`Acme Bank is the audience of open incident #`);
      const deleted = await admin.post(`/console/organisations/${globex}?_action=deleteOrganisation`, { organisationId: globex });
      expect(deleted.status).toBe(303);
      expect(deleted.location).toBe('/console/organisations?deleted=1');
      expect((await admin.get(`/console/organisations/${globex}`)).status).toBe(404);
      expect(
        await readRows(db, (q) => {
          const d = q.t.organisationDomains;
          return q.db.$count(d, and(eq(d.trustCenterId, q.trustCenter), eq(d.organisationId, Number(globex))));
        }),
      ).toBe(0);
      expect(await auditOf('organisations.deleted')).toEqual([expect.objectContaining({ target: `organisation:${globex}` })]);
    });

    it('only admins and owners see or change organisations', async () => {
      expect((await responder.get('/console/organisations')).status).toBe(403);
      expect((await responder.get(`/console/organisations/${acme}`)).status).toBe(403);
      const refused = await responder.post(`/console/organisations/${acme}?_action=addOrganisationDomain`, {
        organisationId: acme,
        domain: 'globex-corp.example',
      });
      expect(refused.status).toBe(403);
      expect((await admin.get('/console/organisations')).status).toBe(200);
    });
  });
});
