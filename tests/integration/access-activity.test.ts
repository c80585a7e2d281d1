/**
 * Console → Access's figures, the exports, revoking and the grant expiry notice (src/core/access/
 * activity.ts, grants.ts; src/stores/access-activity.ts), on each engine: every figure against the rows
 * the fixtures wrote (tests/helpers/access-fixtures.ts); a revocation once, audited and mailed; the
 * expiry notice once per grant, 7 days ahead, with a clock, on two nodes at once.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reading } from '../../db/engine/query.ts';
import type { Database } from '../../db/engine/types.ts';
import {
  ACCEPTANCES_CSV_HEADER,
  ACTIVITY_CSV_HEADER,
  acceptancesCsv,
  accessOverview,
  activityCsv,
  formatWaited,
} from '../../src/core/access/activity.ts';
import { type GrantMailDeps, grantState, isGrantLive, revokeAccessGrant, sendGrantExpiryNotices } from '../../src/core/access/grants.ts';
import { auditKeyring, bindAuditKeys } from '../../src/core/audit/key.ts';
import { acceptanceOn, customerOn, grantOn, ndaTextOn, requestOn, viewOn } from '../helpers/access-fixtures.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { enginesUnderTest, type OpenedEngine } from '../helpers/postgres.ts';
import { staffMemberOn } from '../helpers/staff.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2026-12-03T10:00:00Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const KEYRING = auditKeyring('access-activity-test-secret-0123456789');

async function collect(gen: AsyncGenerator<string>): Promise<string[]> {
  let text = '';
  for await (const chunk of gen) text += chunk;
  return text.trimEnd().split('\r\n');
}

describe('grant states', () => {
  it('is expired from expiresAt on, expiring within 7 days, revoked whatever its date', () => {
    expect(grantState({ expiresAt: at(8 * DAY), revokedAt: null }, NOW)).toBe('active');
    expect(grantState({ expiresAt: at(7 * DAY), revokedAt: null }, NOW)).toBe('expiring');
    expect(grantState({ expiresAt: at(1), revokedAt: null }, NOW)).toBe('expiring');
    expect(grantState({ expiresAt: NOW, revokedAt: null }, NOW)).toBe('expired');
    expect(grantState({ expiresAt: at(30 * DAY), revokedAt: at(-HOUR) }, NOW)).toBe('revoked');
    expect(isGrantLive({ expiresAt: at(1), revokedAt: null }, NOW)).toBe(true);
    expect(isGrantLive({ expiresAt: NOW, revokedAt: null }, NOW)).toBe(false);
    expect(isGrantLive({ expiresAt: at(DAY), revokedAt: NOW }, NOW)).toBe(false);
  });

  it('says how long a request has waited', () => {
    expect(formatWaited(12 * 60_000)).toBe('12 min');
    expect(formatWaited(5 * HOUR + 12 * 60_000)).toBe('5 h 12 min');
    expect(formatWaited(3 * DAY + 4 * HOUR + 59_000)).toBe('3 d 4 h');
  });
});

describe.each(enginesUnderTest())('on $name', (engine) => {
  let opened: OpenedEngine;
  let db: Database;
  let staffId: number;
  const staff = () => ({
    actor: { type: 'staff' as const, id: staffId, label: 'reviewer@lumenwork.example' },
    ip: '203.0.113.9',
    userAgent: 'tests',
  });
  const mail = (database: Database): GrantMailDeps => ({
    database,
    publicUrl: new URL('https://trust.lumenwork.example/'),
    organisation: 'Lumenwork',
    titles: new Map([['soc-2-type-ii-report', 'SOC 2 Type II report']]),
  });

  beforeEach(async () => {
    opened = await engine.open();
    db = bindAuditKeys(opened.database, KEYRING);
    staffId = await staffMemberOn(db, 'admin', { enrolled: true, email: 'reviewer@lumenwork.example' });
  });
  afterEach(async () => {
    await opened?.close();
  });

  const notifications = (kind: string) =>
    db.read(async (r) => {
      const q = reading(r);
      const n = q.t.notifications;
      return q.db
        .select({ id: n.id, title: n.title, content: n.content, audience: n.audience })
        .from(n)
        .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.kind, kind)))
        .orderBy(asc(n.id));
    });
  const audit = (action: string) =>
    db.read(async (r) => {
      const q = reading(r);
      const a = q.t.auditLog;
      return q.db
        .select({ target: a.target, actorId: a.actorId, actorType: a.actorType, summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)))
        .orderBy(asc(a.id));
    });

  /** Two companies, one spelt two ways; one person in a verified domain of a customer organisation. */
  async function seed() {
    await keepOrganisationOn(db, 'Acme Bank', { domains: ['acmebank.example'] });
    const ann = await customerOn(db, 'ann@acmebank.example');
    const bob = await customerOn(db, 'bob@initech.example');
    const cat = await customerOn(db, 'cat@gmail.example');
    const pending1 = await requestOn(db, {
      recipientId: cat,
      name: 'Cat',
      company: 'Initech',
      documents: ['soc-2-type-ii-report'],
      status: 'pending',
      createdAt: at(-26 * HOUR),
    });
    const pending0 = await requestOn(db, {
      recipientId: cat,
      name: 'Cat',
      company: 'initech ',
      documents: ['penetration-test-summary'],
      status: 'pending',
      createdAt: at(-50 * HOUR),
    });
    await requestOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['x'],
      status: 'unverified',
      createdAt: at(-HOUR),
    });
    const byRule = await requestOn(db, {
      recipientId: ann,
      name: 'Ann',
      company: 'Acme',
      documents: ['soc-2-type-ii-report'],
      status: 'approved',
      createdAt: at(-10 * DAY),
      decidedVia: 'rule',
      rulePattern: '*.acmebank.example',
      decidedAt: at(-10 * DAY + 1000),
    });
    const byStaff = await requestOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['soc-2-type-ii-report'],
      status: 'refused',
      createdAt: at(-5 * DAY),
      decidedVia: 'staff',
      decidedBy: staffId,
      decidedAt: at(-4 * DAY),
    });
    const annGrant = await grantOn(db, {
      requestId: byRule,
      recipientId: ann,
      name: 'Ann',
      company: 'Acme',
      documents: ['soc-2-type-ii-report'],
      createdAt: at(-10 * DAY),
      expiresAt: at(80 * DAY),
    });
    const soonGrant = await grantOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['penetration-test-summary'],
      createdAt: at(-20 * DAY),
      createdBy: staffId,
      expiresAt: at(3 * DAY),
    });
    const expiredGrant = await grantOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: ['soc-2-type-ii-report'],
      createdAt: at(-100 * DAY),
      createdBy: staffId,
      expiresAt: at(-DAY),
    });
    const revokedGrant = await grantOn(db, {
      recipientId: ann,
      name: 'Ann',
      company: 'ACME',
      documents: ['penetration-test-summary'],
      createdAt: at(-30 * DAY),
      createdBy: staffId,
      expiresAt: at(60 * DAY),
      revokedAt: at(-2 * DAY),
      revokedBy: staffId,
    });
    await viewOn(db, {
      grantId: annGrant,
      recipientId: ann,
      document: 'soc-2-type-ii-report',
      kind: 'view',
      at: at(-9 * DAY),
      ip: '198.51.100.1',
    });
    await viewOn(db, { grantId: annGrant, recipientId: ann, document: 'soc-2-type-ii-report', kind: 'view', at: at(-8 * DAY) });
    await viewOn(db, { grantId: annGrant, recipientId: ann, document: 'soc-2-type-ii-report', kind: 'download', at: at(-7 * DAY) });
    await viewOn(db, {
      grantId: soonGrant,
      recipientId: bob,
      document: 'penetration-test-summary',
      kind: 'download',
      at: at(-HOUR),
      ip: '198.51.100.2',
    });
    const hash = await ndaTextOn(db, 'Mutual NDA', 'The parties agree…');
    await acceptanceOn(db, {
      ndaHash: hash,
      recipientId: ann,
      grantId: annGrant,
      fullName: '=Ann Example',
      company: 'Acme',
      acceptedAt: at(-10 * DAY),
      ip: '198.51.100.1',
      userAgent: 'Mozilla/5.0 "quoted"',
    });
    return { ann, bob, cat, pending0, pending1, byRule, byStaff, annGrant, soonGrant, expiredGrant, revokedGrant, hash };
  }

  it('shows the queue, the decisions, grants by state, activity per company and the acceptances, from the rows', async () => {
    const s = await seed();
    const o = await accessOverview(db, TEST_KEYS, staff(), NOW);
    expect(o.pendingTotal).toBe(2);
    expect(o.pending.map((p) => [p.id, p.person.email, p.waitedMs])).toEqual([
      [s.pending0, 'cat@gmail.example', 50 * HOUR],
      [s.pending1, 'cat@gmail.example', 26 * HOUR],
    ]);
    expect(o.decided.map((d) => [d.id, d.status, d.decidedBy])).toEqual([
      [s.byStaff, 'refused', 'reviewer@lumenwork.example'],
      [s.byRule, 'approved', 'rule *.acmebank.example'],
    ]);
    expect(o.grants.active.map((g) => g.id)).toEqual([s.annGrant]);
    expect(o.grants.expiring.map((g) => g.id)).toEqual([s.soonGrant]);
    expect(o.grants.expired.map((g) => g.id)).toEqual([s.expiredGrant]);
    expect(o.grants.revoked.map((g) => [g.id, g.revokedBy])).toEqual([[s.revokedGrant, 'reviewer@lumenwork.example']]);
    expect(o.grants.active[0]?.person).toEqual({ recipientId: s.ann, email: 'ann@acmebank.example', organisation: 'Acme Bank' });
    expect(o.grants.active[0]?.grantedBy).toBe('a rule');

    // Acme and ACME are one company; Initech and "initech " too. Requests exclude the unverified one.
    const acme = o.companies.find((c) => c.company.toLowerCase() === 'acme');
    expect(acme).toMatchObject({ company: 'Acme', organisations: ['Acme Bank'], requests: 1, grants: 2, views: 2, downloads: 1 });
    expect(acme?.people.map((p) => [p.person.email, p.documents])).toEqual([
      ['ann@acmebank.example', [{ document: 'soc-2-type-ii-report', views: 2, downloads: 1, last: at(-7 * DAY) }]],
    ]);
    const initech = o.companies.find((c) => c.company === 'Initech');
    expect(initech).toMatchObject({ organisations: [], requests: 3, grants: 2, views: 0, downloads: 1 });
    expect(initech?.people.map((p) => [p.person.email, p.requests, p.grants, p.downloads]).sort()).toEqual([
      ['bob@initech.example', 1, 2, 1],
      ['cat@gmail.example', 2, 0, 0],
    ]);
    expect(o.companies).toHaveLength(2);
    expect(o.recentViews.map((v) => [v.person.email, v.kind, v.at, v.ip])).toEqual([
      ['bob@initech.example', 'download', at(-HOUR), '198.51.100.2'],
      ['ann@acmebank.example', 'download', at(-7 * DAY), null],
      ['ann@acmebank.example', 'view', at(-8 * DAY), null],
      ['ann@acmebank.example', 'view', at(-9 * DAY), '198.51.100.1'],
    ]);
    expect(o.acceptances).toEqual([
      expect.objectContaining({ fullName: '=Ann Example', ndaTitle: 'Mutual NDA', ndaHash: s.hash, acceptedAt: at(-10 * DAY) }),
    ]);
    expect(await audit('access.activity.viewed')).toEqual([expect.objectContaining({ actorId: staffId, target: 'access' })]);
  });

  it('exports one row per event, and the acceptance record, formulas defused', async () => {
    const s = await seed();
    const rows = await collect(activityCsv(db, TEST_KEYS, NOW, 2));
    expect(rows[0]).toBe(ACTIVITY_CSV_HEADER);
    // 5 requests + 2 decisions, 4 grants + 1 revoked + 1 expired, 4 views
    expect(rows).toHaveLength(1 + 7 + 6 + 4);
    expect(rows).toContain(
      `${at(-4 * DAY).toISOString()},refused,Bob,Initech,bob@initech.example,,soc-2-type-ii-report,reviewer@lumenwork.example,${s.byStaff},,`,
    );
    expect(rows).toContain(
      `${at(-10 * DAY + 1000).toISOString()},approved,Ann,Acme,ann@acmebank.example,Acme Bank,soc-2-type-ii-report,rule *.acmebank.example,${s.byRule},,`,
    );
    expect(rows).toContain(
      `${at(-2 * DAY).toISOString()},revoked,Ann,ACME,ann@acmebank.example,Acme Bank,penetration-test-summary,reviewer@lumenwork.example,,${s.revokedGrant},`,
    );
    expect(rows).toContain(`${at(-DAY).toISOString()},expired,Bob,Initech,bob@initech.example,,soc-2-type-ii-report,,,${s.expiredGrant},`);
    expect(rows).toContain(
      `${at(-HOUR).toISOString()},download,Bob,Initech,bob@initech.example,,penetration-test-summary,Bob,,${s.soonGrant},198.51.100.2`,
    );
    expect(rows.filter((r) => r.includes(',view,'))).toHaveLength(2);

    const acceptances = await collect(acceptancesCsv(db, TEST_KEYS));
    expect(acceptances).toEqual([
      ACCEPTANCES_CSV_HEADER,
      `${at(-10 * DAY).toISOString()},'=Ann Example,Acme,ann@acmebank.example,198.51.100.1,"Mozilla/5.0 ""quoted""",${s.hash},Mutual NDA,${s.annGrant}`,
    ]);
  });

  it('revokes a live grant once: audited, the customer mailed; a second time, or an expired grant, is refused with a message', async () => {
    const s = await seed();
    const done = await revokeAccessGrant(mail(db), s.annGrant, staff(), NOW);
    expect(done.ok).toBe(true);
    const again = await revokeAccessGrant(mail(db), s.annGrant, staff(), at(1000));
    expect(again).toEqual({ ok: false, message: `Grant #${s.annGrant} was already revoked on 3 December 2026, 10:00 UTC.` });
    const expired = await revokeAccessGrant(mail(db), s.expiredGrant, staff(), NOW);
    expect(expired).toEqual({
      ok: false,
      message: `Grant #${s.expiredGrant} already expired on 2 December 2026, 10:00 UTC; there is nothing to revoke.`,
    });
    expect(await revokeAccessGrant(mail(db), 999_999, staff(), NOW)).toEqual({ ok: false, message: 'There is no grant #999999.' });

    const o = await accessOverview(db, TEST_KEYS, staff(), at(1000));
    expect(o.grants.revoked.map((g) => g.id)).toContain(s.annGrant);
    expect(await audit('access.grant.revoked')).toEqual([
      expect.objectContaining({ actorId: staffId, target: `access_grant:${s.annGrant}` }),
    ]);
    const sent = await notifications('access-grant-revoked');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.audience).toEqual({ kind: 'recipients', ids: [s.ann], includePending: true });
    const text = (sent[0]?.content as { email?: { text: string } } | undefined)?.email?.text ?? '';
    expect(text).toContain('SOC 2 Type II report');
    expect(text).toContain('https://trust.lumenwork.example/documents/request');
  });

  it('two revocations at once: one revokes, the other is told it was already revoked', async () => {
    const s = await seed();
    const other = bindAuditKeys(opened.another(), KEYRING);
    const results = await Promise.all([
      revokeAccessGrant(mail(db), s.annGrant, staff(), NOW),
      revokeAccessGrant(mail(other), s.annGrant, staff(), NOW),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.find((r) => !r.ok)).toMatchObject({ ok: false, message: expect.stringContaining('already revoked') });
    expect(await audit('access.grant.revoked')).toHaveLength(1);
    expect(await notifications('access-grant-revoked')).toHaveLength(1);
  });

  it('tells each customer once, 7 days before their grant ends, however often and on however many nodes it runs', async () => {
    const ann = await customerOn(db, 'ann@acmebank.example');
    const bob = await customerOn(db, 'bob@initech.example');
    const docs = ['soc-2-type-ii-report'];
    const ends = at(10 * DAY);
    const annGrant = await grantOn(db, {
      recipientId: ann,
      name: 'Ann',
      company: 'Acme',
      documents: docs,
      createdAt: NOW,
      expiresAt: ends,
    });
    const bobGrant = await grantOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: docs,
      createdAt: NOW,
      expiresAt: at(12 * DAY),
    });
    await grantOn(db, {
      recipientId: bob,
      name: 'Bob',
      company: 'Initech',
      documents: docs,
      createdAt: NOW,
      expiresAt: at(5 * DAY),
      revokedAt: NOW,
    });
    await grantOn(db, { recipientId: bob, name: 'Bob', company: 'Initech', documents: docs, createdAt: NOW, expiresAt: at(-1) });
    const other = bindAuditKeys(opened.another(), KEYRING);

    // More than 7 days ahead: nothing.
    expect(await sendGrantExpiryNotices(mail(db), NOW)).toEqual([]);
    // Every hour for six days, two nodes at once.
    const noticed: number[] = [];
    for (let hour = 1; hour <= 6 * 24; hour += 1) {
      const now = at(hour * HOUR);
      const [a, b] = await Promise.all([sendGrantExpiryNotices(mail(db), now), sendGrantExpiryNotices(mail(other), now)]);
      noticed.push(...a, ...b);
      if (hour === 3 * 24 - 1) expect(noticed).toEqual([]);
      if (hour === 3 * 24) expect(noticed).toEqual([annGrant]);
    }
    expect(noticed.sort()).toEqual([annGrant, bobGrant].sort());
    const sent = await notifications('access-grant-expiry');
    expect(sent.map((n) => n.title)).toEqual([
      'Your access to Lumenwork documents ends on 13 December 2026, 10:00 UTC',
      'Your access to Lumenwork documents ends on 15 December 2026, 10:00 UTC',
    ]);
    const text = (sent[0]?.content as { email?: { text: string } } | undefined)?.email?.text ?? '';
    expect(text).toContain('SOC 2 Type II report');
    expect(text).toContain('https://trust.lumenwork.example/documents/request');
    expect(sent[0]?.audience).toEqual({ kind: 'recipients', ids: [ann], includePending: true });
    expect((await audit('access.grant.expiry_noticed')).map((a) => [a.target, a.actorType])).toEqual([
      [`access_grant:${annGrant}`, 'system'],
      [`access_grant:${bobGrant}`, 'system'],
    ]);
    // After the end: nothing more.
    expect(await sendGrantExpiryNotices(mail(db), at(20 * DAY))).toEqual([]);
  });
});
