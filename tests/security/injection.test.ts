/**
 * Injection, end to end through the running server and the fake providers:
 * markup in every text a customer or staff member can type, read back from
 * every output (public and console pages, email, Slack, SMS, webhook JSON,
 * feeds, status.json, .ics, CSV exports); SQL metacharacters in every
 * parameter the routes and actions read; path traversal in slugs, tokens
 * and file names; line breaks in everything that becomes an email header.
 *
 * How each channel's formatter treats the whole corpus (tests/helpers/xss-corpus.ts)
 * is in tests/unit/incident-messages.test.ts; here the question is whether
 * every place the server shows a text goes through them.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { SaxesParser } from 'saxes';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { hashPassword } from '../../src/core/auth/password.ts';
import { updateStaffRow } from '../../src/stores/staff.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { acceptanceOn, customerOn, grantOn, ndaTextOn, requestOn, viewOn } from '../helpers/access-fixtures.ts';
import { type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import {
  activeMarkup,
  Client,
  expectNoStackTrace,
  leaked,
  pageText,
  parseHtml,
  send,
  serverSecrets,
  sourceRoutes,
  until,
} from '../helpers/security.ts';
import { freePort, ROOT, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';
import { XSS } from '../helpers/xss-corpus.ts';
import { consolePath, routeTable } from './route-table.ts';

const WEBHOOK_SECRET = `whsec_${Buffer.from('injection-suite-webhook-secret!!').toString('base64')}`;
const PASSWORD = 'injection suite passphrase, long enough 77';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let db: Database;
  let env: Record<string, string>;

  beforeAll(async () => {
    resend = await startFakeResend();
    slack = await startFakeSlack();
    twilio = await startFakeTwilio({ statusCallbacks: false });
    receiver = await startWebhookReceiver({ secret: WEBHOOK_SECRET });
    const port = await freePort();
    env = { ...providerEnv({ port, resend, slack, twilio, testKeys: true }), CANDOR_WEBHOOK_ALLOW_HOSTS: new URL(receiver.url).host };
    running = await engine.start({ port, dataDir: tempDir(), env });
    env = { ...env, ...running.env };
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'reader@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', topic: 'maintenance', address: () => 'maint@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      address: () => 'C0INJECTION',
      secret: () => 'xoxb-injection-workspace',
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447911129999' });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'webhook',
      address: () => `${receiver.url}/hook`,
      secret: () => WEBHOOK_SECRET,
    });
  });
  afterAll(async () => {
    await running?.stop();
    await Promise.all([resend?.close(), slack?.close(), twilio?.close(), receiver?.close()]);
  });

  const as = async (role: 'viewer' | 'responder' | 'admin' | 'owner') =>
    new Client(server.url).setCookie('candor_session', (await signedInStaffOn(db, role)).token);

  // ---- what "inert" means for each kind of output ----

  const MARK = '"><svg onload=alert(91)><script>alert(92)</script><img src=x onerror=alert(93)>';
  const TITLE = `Outage ${MARK} {{organisation}} \${7*7}`;
  const BODY = `${XSS.map((x) => x.body).join('\n\n')}\n\nPing <!channel> <@U123>. Template {{dpoEmail}} \${process.env.CANDOR_SECRET} <%= 7*7 %>`;

  /** An HTML page or fragment in which the payloads stayed text; `visible` must still be readable. */
  function expectInertHtml(html: string, where: string, visible = 'alert(92)'): void {
    expect(activeMarkup(html), `${where} lets markup act`).toEqual([]);
    expect(parseHtml(html).text, `${where} dropped the text instead of escaping it`).toContain(visible);
  }

  /** Slack mrkdwn: only our own links are <…>; mentions and link syntax typed by people are escaped. */
  function expectInertSlack(message: { text: string | undefined; blocks: unknown[] | undefined }, where: string): void {
    const mrkdwn: string[] = [message.text ?? ''];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === 'object') {
        const v = value as Record<string, unknown>;
        if (v.type === 'mrkdwn' && typeof v.text === 'string') {
          mrkdwn.push(v.text);
          expect(v.verbatim, `${where}: mrkdwn is verbatim`).toBe(true);
        } else Object.values(v).forEach(walk);
      }
    };
    walk(message.blocks);
    for (const t of mrkdwn) {
      for (const c of t.match(/<[^<>]*>/g) ?? []) expect(c, where).toMatch(/^<(https?:\/\/|mailto:)[^|<>\s]*(\|[^<>]*)?>$/);
      expect(t, where).not.toMatch(/<[!@#]/);
    }
  }

  /** A feed parses strictly, and the HTML it carries for readers to render is inert. */
  function expectInertFeed(body: string, where: string): void {
    if (where.endsWith('.json')) {
      const feed = JSON.parse(body) as { items: { title?: string; content_html?: string; summary?: string }[] };
      expect(feed.items.length, where).toBeGreaterThan(0);
      for (const item of feed.items) if (item.content_html) expectInertHtml(item.content_html, `${where} content_html`, 'alert(1)');
      return;
    }
    const parser = new SaxesParser();
    const errors: string[] = [];
    const html: string[] = [];
    const elements: string[] = [];
    let current = '';
    let inHtml = false;
    parser.on('error', (e) => errors.push(e.message));
    parser.on('opentag', (tag) => {
      elements.push(tag.name);
      // RSS descriptions and Atom content/summary of type html are HTML the reader renders
      inHtml = tag.name === 'description' || ((tag.name === 'content' || tag.name === 'summary') && tag.attributes.type === 'html');
      current = '';
    });
    parser.on('text', (t) => {
      if (inHtml) current += t;
    });
    parser.on('closetag', () => {
      if (inHtml && current) html.push(current);
      inHtml = false;
    });
    parser.write(body).close();
    expect(errors, where).toEqual([]);
    expect(
      elements.filter((e) => /^(script|svg|img|iframe)$/i.test(e)),
      `${where}: elements from the payload`,
    ).toEqual([]);
    expect(html.length, where).toBeGreaterThan(0);
    for (const h of html) expect(activeMarkup(h), `${where}: HTML for the reader`).toEqual([]);
  }

  /** CSV cells, RFC 4180. */
  function csvCells(csv: string): string[] {
    const cells: string[] = [];
    const re = /("(?:[^"]|"")*"|[^,\r\n]*)(,|\r\n|\n|$)/g;
    for (let m = re.exec(csv); m && m[0] !== ''; m = re.exec(csv)) {
      const raw = m[1] ?? '';
      cells.push(raw.startsWith('"') ? raw.slice(1, -1).replaceAll('""', '"') : raw);
    }
    return cells;
  }
  const expectNoFormula = (csv: string, where: string) =>
    expect(
      csvCells(csv).filter((c) => /^[=+\-@\t\r]/.test(c) && !/^-?\d/.test(c)),
      `${where}: cells a spreadsheet would run`,
    ).toEqual([]);

  describe('the checks themselves', () => {
    it('see markup that would act, and not markup that stays text', () => {
      const acting = [
        '<p><img src=x onerror=alert(1)></p>',
        '<a href=" jAvAsCrIpT:alert(1)">x</a>',
        '<a href="data:text/html,x">x</a>',
        '<svg/onload=alert(1)>',
        '<div><script>alert(1)</script></div>',
        '<iframe srcdoc="x"></iframe>',
        '<form action="javascript:alert(1)"><button>x</button></form>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        `<input value="x"><svg onload=alert(1)>">`,
      ];
      for (const html of acting) expect(activeMarkup(html), html).not.toEqual([]);
      const inert = [
        '<p>&lt;img src=x onerror=alert(1)&gt;</p>',
        '<input value="&#34;><svg onload=alert(91)>">',
        "<input value='\"><script>alert(1)</script>'>",
        '<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>',
        '<a href="https://ok.example/?q=javascript:alert(1)">x</a>',
        '<!-- <script>alert(1)</script> -->',
      ];
      for (const html of inert) expect(activeMarkup(html), html).toEqual([]);
      expect(parseHtml('<p title="a>b">x &lt;y&gt; &#34;z&#x22;</p>').text).toBe('x <y> "z"');
    });
  });

  describe('markup typed by staff: incident title, update, breach facts, postmortem, maintenance', () => {
    let incidentId = '';

    it('is inert on every page, email, Slack message, SMS, feed and JSON document', async () => {
      const responder = await as('responder');
      const published = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: TITLE,
        kind: 'outage',
        severity: 'major',
        status: 'investigating',
        'component:public-api': 'partial_outage',
        body: BODY,
        confirmPersonalData: 'yes',
      });
      expect(published.status, pageText(published.body).slice(0, 500)).toBe(303);
      incidentId = /\/console\/incidents\/(\d+)/.exec(published.headers.get('location') ?? '')?.[1] ?? '';

      for (const path of [`/incidents/${incidentId}`, '/status']) expectInertHtml((await send(`${server.url}${path}`)).body, path);
      for (const path of ['/console/incidents', `/console/incidents/${incidentId}`])
        expectInertHtml((await (await as('viewer')).get(path)).body, path);
      for (const path of ['/feeds/incidents.xml', '/feeds/incidents.atom', '/feeds/incidents.json'])
        expectInertFeed((await send(`${server.url}${path}`)).body, path);
      const status = await send(`${server.url}/api/v1/status.json`);
      expect(status.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(status.headers.get('x-content-type-options')).toBe('nosniff');
      expect((JSON.parse(status.body) as { openIncidents: { title: string }[] }).openIncidents[0]?.title).toBe(TITLE);

      await until(() => resend.emailsTo('reader@customer.example').length > 0, 'the email');
      const email = resend.emailsTo('reader@customer.example')[0];
      expectInertHtml(email?.html ?? '', 'the email');
      expect(email?.text).toContain('<script>alert(1)</script>');
      expect(email?.subject).not.toMatch(/[\r\n]/);

      await until(() => slack.messages.some((m) => m.channel === 'C0INJECTION'), 'the Slack message');
      for (const m of slack.messages) expectInertSlack(m, 'Slack');
      await until(() => twilio.messagesTo('+447911129999').length > 0, 'the SMS');
      const sms = twilio.messagesTo('+447911129999')[0]?.body ?? '';
      expect(sms).not.toMatch(/&lt;|&gt;|&amp;|<\/?p>|rel="/);
      await receiver.waitFor(1);
      const [hook] = receiver.verified();
      if (!hook) throw new Error('no verified webhook');
      const { data } = hook.payload as { data: { incident: { title: string }; update: { body: string } } };
      expect(data.incident.title).toBe(TITLE);
      expect(data.update.body).toBe(BODY);
      expect(() => new Webhook(WEBHOOK_SECRET).verify(hook.request.body, hook.request.headers)).not.toThrow();
    });

    it('template and expression syntax stays literal: nothing is evaluated or filled in', async () => {
      const page = pageText((await send(`${server.url}/incidents/${incidentId}`)).body);
      expect(page).toContain(TITLE.slice(TITLE.indexOf('{{organisation}}')));
      expect(page).toContain(BODY.slice(BODY.indexOf('{{dpoEmail}}')));
    });

    it('breach facts, the organisations it targets, and a postmortem, as published', async () => {
      // a customer organisation kept by staff, named with the payloads; its domain makes reader@ a member
      const admin = await as('admin');
      const kept = await admin.post('/console/organisations?_action=createOrganisation', {
        name: `Org ${MARK}`,
        domains: 'customer.example',
      });
      expect(kept.status, pageText(kept.body).slice(0, 400)).toBe(303);
      const organisation = /\/console\/organisations\/(\d+)/.exec(kept.headers.get('location') ?? '')?.[1] ?? '';
      expectInertHtml((await admin.get('/console/organisations')).body, 'the organisations list');
      expectInertHtml((await admin.get(`/console/organisations/${organisation}`)).body, 'the organisation');
      const responder = await as('responder');
      expectInertHtml((await responder.get('/console/incidents/new?kind=breach')).body, 'the composer’s organisations');
      const breach = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: `Breach ${MARK}`,
        kind: 'breach',
        severity: 'critical',
        status: 'identified',
        'component:web-app': 'operational',
        body: `Initial notice ${MARK}`,
        publicNotice: 'yes',
        [`organisation:${organisation}`]: 'yes',
        breachAwareAt: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
        breachNature: MARK,
        breachSubjects: MARK,
        breachRecords: MARK,
        breachConsequences: MARK,
        breachMeasures: MARK,
        confirmPersonalData: 'yes',
      });
      expect(breach.status, pageText(breach.body).slice(0, 400)).toBe(303);
      const breachId = /\/console\/incidents\/(\d+)/.exec(breach.headers.get('location') ?? '')?.[1] ?? '';
      expectInertHtml((await send(`${server.url}/incidents/${breachId}`)).body, 'the breach page');
      expectInertHtml((await (await as('viewer')).get(`/console/incidents/${breachId}`)).body, 'the breach in the console');

      const resolved = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'resolved',
        body: `Resolved ${MARK}`,
        'component:public-api': 'operational',
      });
      expect(resolved.status).toBe(303);
      const postmortem = await responder.post(`/console/incidents/${incidentId}?_action=publishPostmortem`, {
        incidentId,
        postmortem: BODY,
        confirmPersonalData: 'yes',
      });
      expect(postmortem.status, pageText(postmortem.body).slice(0, 400)).toBeLessThan(400);
      expectInertHtml((await send(`${server.url}/incidents/${incidentId}`)).body, 'the page with its postmortem');
      expectInertFeed((await send(`${server.url}/feeds/incidents.atom`)).body, '/feeds/incidents.atom');
    });

    it('a maintenance window’s calendar file carries the title as text, not as new properties', async () => {
      const start = new Date(Date.now() + 3 * 86_400_000);
      const res = await (await as('responder')).post('/console/incidents/new?_action=publishIncident', {
        title: `Upgrade ${MARK}\r\nATTENDEE:mailto:evil@evil.example\r\nEND:VEVENT`,
        kind: 'maintenance',
        severity: 'minor',
        status: 'scheduled',
        'component:public-api': 'under_maintenance',
        body: `Window ${MARK}`,
        windowStartsAt: start.toISOString().slice(0, 16),
        windowEndsAt: new Date(start.getTime() + 3_600_000).toISOString().slice(0, 16),
      });
      expect(res.status, pageText(res.body).slice(0, 400)).toBe(303);
      const id = /\/console\/incidents\/(\d+)/.exec(res.headers.get('location') ?? '')?.[1] ?? '';
      const ics = await send(`${server.url}/incidents/${id}.ics`);
      expect(ics.headers.get('content-type')).toBe('text/calendar; charset=utf-8');
      const lines = ics.body.replace(/\r\n[ \t]/g, '').split('\r\n');
      expect(lines.filter((l) => /^(ATTENDEE|END:VEVENT|BEGIN:VEVENT)/.test(l))).toEqual(['BEGIN:VEVENT', 'END:VEVENT']);
      expect(lines.find((l) => l.startsWith('SUMMARY:'))).toContain('alert(92)');
      expectInertHtml((await send(`${server.url}/status`)).body, '/status with upcoming maintenance');
    });
  });

  describe('markup typed by customers and visitors', () => {
    it('an organisation name: inert in the console, defused in the CSV export', async () => {
      const organisation = `=HYPERLINK("https://evil.example","x") ${MARK}`.slice(0, 200);
      const signup = await new Client(server.url, '127.0.60.1').post('/subscribe?_action=subscribe', {
        channel: 'email',
        address: 'org-xss@customer.example',
        topics: 'incidents',
        organisation,
      });
      expect(pageText(signup.body)).toContain('Check your inbox');
      const admin = await as('admin');
      const found = await admin.get(`/console/subscribers?q=${encodeURIComponent('org-xss@customer.example')}`);
      expect(found.status).toBe(303);
      const record = await admin.get(found.headers.get('location') ?? '');
      expectInertHtml(record.body, 'the subscriber record');
      const csv = await admin.get('/console/subscribers/export.csv');
      expect(csv.body).toContain("'=HYPERLINK");
      expectNoFormula(csv.body, 'subscribers.csv');
    });

    it('a requester’s name and company, an NDA signer’s typed name: inert in Console → Access, defused in its CSVs', async () => {
      const typed = `=HYPERLINK("https://evil.example","x") ${MARK}`;
      const customer = await customerOn(db, 'access-xss@customer.example');
      await requestOn(db, {
        recipientId: customer,
        name: typed,
        company: typed,
        documents: [typed],
        status: 'pending',
        createdAt: new Date(),
      });
      const grantId = await grantOn(db, {
        recipientId: customer,
        name: typed,
        company: typed,
        documents: ['soc-2-type-ii-report'],
        createdAt: new Date(),
        expiresAt: new Date(Date.now() + 86_400_000 * 30),
      });
      await viewOn(db, { grantId, recipientId: customer, document: typed, kind: 'view', at: new Date(), ip: MARK });
      const ndaHash = await ndaTextOn(db, typed, `NDA ${MARK}`);
      await acceptanceOn(db, {
        ndaHash,
        recipientId: customer,
        grantId,
        fullName: typed,
        company: typed,
        acceptedAt: new Date(),
        userAgent: typed,
      });
      const admin = await as('admin');
      expectInertHtml((await admin.get('/console/access')).body, 'Console → Access');
      for (const path of ['/console/access/export.csv', '/console/access/acceptances.csv']) {
        const csv = await admin.get(path);
        expect(csv.body, path).toContain("'=HYPERLINK");
        expectNoFormula(csv.body, path);
      }
    });

    it('addresses, codes and search terms echoed in messages', async () => {
      const visitor = new Client(server.url, '127.0.60.2');
      for (const [channel, address] of [
        ['email', `${MARK}@customer.example`],
        ['sms', `+44 ${MARK}`],
        ['webhook', `https://example.com/${MARK}`],
        ['slack-webhook', `https://hooks.slack.com/services/${MARK}`],
        ['teams', `https://prod-01.westus.logic.azure.com/workflows/${MARK}`],
        ['discord', `https://discord.com/api/webhooks/1/${MARK}`],
      ] as const) {
        const res = await visitor.post('/subscribe?_action=subscribe', { channel, address, topics: 'incidents', organisation: MARK });
        expect(activeMarkup(res.body), `${channel} sign-up`).toEqual([]);
      }
      expectInertHtml(
        (await visitor.post('/subscribe?_action=confirmSmsCode', { challengeId: MARK, code: MARK })).body,
        'the code form',
        'Subscribe',
      );
      expectInertHtml((await visitor.get(`/subscribe?challenge=${encodeURIComponent(MARK)}`)).body, '/subscribe?challenge=', 'Subscribe');
      expectInertHtml(
        (await visitor.get(`/subprocessors?category=${encodeURIComponent(MARK)}&location=${encodeURIComponent(MARK)}`)).body,
        '/subprocessors',
      );
      expectInertHtml(
        (await (await as('admin')).get(`/console/subscribers?q=${encodeURIComponent(MARK)}`)).body,
        'the subscriber search',
        'Subscribers',
      );
      const audit = await (await as('viewer')).get(
        `/console/audit?action=${encodeURIComponent(MARK)}&actor=${encodeURIComponent(MARK)}&from=${encodeURIComponent(MARK)}`,
      );
      expectInertHtml(audit.body, 'the audit filter');
      const exported = await (await as('admin')).get(`/console/audit/export?format=csv&action=${encodeURIComponent(MARK)}`);
      expect(exported.status).toBe(400);
      expect(exported.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(exported.headers.get('x-content-type-options')).toBe('nosniff');
    });

    it('a user agent and a typed email address: inert in the audit log and the sessions list, defused in the exports', async () => {
      const agent = `=cmd|' /C calc'!A0 ${MARK}`;
      const { email, staffId } = await signedInStaffOn(db, 'viewer');
      const passwordHash = await hashPassword(PASSWORD);
      await (db.engine === 'sqlite'
        ? db.transaction((tx) => updateStaffRow(tx, staffId, { passwordHash }, new Date()))
        : db.transaction((tx) => updateStaffRow(tx, staffId, { passwordHash }, new Date())));
      const browser = new Client(server.url, '127.0.60.3');
      await browser.post('/console/sign-in?_action=signIn', { email: `someone@${MARK}`, password: 'not it' }, { 'user-agent': agent });
      const signedIn = await browser.post(
        '/console/sign-in?_action=signIn',
        { email, password: PASSWORD, next: '/console' },
        { 'user-agent': agent },
      );
      expect(signedIn.status).toBe(303);
      expectInertHtml((await browser.get('/console/account', { 'user-agent': agent })).body, 'the sessions list');
      expectInertHtml((await (await as('viewer')).get('/console/audit')).body, 'the audit log');
      const csv = await (await as('admin')).get('/console/audit/export?format=csv');
      expect(csv.body).toContain('alert(92)');
      expectNoFormula(csv.body, 'the audit CSV');
      const json = await (await as('admin')).get('/console/audit/export?format=json');
      expect(() => JSON.parse(json.body)).not.toThrow();
    });
  });

  // ---- SQL ----

  const SQL = [
    "'",
    "' OR '1'='1",
    "1' OR 1=1--",
    '1; DROP TABLE staff;--',
    "') UNION SELECT email, password_hash FROM staff--",
    '" OR ""="',
    '%',
    '_',
    '\\',
    '%00',
    '1e309',
    '-1',
    '9223372036854775808',
  ];
  /**
   * what SQLite or PostgreSQL says when a statement was built from the input, or could not take a value
   * (the payloads themselves may be echoed, as text)
   */
  const SQL_ERROR =
    /SQLITE_[A-Z]|SqliteError|: syntax error|no such (table|column)|unrecognized token|datatype mismatch|incomplete input|syntax error at or near|invalid input syntax|out of range for type|invalid byte sequence|(relation|column) "[^"]*" does not exist|Failed query:/i;
  /**
   * numbers no row id can be: past PostgreSQL's `integer` (SQLite's ids are 64-bit and would just find no
   * row), past what a JavaScript number holds exactly, not whole, not finite
   */
  const IDS = ['2147483648', '9007199254740993', '1.5', '1e309'];
  /** a NUL character, which PostgreSQL cannot store in text (SQLite can) */
  const NUL = 'nul\u0000byte';

  /** Every name a route or action reads from a query string or a form, found in the source. */
  function parameterNames(): { query: string[]; form: string[] } {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|astro)$/.test(e.name)) files.push(p);
      }
    };
    walk(join(ROOT, 'src'));
    // read by a helper through a variable name (src/core/trust/subprocessor-filter.ts): the search below cannot see them
    const query = new Set<string>(['category', 'location']);
    const form = new Set<string>();
    for (const file of files) {
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/(?:searchParams|params)\.get\('([\w-]+)'\)/g)) if (m[1]) query.add(m[1]);
      for (const m of source.matchAll(/(?:form\.get\(|text\(form, )'([\w:-]+)'/g)) if (m[1]) form.add(m[1]);
      if (file.includes('/actions/')) {
        for (const m of source.matchAll(/(\w+):\s*z\./g)) if (m[1] && m[1] !== 'input') form.add(m[1]);
        // shorthand fields: z.object({ staffId, role: … })
        for (const m of source.matchAll(/z\.object\(\{([^}]*)\}/g))
          for (const part of m[1]?.split(',') ?? []) if (/^\s*\w+\s*$/.test(part) && !part.includes('...')) form.add(part.trim());
      }
    }
    return { query: [...query].sort(), form: [...form].sort() };
  }

  describe('SQL metacharacters in every parameter', () => {
    const { query, form } = parameterNames();
    const routes = [...sourceRoutes().keys()];
    const tableCounts = () => running.tableNames();

    it('the source reads the parameters this test fills', () => {
      expect(query).toEqual(
        expect.arrayContaining(['q', 'category', 'location', 'actor', 'action', 'ids', 'next', 'template', 'challenge']),
      );
      expect(form).toEqual(
        expect.arrayContaining([
          'email',
          'password',
          'token',
          'code',
          'challengeId',
          'title',
          'body',
          'organisation',
          'staffId',
          'breachNature',
          'sessionId',
        ]),
      );
    });

    it('in every route’s path and query string, as an owner; and ids no row can have', async () => {
      const before = await tableCounts();
      expect(before.length).toBeGreaterThan(20);
      const owner = await as('owner');
      for (const payload of [...SQL.slice(0, 8), ...IDS, NUL]) {
        const qs = new URLSearchParams(query.map((name) => [name, payload])).toString();
        for (const pattern of routes) {
          const base = pattern.startsWith('/console') ? consolePath(pattern) : (routeTable[pattern]?.path ?? pattern);
          const dynamic = pattern.replace(/\[[^\]]+\]/g, encodeURIComponent(payload));
          for (const path of new Set([`${base.split('?')[0]}?${qs}`, `${dynamic}?${qs}`])) {
            const res = await owner.get(path);
            expect(res.status, `${path} answered ${res.status}`).toBeLessThan(500);
            expect(SQL_ERROR.exec(res.body)?.[0] ?? null, path).toBeNull();
          }
        }
      }
      expect(await tableCounts()).toEqual(before);
    });

    it('in every field of every action', async () => {
      const before = await tableCounts();
      const actions = readdirSync(join(ROOT, 'src/actions')).flatMap((f) =>
        [...readFileSync(join(ROOT, 'src/actions', f), 'utf8').matchAll(/^ {2}(\w+): defineAction\(/gm)].map((m) => m[1] ?? ''),
      );
      expect(actions.length).toBeGreaterThan(20);
      let n = 0;
      for (const payload of [...SQL, ...IDS, NUL]) {
        for (const action of actions) {
          const fields = Object.fromEntries(form.map((name) => [name, payload]));
          const res = await (await as('owner')).speakingFrom(`127.0.61.${(++n % 250) + 1}`).post(`/console?_action=${action}`, fields);
          expect(res.status, `${action} with ${payload} answered ${res.status}`).toBeLessThan(500);
          expect(SQL_ERROR.exec(res.body)?.[0] ?? null, `${action} with ${payload}`).toBeNull();
          expectNoStackTrace(res.body, `${action} with ${payload}`);
        }
      }
      expect(await tableCounts()).toEqual(before);
      if (engine.name === 'sqlite') expect(await running.integrityCheck()).toBe('ok');
    }, 240_000);

    it('stored and shown back verbatim; LIKE wildcards match nothing', async () => {
      const title = "O'Brien said \"1' OR '1'='1\"; DROP TABLE incidents;-- 100% _done_";
      const res = await (await as('responder')).post('/console/incidents/new?_action=publishIncident', {
        title,
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:web-app': 'degraded',
        body: "Robert'); DROP TABLE subscribers;--",
      });
      expect(res.status).toBe(303);
      const id = /\/console\/incidents\/(\d+)/.exec(res.headers.get('location') ?? '')?.[1] ?? '';
      const page = pageText((await send(`${server.url}/incidents/${id}`)).body);
      expect(page).toContain(title);
      expect(page).toContain("Robert'); DROP TABLE subscribers;--");
      for (const q of ['%', '_', '%@%', "' OR '1'='1", '*']) {
        const search = await (await as('admin')).get(`/console/subscribers?q=${encodeURIComponent(q)}`);
        expect(search.status, q).toBe(200);
        expect(search.body, q).not.toMatch(/reader@customer\.example|href="\/console\/subscribers\/\d+"/);
      }
    });
  });

  // ---- paths ----

  describe('path traversal in slugs, tokens and file names', () => {
    const TRAVERSAL = [
      '../../../../etc/passwd',
      '..%2f..%2f..%2f..%2fetc%2fpasswd',
      '..%252f..%252f..%252fetc%252fpasswd',
      '%2e%2e%2f%2e%2e%2fpackage.json',
      '....//....//package.json',
      '..\\..\\..\\secrets.json',
      '..%5c..%5csecrets.json',
      '%c0%ae%c0%ae%2f%c0%ae%c0%ae%2fpackage.json',
      '..;/..;/package.json',
      '/etc/passwd%00.ics',
      '.%00./.%00./package.json',
    ];
    const LEAK = /root:x:0:0|"name": "candor"|"encryptionKey"|SQLite format 3|-----BEGIN|^import |export default defineConfig/m;

    it('reads no file and no secret through any dynamic route, static file or Astro endpoint', async () => {
      const secrets = serverSecrets(server.dataDir);
      const routes = [...sourceRoutes().keys()].filter((p) => p.includes('['));
      const paths = [
        ...routes.flatMap((pattern) => TRAVERSAL.map((t) => pattern.replace(/\[[^\]]+\]/g, t))),
        ...TRAVERSAL.flatMap((t) => [`/${t}`, `/_astro/${t}`, `/pagefind/${t}`, `/docs/${t}`, `/.well-known/${t}`, `/api/v1/${t}`]),
        '/_image?href=%2F..%2F..%2Fpackage.json&w=10&f=png',
        '/console/incidents/new?template=..%2F..%2Fsite',
        '/console/incidents/new?template=..%2F..%2F..%2Fpackage.json',
      ];
      const owner = await as('owner');
      for (const path of paths) {
        for (const res of [await send(`${server.url}${path}`), await owner.get(path)]) {
          expect(res.status, `${path} answered ${res.status}`).toBeLessThan(500);
          expect(LEAK.exec(res.body)?.[0] ?? null, path).toBeNull();
          expect(leaked(res.body, secrets), path).toEqual([]);
        }
      }
    });
  });

  // ---- email headers ----

  describe('line breaks in what becomes an email header', () => {
    const INJECTED = 'attacker@evil.example';
    const CRLF = [
      '\r\nBcc: attacker@evil.example',
      '\nBcc: attacker@evil.example',
      '%0d%0aBcc: attacker@evil.example',
      '\r\n\r\n<b>body</b>',
    ];

    it('addresses with a line break are refused as addresses everywhere they are typed', async () => {
      const admin = await as('admin');
      const owner = await as('owner');
      let n = 0;
      for (const tail of CRLF) {
        const address = `victim@customer.example${tail}`;
        const signup = await new Client(server.url, `127.0.62.${++n}`).post('/subscribe?_action=subscribe', {
          channel: 'email',
          address,
          topics: 'incidents',
        });
        expect(pageText(signup.body)).toMatch(/is not a valid email address/);
        expect(pageText((await owner.post('/console/staff?_action=inviteStaff', { email: address, role: 'viewer' })).body)).toContain(
          'Enter a valid email address',
        );
        expect(pageText((await admin.post('/console/settings?_action=sendTestMessage', { channel: 'email', address })).body)).toContain(
          'Enter a valid email address',
        );
      }
    });

    it('a title with a line break reaches no subject as one, including the staff reminders built from it', async () => {
      const responder = await as('responder');
      const res = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Queue delays\r\nBcc: attacker@evil.example',
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:web-app': 'degraded',
        body: 'Messages are delayed.',
      });
      expect(res.status).toBe(303);
      const id = /\/console\/incidents\/(\d+)/.exec(res.headers.get('location') ?? '')?.[1] ?? '';
      // the reminder 15 minutes before the promised update, run now by a worker as in production
      const due = await writeRows(db, async (q) => {
        const j = q.t.jobs;
        return q.db
          .update(j)
          .set({ runAt: new Date(Date.now() - 1000) })
          .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.key, `reminder:${id}:soon`)))
          .returning({ key: j.key });
      });
      expect(due).toHaveLength(1);
      // not spawnSync: the fake Resend answering the worker lives in this process
      const worker = spawn(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--once'], {
        cwd: ROOT,
        env: { ...process.env, ...env, CANDOR_DATA_DIR: server.dataDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => worker.once('exit', resolve));
      expect(code, stderr).toBe(0);
      await until(
        () => resend.emails.some((e) => e.subject.startsWith('Due in 15 minutes') && e.subject.includes('Queue delays')),
        'the reminder email',
      );
      for (const e of resend.emails) {
        expect(e.subject, e.subject).not.toMatch(/[\r\n]/);
        for (const [name, value] of Object.entries(e.headers ?? {})) expect(`${name}: ${value}`).not.toMatch(/[\r\n]/);
      }
      expect(resend.emailsTo(INJECTED)).toEqual([]);
    });
  });

  describe('what the attacks left behind', () => {
    it('no stack trace, SQL error or secret in the server’s log', () => {
      const output = server.output();
      expect(SQL_ERROR.exec(output)?.[0] ?? null).toBeNull();
      expect(leaked(output, [...serverSecrets(server.dataDir), WEBHOOK_SECRET, PASSWORD, 'xoxb-injection-workspace'])).toEqual([]);
    });
  });
});
