/**
 * Access requests over HTTP, on each engine (tests/helpers/engine-server.ts), with email through the fake
 * Resend (tests/fakes/resend.ts). Checked: the form answers the same for any address; the emailed verify
 * link's page shows the request and a button and consumes nothing, the press consumes it and a second press
 * is told it was used; a domain rule approves (its documents among those asked for, its days) and emails a
 * sign-in link; without a rule the request waits for review, reviewers are told, and an admin approves
 * (grant + sign-in email) or refuses (the message emailed); a refusal by rule answers exactly as review does
 * and its email names no domain or rule; two reviewers deciding at once: one wins, the other is told; viewers
 * and responders are denied the pages and actions, admins allowed; every step audited, no address in the log.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { ANSWER_LATER, APPROVED_ANSWER, NEUTRAL_REFUSAL, REQUEST_ANSWER } from '../../src/core/access/requests.ts';
import { type ResendFake, startFakeResend } from '../fakes/resend.ts';
import { ConsoleClient, type PageResponse } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { pageText, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const SOC2 = 'soc-2-type-ii-report';
const PENTEST = 'penetration-test-summary';
const text = (page: PageResponse) => pageText(page.html);

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let resend: ResendFake;
  let db: Database;
  let base: string;
  let admin: ConsoleClient;
  let admin2: ConsoleClient;

  const staffClient = (token: string) => {
    const c = new ConsoleClient(base);
    c.setCookie('candor_session', token);
    return c;
  };

  /** POSTs a form with repeated fields (checkboxes) as a same-origin browser would. */
  async function postForm(path: string, fields: [string, string][], token?: string): Promise<PageResponse> {
    const res = await fetch(new URL(path, base), {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: base,
        'sec-fetch-site': 'same-origin',
        'user-agent': 'candor-tests',
        ...(token ? { cookie: `candor_session=${token}` } : {}),
      },
      body: new URLSearchParams(fields).toString(),
    });
    return { status: res.status, location: res.headers.get('location'), html: await res.text(), headers: res.headers };
  }

  let adminToken: string;
  let admin2Token: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    resend = await startFakeResend();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, resend, testKeys: true }) });
    db = running.database;
    adminToken = (await signedInStaffOn(db, 'admin')).token;
    admin2Token = (await signedInStaffOn(db, 'owner')).token;
    admin = staffClient(adminToken);
    admin2 = staffClient(admin2Token);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(running?.server.output());
    await running?.stop();
    await resend?.close();
  });

  const ask = (email: string, documents: string[]) =>
    postForm('/documents/request?_action=requestAccess', [
      ...documents.map((d): [string, string] => ['documents', d]),
      ['name', 'Dana Reviewer'],
      ['email', email],
      ['company', 'Acme <Corp>'],
      ['reason', 'Vendor security review'],
    ]);

  /** The one email to `to` whose text holds `pattern`, once the dispatcher sent it; the first match. */
  async function emailTo(to: string, pattern: RegExp) {
    let found: RegExpExecArray | null = null;
    await until(() => {
      for (const e of resend.emailsTo(to)) {
        const m = pattern.exec(e.text ?? '');
        if (m) {
          found = m;
          return true;
        }
      }
      return false;
    }, `an email to ${to} matching ${pattern}`);
    return found as unknown as RegExpExecArray;
  }

  /** Asks, then finds the verify link in the email: its path. */
  async function askAndGetLink(email: string, documents: string[]): Promise<string> {
    const asked = await ask(email, documents);
    expect(asked.status).toBe(200);
    expect(text(asked)).toContain(REQUEST_ANSWER);
    const m = await emailTo(email, /\/documents\/verify\/[A-Za-z0-9_.-]+/);
    return m[0];
  }

  const requestOf = async (domain: string) =>
    (
      await readRows(db, (q) =>
        q.db
          .select()
          .from(q.t.accessRequests)
          .where(and(eq(q.t.accessRequests.trustCenterId, q.trustCenter), eq(q.t.accessRequests.domain, domain)))
          .orderBy(asc(q.t.accessRequests.id)),
      )
    ).at(-1);
  const grantsOf = (requestId: number) =>
    readRows(db, (q) => q.db.select().from(q.t.accessGrants).where(eq(q.t.accessGrants.requestId, requestId)));
  const answerOf = (page: PageResponse) => /<div class="notice[^"]*"[^>]*>([\s\S]*?)<\/div>/.exec(page.html)?.[1] ?? '';

  it('validates each field with a message naming it', async () => {
    const none = await ask('x@acme.example', []);
    expect(none.status).toBe(400);
    expect(text(none)).toContain('Documents: choose at least one document.');
    const bad = await postForm('/documents/request?_action=requestAccess', [
      ['documents', SOC2],
      ['name', 'A'],
      ['email', 'not-an-email'],
      ['company', 'C'],
      ['reason', 'R'],
    ]);
    expect(bad.status).toBe(400);
    expect(text(bad)).toContain('Work email:');
    const noReason = await postForm('/documents/request?_action=requestAccess', [
      ['documents', SOC2],
      ['name', 'A'],
      ['email', 'a@acme.example'],
      ['company', 'C'],
      ['reason', ' '],
    ]);
    expect(text(noReason)).toContain('Reason: enter why you need these documents.');
    const page = await new ConsoleClient(base).get(`/documents/request?document=${SOC2}`);
    expect(page.status).toBe(200);
    expect(page.html).toMatch(new RegExp(`value="${SOC2}" checked`));
    const list = await new ConsoleClient(base).get('/documents');
    expect(list.html).toContain(`/documents/request?document=${SOC2}`);
  });

  it('review path: GET shows a button and consumes nothing, POST consumes it, a second POST says it was used; an admin approves', async () => {
    const link = await askAndGetLink('dana@acme.example', [SOC2, PENTEST]);
    const visitor = new ConsoleClient(base);
    for (let i = 0; i < 2; i++) {
      const shown = await visitor.get(link);
      expect(shown.status).toBe(200);
      expect(text(shown)).toContain('Confirm my request');
      expect(text(shown)).toContain('Acme <Corp>');
    }
    const linkId = link.split('/').at(-1)?.split('.')[0] ?? '';
    const stored = await readRows(db, (q) => q.db.select().from(q.t.readerLinks).where(eq(q.t.readerLinks.id, linkId)));
    expect(stored[0]?.usedAt).toBeNull();
    const pressed = await visitor.post(`${link}?_action=verifyAccessRequest`, { token: link.split('/').at(-1) ?? '' });
    expect(pressed.status).toBe(200);
    expect(text(pressed)).toContain(ANSWER_LATER);
    const again = await visitor.post(`${link}?_action=verifyAccessRequest`, { token: link.split('/').at(-1) ?? '' });
    expect(again.status).toBe(400);
    expect(text(again)).toContain('already used');
    expect((await visitor.get(link)).status).toBe(410);

    const request = await requestOf('acme.example');
    expect(request?.status).toBe('pending');
    if (!request) return;
    // reviewers are told, with the link to the request
    await until(
      () =>
        resend.emails.some(
          (e) => e.subject.startsWith('Access request from') && (e.text ?? '').includes(`/console/access/requests/${request.id}`),
        ),
      'the reviewers’ message',
    );

    const detail = await admin.get(`/console/access/requests/${request.id}`);
    expect(detail.status).toBe(200);
    expect(text(detail)).toContain('dana@acme.example');
    expect(text(detail)).toContain('Vendor security review');
    const approved = await postForm(
      `/console/access/requests/${request.id}?_action=approveAccessRequest`,
      [
        ['requestId', String(request.id)],
        ['documents', SOC2],
        ['expires', new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10)],
      ],
      adminToken,
    );
    expect(approved.status).toBe(200);
    expect(text(approved)).toContain('Approved');
    expect((await requestOf('acme.example'))?.status).toBe('approved');
    const grants = await grantsOf(request.id);
    expect(grants.map((g) => g.documents)).toEqual([[SOC2]]);
    await emailTo('dana@acme.example', /\/documents\/sign-in\/[A-Za-z0-9_.-]+/);
    // decided once: a second decision is told so
    const late = await postForm(
      `/console/access/requests/${request.id}?_action=refuseAccessRequest`,
      [
        ['requestId', String(request.id)],
        ['message', NEUTRAL_REFUSAL],
      ],
      adminToken,
    );
    expect(late.status).toBe(400);
    expect(text(late)).toContain('already decided');
  });

  it('rules: admins add them; a domain rule approves its documents for its days; a wildcard refusal answers exactly as review', async () => {
    const save = (fields: [string, string][]) => postForm('/console/access/rules?_action=saveAccessRule', fields, adminToken);
    expect(
      text(
        await save([
          ['pattern', 'nope'],
          ['decision', 'refuse'],
        ]),
      ),
    ).toContain('Pattern:');
    const approveRule = await save([
      ['pattern', ' Auto.Example '],
      ['decision', 'approve'],
      ['documents', SOC2],
      ['grantDays', '30'],
    ]);
    expect(approveRule.status).toBe(200);
    expect(text(approveRule)).toContain('Saved the rule for auto.example');
    expect(
      (
        await save([
          ['pattern', '*.blocked.example'],
          ['decision', 'refuse'],
        ])
      ).status,
    ).toBe(200);
    const rules = await admin.get('/console/access/rules');
    expect(text(rules)).toContain('*.blocked.example');

    const link = await askAndGetLink('lee@auto.example', [SOC2, PENTEST]);
    const pressed = await new ConsoleClient(base).post(`${link}?_action=verifyAccessRequest`, { token: link.split('/').at(-1) ?? '' });
    expect(pressed.status).toBe(200);
    expect(text(pressed)).toContain(APPROVED_ANSWER);
    const request = await requestOf('auto.example');
    expect(request).toMatchObject({ status: 'approved', decidedVia: 'rule', rulePattern: 'auto.example' });
    const [grant] = await grantsOf(request?.id ?? 0);
    expect(grant?.documents).toEqual([SOC2]);
    expect(grant?.createdBy).toBeNull();
    const days = ((grant?.expiresAt.getTime() ?? 0) - (grant?.createdAt.getTime() ?? 0)) / 86_400_000;
    expect(days).toBe(30);
    await emailTo('lee@auto.example', /\/documents\/sign-in\/[A-Za-z0-9_.-]+/);

    // refused by rule vs. waiting for review: the same answer, word for word
    const refusedLink = await askAndGetLink('kim@eu.blocked.example', [SOC2]);
    const reviewLink = await askAndGetLink('sam@review.example', [SOC2]);
    const refused = await new ConsoleClient(base).post(`${refusedLink}?_action=verifyAccessRequest`, {
      token: refusedLink.split('/').at(-1) ?? '',
    });
    const review = await new ConsoleClient(base).post(`${reviewLink}?_action=verifyAccessRequest`, {
      token: reviewLink.split('/').at(-1) ?? '',
    });
    expect(refused.status).toBe(review.status);
    expect(answerOf(refused)).toBe(answerOf(review));
    expect(answerOf(refused)).toContain(ANSWER_LATER);
    expect((await requestOf('eu.blocked.example'))?.status).toBe('refused');
    expect((await requestOf('review.example'))?.status).toBe('pending');
    await emailTo('kim@eu.blocked.example', /not able to share/);
    const refusal = resend.emailsTo('kim@eu.blocked.example').find((e) => (e.text ?? '').includes('not able to share'));
    expect(refusal?.text).not.toMatch(/blocked|rule|domain/i);
  });

  it('a staff refusal emails its message', async () => {
    const link = await askAndGetLink('ola@refused.example', [PENTEST]);
    await new ConsoleClient(base).post(`${link}?_action=verifyAccessRequest`, { token: link.split('/').at(-1) ?? '' });
    const request = await requestOf('refused.example');
    const res = await postForm(
      `/console/access/requests/${request?.id}?_action=refuseAccessRequest`,
      [
        ['requestId', String(request?.id)],
        ['message', 'We share this report with customers only.'],
      ],
      adminToken,
    );
    expect(res.status).toBe(200);
    expect((await requestOf('refused.example'))?.status).toBe('refused');
    await emailTo('ola@refused.example', /We share this report with customers only\./);
  });

  it('two reviewers deciding at once: one wins, the other is told it was already decided', async () => {
    const link = await askAndGetLink('pat@race.example', [SOC2]);
    await new ConsoleClient(base).post(`${link}?_action=verifyAccessRequest`, { token: link.split('/').at(-1) ?? '' });
    const request = await requestOf('race.example');
    const id = String(request?.id);
    const [a, b] = await Promise.all([
      postForm(
        `/console/access/requests/${id}?_action=approveAccessRequest`,
        [
          ['requestId', id],
          ['documents', SOC2],
          ['expires', new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10)],
        ],
        adminToken,
      ),
      postForm(
        `/console/access/requests/${id}?_action=refuseAccessRequest`,
        [
          ['requestId', id],
          ['message', NEUTRAL_REFUSAL],
        ],
        admin2Token,
      ),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 400]);
    const loser = a.status === 400 ? a : b;
    expect(text(loser)).toContain('already decided');
    const after = await requestOf('race.example');
    const grants = await grantsOf(request?.id ?? 0);
    expect(grants.length).toBe(after?.status === 'approved' ? 1 : 0);
  });

  it('viewers and responders are denied the pages and actions; admins are allowed', async () => {
    for (const role of ['viewer', 'responder'] as const) {
      const token = (await signedInStaffOn(db, role)).token;
      const client = staffClient(token);
      expect((await client.get('/console/access/rules')).status).toBe(403);
      expect((await client.get('/console/access/requests/1')).status).toBe(403);
      const post = await postForm(
        '/console/access/rules?_action=saveAccessRule',
        [
          ['pattern', 'evil.example'],
          ['decision', 'approve'],
        ],
        token,
      );
      expect(post.status).toBe(403);
    }
    expect((await admin2.get('/console/access/rules')).status).toBe(200);
    const rules = await readRows(db, (q) => q.db.select().from(q.t.accessRules));
    expect(rules.map((r) => r.pattern)).not.toContain('evil.example');
  });

  it('a rule is changed by id (its pattern too) and removed, never doubled', async () => {
    const save = (fields: [string, string][]) => postForm('/console/access/rules?_action=saveAccessRule', fields, adminToken);
    expect(
      (
        await save([
          ['pattern', 'change.example'],
          ['decision', 'review'],
        ])
      ).status,
    ).toBe(200);
    const ruleOf = async (pattern: string) =>
      (await readRows(db, (q) => q.db.select().from(q.t.accessRules).where(eq(q.t.accessRules.pattern, pattern))))[0];
    const rule = await ruleOf('change.example');
    const form = await admin.get(`/console/access/rules?edit=${rule?.id}`);
    expect(form.html).toContain('value="change.example"');
    const changed = await save([
      ['ruleId', String(rule?.id)],
      ['pattern', '*.change.example'],
      ['decision', 'approve'],
      ['grantDays', '14'],
    ]);
    expect(changed.status).toBe(200);
    expect(await ruleOf('change.example')).toBeUndefined();
    expect(await ruleOf('*.change.example')).toMatchObject({ id: rule?.id, decision: 'approve', grantDays: 14, documents: null });
    // another rule may not take a pattern that has one
    const clash = await save([
      ['ruleId', String(rule?.id)],
      ['pattern', 'auto.example'],
      ['decision', 'review'],
    ]);
    expect(clash.status).toBe(400);
    expect(text(clash)).toContain('another rule already has auto.example');
    const removed = await postForm('/console/access/rules?_action=removeAccessRule', [['ruleId', String(rule?.id)]], adminToken);
    expect(removed.status).toBe(200);
    expect(await ruleOf('*.change.example')).toBeUndefined();
    const entries = await readRows(db, (q) =>
      q.db
        .select()
        .from(q.t.auditLog)
        .where(eq(q.t.auditLog.target, `access-rule:${rule?.id}`))
        .orderBy(asc(q.t.auditLog.id)),
    );
    expect(entries.map((e) => e.action)).toEqual(['access.rule.saved', 'access.rule.saved', 'access.rule.removed']);
  });

  it('limits per address silently (the same answer, no new request) and per source with a message', async () => {
    // six requests from this source so far; the limit is ten an hour
    for (let i = 0; i < 4; i++) {
      const asked = await ask('rate@limit.example', [SOC2]);
      expect(asked.status).toBe(200);
      expect(text(asked)).toContain(REQUEST_ANSWER);
    }
    const made = await readRows(db, (q) => q.db.select().from(q.t.accessRequests).where(eq(q.t.accessRequests.domain, 'limit.example')));
    expect(made.length).toBe(3);
    const over = await ask('other@limit.example', [SOC2]);
    expect(over.status).toBe(429);
    expect(text(over)).toContain('Too many requests from your network');
  });

  it('audits every step, and no full address is in the audit log', async () => {
    const entries = await readRows(db, (q) => q.db.select().from(q.t.auditLog).where(eq(q.t.auditLog.trustCenterId, q.trustCenter)));
    const actions = new Set(entries.map((e) => e.action));
    for (const a of [
      'access.request.created',
      'access.request.verified',
      'access.request.approved',
      'access.request.refused',
      'access.request.viewed',
      'access.rule.saved',
    ])
      expect(actions, a).toContain(a);
    const all = JSON.stringify(entries);
    for (const address of ['dana@acme.example', 'lee@auto.example', 'kim@eu.blocked.example', 'ola@refused.example'])
      expect(all).not.toContain(address);
  });
});
