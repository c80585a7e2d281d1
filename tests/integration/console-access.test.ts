/**
 * Console → Access through the running server, on each engine (tests/helpers/engine-server.ts): the
 * page shows what the rows hold (written by tests/helpers/access-fixtures.ts), the CSV exports, Revoke,
 * who may see and do what (viewer and responder refused, admin and owner allowed; access.export for the
 * CSVs), the audit entries, and the job runner's expiry notice to a customer whose grant ends this week.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { acceptanceOn, customerOn, grantOn, ndaTextOn, requestOn, viewOn } from '../helpers/access-fixtures.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { until } from '../helpers/page.ts';
import { activeMarkup } from '../helpers/security.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MARKUP = '<img src=x onerror=alert(1)>';
const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
const rowOf = (html: string, attribute: string, id: number) =>
  new RegExp(`<tr[^>]*${attribute}="${id}"[^>]*>([\\s\\S]*?)</tr>`).exec(html)?.[1] ?? '';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let db: Database;
  let admin: ConsoleClient;
  let adminId: number;
  let soonGrantAtStart = 0;
  let ndaHash = '';
  const t0 = Date.now();
  const at = (ms: number) => new Date(t0 + ms);
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    running = await engine.start({
      env: { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex') },
      // a grant ending in 3 days, there when the server starts: its job runner tells the customer at once
      beforeStart: async (database) => {
        const dan = await customerOn(database, 'dan@umbrella.example');
        soonGrantAtStart = await grantOn(database, {
          recipientId: dan,
          name: 'Dan',
          company: 'Umbrella',
          documents: ['soc-2-type-ii-report'],
          createdAt: at(-DAY),
          expiresAt: at(3 * DAY),
        });
      },
    });
    db = running.database;
    const staff = await signedInStaffOn(db, 'admin');
    adminId = staff.staffId;
    admin = new ConsoleClient(running.server.url);
    admin.setCookie('candor_session', staff.token);

    await keepOrganisationOn(db, 'Acme Bank', { domains: ['acmebank.example'] });
    const ann = await customerOn(db, 'ann@acmebank.example');
    const bob = await customerOn(db, 'bob@initech.example');
    ids.ann = ann;
    ids.bob = bob;
    ids.pending = await requestOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: MARKUP,
      documents: ['penetration-test-summary'],
      status: 'pending',
      createdAt: at(-(26 * HOUR + 5 * 60_000)),
    });
    ids.byRule = await requestOn(db, {
      recipientId: ann,
      name: 'Ann',
      company: 'Acme',
      documents: ['soc-2-type-ii-report'],
      status: 'approved',
      createdAt: at(-10 * DAY),
      decidedVia: 'rule',
      rulePattern: '*.acmebank.example',
      decidedAt: at(-10 * DAY),
    });
    ids.byStaff = await requestOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['soc-2-type-ii-report'],
      status: 'refused',
      createdAt: at(-5 * DAY),
      decidedVia: 'staff',
      decidedBy: adminId,
      decidedAt: at(-4 * DAY),
    });
    ids.live = await grantOn(db, {
      requestId: ids.byRule,
      recipientId: ann,
      name: 'Ann',
      company: 'Acme',
      documents: ['soc-2-type-ii-report'],
      createdAt: at(-10 * DAY),
      expiresAt: at(80 * DAY),
    });
    ids.revoked = await grantOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['penetration-test-summary'],
      createdAt: at(-30 * DAY),
      createdBy: adminId,
      expiresAt: at(60 * DAY),
      revokedAt: at(-2 * DAY),
      revokedBy: adminId,
    });
    ids.expired = await grantOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['soc-2-type-ii-report'],
      createdAt: at(-100 * DAY),
      createdBy: adminId,
      expiresAt: at(-DAY),
    });
    ids.view = await viewOn(db, {
      grantId: ids.live,
      recipientId: ann,
      document: 'soc-2-type-ii-report',
      kind: 'view',
      at: at(-9 * DAY),
      ip: '198.51.100.7',
    });
    ids.download = await viewOn(db, {
      grantId: ids.live,
      recipientId: ann,
      document: 'soc-2-type-ii-report',
      kind: 'download',
      at: at(-8 * DAY),
      ip: '198.51.100.7',
    });
    ndaHash = await ndaTextOn(db, 'Mutual NDA', 'The parties agree to keep it confidential.');
    ids.acceptance = await acceptanceOn(db, {
      ndaHash,
      recipientId: ann,
      grantId: ids.live,
      fullName: 'Ann Example',
      company: '=cmd|calc',
      acceptedAt: at(-10 * DAY),
      ip: '198.51.100.7',
      userAgent: 'Mozilla/5.0',
    });
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
  });

  const audit = (action: string) =>
    readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ actorId: a.actorId, target: a.target, summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)))
        .orderBy(asc(a.id));
    });
  const notifications = (kind: string) =>
    readRows(db, (q) => {
      const n = q.t.notifications;
      return q.db
        .select({ id: n.id, audience: n.audience })
        .from(n)
        .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.kind, kind)))
        .orderBy(asc(n.id));
    });
  const grantRow = (id: number) =>
    readRows(db, async (q) => {
      const g = q.t.accessGrants;
      const rows = await q.db
        .select({ revokedAt: g.revokedAt, revokedBy: g.revokedBy, expiryNoticeAt: g.expiryNoticeAt })
        .from(g)
        .where(and(eq(g.trustCenterId, q.trustCenter), eq(g.id, id)));
      return rows[0];
    });

  it('shows the queue, decisions, grants, activity per company and acceptances as the rows hold them, audited', async () => {
    const page = await admin.get('/console/access');
    expect(page.status).toBe(200);
    const html = page.html;
    expect(html).toMatch(/<a href="\/console\/access" aria-current="page">Access<\/a>/);
    // the queue: a link to the request's review page, how long it has waited, the company escaped
    const pending = rowOf(html, 'data-request', ids.pending ?? 0);
    expect(pending).toContain(`href="/console/access/requests/${ids.pending}"`);
    expect(text(pending)).toContain('1 d 2 h');
    expect(text(pending)).toContain('bob@initech.example');
    expect(pending).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(activeMarkup(html)).toEqual([]);
    expect(text(html)).toContain('Waiting for review (1)');
    // decided: by a rule, by a staff member
    expect(text(rowOf(html, 'data-request', ids.byRule ?? 0))).toContain('rule *.acmebank.example');
    const refused = text(rowOf(html, 'data-request', ids.byStaff ?? 0));
    expect(refused).toContain('refused');
    expect(refused).toMatch(/admin-\d+-\d+@lumenwork\.example/);
    // grants by state, with the email opened and the organisation of its verified domain
    expect(html).toMatch(new RegExp(`<tr data-grant="${ids.live}" data-state="active">`));
    expect(html).toMatch(new RegExp(`<tr data-grant="${ids.revoked}" data-state="revoked">`));
    expect(html).toMatch(new RegExp(`<tr data-grant="${ids.expired}" data-state="expired">`));
    expect(html).toMatch(new RegExp(`<tr data-grant="${soonGrantAtStart}" data-state="expiring">`));
    const live = text(rowOf(html, 'data-grant', ids.live ?? 0));
    expect(live).toContain('ann@acmebank.example (Acme Bank)');
    expect(live).toContain('SOC 2 Type II report');
    expect(rowOf(html, 'data-grant', ids.live ?? 0)).toContain('Revoke');
    expect(rowOf(html, 'data-grant', ids.expired ?? 0)).not.toContain('Revoke');
    // activity per company: as given, with the organisation, and the counts from the views
    expect(html).toMatch(/<section class="company"[^>]*data-company="Acme"/);
    expect(text(html)).toContain('Acme (as given)');
    expect(text(html)).toContain('Customer organisation by verified email domain: Acme Bank');
    expect(text(html)).toContain('1 person · 1 request · 1 grant · 1 view · 1 download');
    const annDoc = text(
      html.match(new RegExp(`<tr data-person="${ids.ann}" data-document="soc-2-type-ii-report">([\\s\\S]*?)</tr>`))?.[1] ?? '',
    );
    expect(annDoc).toMatch(/Ann ann@acmebank\.example \(Acme Bank\) SOC 2 Type II report 1 1 \d{4}-\d{2}-\d{2}/);
    // recent views: who, what, IP
    const view = text(rowOf(html, 'data-view', ids.view ?? 0));
    expect(view).toContain('view');
    expect(view).toContain('198.51.100.7');
    expect(rowOf(html, 'data-view', ids.download ?? 0)).toContain('download');
    // NDA acceptances: title and the first 12 hex of the hash
    const acceptance = text(rowOf(html, 'data-acceptance', ids.acceptance ?? 0));
    expect(acceptance).toContain(`Ann Example =cmd|calc ann@acmebank.example Mutual NDA ${ndaHash.slice(0, 12)}`);
    expect(html).not.toContain(ndaHash.slice(0, 13));
    expect(html).toContain('href="/console/access/export.csv"');
    expect(await audit('access.activity.viewed')).toEqual(
      expect.arrayContaining([expect.objectContaining({ actorId: adminId, target: 'access' })]),
    );
  });

  it('exports every event and the acceptance record as CSV, formulas defused, audited', async () => {
    const csv = await admin.get('/console/access/export.csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="candor-access-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = csv.html.trim().split('\r\n');
    expect(lines[0]).toBe('when,what,person,company,email,organisation,documents,by,request_id,grant_id,ip');
    // 3 requests + 2 decisions; 4 grants + 1 revoked + 1 expired; 2 views
    expect(lines).toHaveLength(1 + 5 + 6 + 2);
    expect(lines).toContain(
      `${at(-8 * DAY).toISOString()},download,Ann,Acme,ann@acmebank.example,Acme Bank,soc-2-type-ii-report,Ann,,${ids.live},198.51.100.7`,
    );
    expect(lines.find((l) => l.includes(',revoked,'))).toContain(`,${ids.revoked},`);
    expect(await audit('access.activity.exported')).toEqual([
      expect.objectContaining({ actorId: adminId, summary: { format: 'csv', requests: 3, grants: 4, views: 2 } }),
    ]);

    const acceptances = await admin.get('/console/access/acceptances.csv');
    expect(acceptances.status).toBe(200);
    const rows = acceptances.html.trim().split('\r\n');
    expect(rows[0]).toBe('accepted_at,full_name,company,email,ip,user_agent,nda_hash,nda_title,grant_id');
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatch(
      new RegExp(
        `^${at(-10 * DAY).toISOString()},Ann Example,'=cmd\\|calc,ann@acmebank\\.example,198\\.51\\.100\\.7,Mozilla/5\\.0,[0-9a-f]{64},Mutual NDA,${ids.live}$`,
      ),
    );
    expect(await audit('access.acceptances.exported')).toEqual([
      expect.objectContaining({ actorId: adminId, summary: { format: 'csv', rows: 1 } }),
    ]);
  });

  it('viewers and responders see none of it and cannot revoke; owners can see it', async () => {
    for (const role of ['viewer', 'responder'] as const) {
      const client = new ConsoleClient(running.server.url);
      client.setCookie('candor_session', (await signedInStaffOn(db, role)).token);
      for (const path of ['/console/access', '/console/access/export.csv', '/console/access/acceptances.csv']) {
        const res = await client.get(path);
        expect(res.status, `${role} ${path}`).toBe(403);
        expect(res.html).not.toContain('ann@acmebank.example');
      }
      const posted = await client.post('/console/access?_action=revokeAccessGrant', { grantId: String(ids.live) });
      expect(posted.status).toBe(403);
      const dashboard = await client.get('/console');
      expect(dashboard.html).not.toContain('href="/console/access"');
    }
    expect((await grantRow(ids.live ?? 0))?.revokedAt).toBeNull();
    const owner = new ConsoleClient(running.server.url);
    owner.setCookie('candor_session', (await signedInStaffOn(db, 'owner')).token);
    expect((await owner.get('/console/access')).status).toBe(200);
    expect((await owner.get('/console/access/acceptances.csv')).status).toBe(200);
  });

  it('revokes a grant at once, audited and mailed; revoking it again gets a clear message', async () => {
    const done = await admin.post('/console/access?_action=revokeAccessGrant', { grantId: String(ids.live) });
    expect(done.status).toBe(200);
    expect(text(done.html)).toContain(`Grant #${ids.live} of Ann was revoked as of`);
    expect(done.html).toMatch(new RegExp(`<tr data-grant="${ids.live}" data-state="revoked">`));
    const row = await grantRow(ids.live ?? 0);
    expect(row?.revokedBy).toBe(adminId);
    expect(row?.revokedAt).toBeInstanceOf(Date);
    expect(await audit('access.grant.revoked')).toEqual([
      expect.objectContaining({ actorId: adminId, target: `access_grant:${ids.live}` }),
    ]);
    expect((await notifications('access-grant-revoked')).map((n) => n.audience)).toEqual([
      { kind: 'recipients', ids: [ids.ann], includePending: true },
    ]);

    const again = await admin.post('/console/access?_action=revokeAccessGrant', { grantId: String(ids.live) });
    expect(again.status).toBe(400);
    expect(text(again.html)).toMatch(new RegExp(`Grant #${ids.live} was already revoked on \\d+ \\w+ \\d{4}, \\d{2}:\\d{2} UTC\\.`));
    const bad = await admin.post('/console/access?_action=revokeAccessGrant', { grantId: 'x' });
    expect(bad.status).toBe(400);
    expect(text(bad.html)).toContain('Choose a grant to revoke (grantId).');
    expect(await audit('access.grant.revoked')).toHaveLength(1);
  });

  it('the job runner tells a customer whose grant ends this week, once', async () => {
    await until(async () => (await notifications('access-grant-expiry')).length > 0, 'the expiry notice', 30_000);
    expect((await grantRow(soonGrantAtStart))?.expiryNoticeAt).toBeInstanceOf(Date);
    expect(await notifications('access-grant-expiry')).toHaveLength(1);
    expect(await audit('access.grant.expiry_noticed')).toEqual([expect.objectContaining({ target: `access_grant:${soonGrantAtStart}` })]);
  });
});
