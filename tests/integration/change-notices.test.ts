/**
 * Change notices: editing subprocessors.yaml (add one, move one, remove one)
 * and detecting yields exactly three drafts, and again none; publishing one
 * notifies the topic's subscribers on each channel with the effective date
 * and a per-recipient objection link; the notice period is enforced unless
 * overridden (audited); the public list, its as-of view, the changelog,
 * feeds and subprocessors.json show the history; an objection is filed,
 * acknowledged, announced to staff and tracked; a doc change reaches the
 * doc topic. On each engine (tests/helpers/engine-server.ts): SQLite, and
 * PostgreSQL under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { and, asc, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { longDate } from '../../src/core/changes/messages.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { copyContent, editText, editYaml } from '../helpers/content-fixture.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { makeDue } from '../helpers/jobs.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { send } from '../helpers/security.ts';
import { freePort, ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';
import { flipLast } from '../helpers/tamper.ts';

type Row = Record<string, unknown>;
const DAY = 86_400_000;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  const dataDir = tempDir();
  const contentDir = copyContent();
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let db: Database;
  let env: Record<string, string>;
  let staff: ConsoleClient;
  let staffEmail = '';

  const day = (offset: number) => new Date(Date.now() + offset * DAY).toISOString().slice(0, 10);
  const drafts = () =>
    readRows(db, (q) => {
      const n = q.t.changeNotices;
      return q.db
        .select({ id: n.id, subject: n.subject, change: n.change, subjectId: n.subjectId })
        .from(n)
        .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.status, 'draft')))
        .orderBy(asc(n.subjectId));
    });
  const draftFor = async (subjectId: string) => (await drafts()).find((d) => d.subjectId === subjectId)?.id ?? 0;
  /** A CLI command beside the server, on the same data (on PostgreSQL, running.env names the database). */
  const cli = async (...args: string[]) =>
    (
      await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli.ts'), ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env, ...running.env, CANDOR_DATA_DIR: dataDir },
      })
    ).stdout;
  const detect = () => cli('changes', 'detect');
  /** The audit entries matching, oldest first, each summary as JSON text. */
  const auditWhere = async (where: { action?: string; target?: string; ip?: string }) => {
    const rows = await readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ action: a.action, actorType: a.actorType, summary: a.summary })
        .from(a)
        .where(
          and(
            eq(a.trustCenterId, q.trustCenter),
            where.action === undefined ? undefined : eq(a.action, where.action),
            where.target === undefined ? undefined : eq(a.target, where.target),
            where.ip === undefined ? undefined : eq(a.ip, where.ip),
          ),
        )
        .orderBy(asc(a.id));
    });
    return rows.map((r) => ({ ...r, summary: JSON.stringify(r.summary) }));
  };
  const notice = async (id: number) => {
    const [row] = await readRows(db, (q) => {
      const n = q.t.changeNotices;
      return q.db
        .select({ status: n.status, intro: n.intro, effectiveOn: n.effectiveOn, objectionDeadline: n.objectionDeadline })
        .from(n)
        .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.id, id)));
    });
    return row;
  };
  const objectionCount = () => readRows(db, (q) => q.db.$count(q.t.objections, eq(q.t.objections.trustCenterId, q.trustCenter)));

  /** Pages kept in memory per changes version (src/runtime/status-snapshots.ts) when asked without a query string. */
  const SNAPSHOT_PAGES = ['/subprocessors', '/changes', '/api/v1/trust.json'];
  /** Not about the page: set per response, or by how the body was sent. */
  const PER_RESPONSE = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'content-encoding', 'vary']);
  const pageHeaders = (res: Response) => Object.fromEntries([...res.headers].filter(([name]) => !PER_RESPONSE.has(name)));
  /**
   * The page from memory (asked twice: the first render is kept, the second is answered by src/server.ts
   * without Astro) next to its render by Astro (a query string the page ignores is never served from memory):
   * the same body and headers, brotli from memory as negotiated.
   */
  async function fromMemoryAndRendered(path: string): Promise<{ memory: string; rendered: string }> {
    await fetch(`${server.url}${path}`, { headers: { 'accept-encoding': 'br, gzip' } });
    const memory = await fetch(`${server.url}${path}`, { headers: { 'accept-encoding': 'br, gzip' } });
    const rendered = await fetch(`${server.url}${path}?render=1`, { headers: { 'accept-encoding': 'br, gzip' } });
    expect(memory.status).toBe(200);
    expect(rendered.status).toBe(200);
    expect(memory.headers.get('content-encoding')).toBe('br');
    expect(memory.headers.get('vary')).toBe('Accept-Encoding');
    expect(rendered.headers.get('content-encoding')).toBeNull();
    expect(pageHeaders(memory)).toEqual(pageHeaders(rendered));
    const bodies = { memory: await memory.text(), rendered: await rendered.text() };
    expect(bodies.memory).toBe(bodies.rendered);
    return bodies;
  }
  const beforePublishing = new Map<string, string>();

  /** Starts the server again on the same port and data (on PostgreSQL, the same database: running.env names it). */
  async function restart(): Promise<void> {
    await server.stop();
    server = await startServer({ port: Number(new URL(env.CANDOR_PUBLIC_URL ?? '').port), dataDir, env: { ...env, ...running.env } });
    staff = new ConsoleClient(server.url);
    const signedIn = await signedInStaffOn(db, 'responder');
    staffEmail = signedIn.email;
    staff.setCookie('candor_session', signedIn.token);
  }

  beforeAll(async () => {
    resend = await startFakeResend();
    slack = await startFakeSlack();
    const port = await freePort();
    // the content is a copy of the demo content, edited below once the baseline is published
    env = { ...providerEnv({ port, resend, slack, testKeys: true }), CANDOR_CONTENT_DIR: contentDir };
    // first start: the published baseline is the demo content as it is
    running = await engine.start({ port, dataDir, env });
    server = running.server;
    db = running.database;
    await server.stop();
    // a deployment that has published for ten days: the history (the first baseline) begins then
    await writeRows(db, async (q) => {
      const c = q.t.contentSnapshots;
      const snapshots = await q.db.select({ id: c.id, publishedAt: c.publishedAt }).from(c).where(eq(c.trustCenterId, q.trustCenter));
      expect(snapshots.length).toBeGreaterThan(0);
      for (const { id, publishedAt } of snapshots) {
        await q.db
          .update(c)
          .set({ publishedAt: new Date(publishedAt.getTime() - 10 * DAY) })
          .where(eq(c.id, id));
      }
    });
    const [dpo0 = 0] = await addSubscribersTo(db, TEST_KEYS, {
      count: 2,
      channel: 'email',
      topic: 'subprocessors',
      address: (i) => `dpo${i}@customer.example`,
    });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      topic: 'subprocessors',
      address: () => 'C0PRIVACY',
      secret: () => 'xoxb-customer',
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', topic: 'docs', address: () => 'docs@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'incidents-only@customer.example' });
    // the first subscriber gave their company when signing up
    await writeRows(db, async (q) => {
      const [recipient] = await q.db
        .select({ subscriberId: q.t.recipients.subscriberId })
        .from(q.t.recipients)
        .where(eq(q.t.recipients.id, dpo0));
      if (!recipient?.subscriberId) throw new Error('no subscriber for dpo0');
      await q.db.update(q.t.subscribers).set({ organisation: 'Customer Ltd' }).where(eq(q.t.subscribers.id, recipient.subscriberId));
    });
    // the content changes: one added, one moved, one removed
    editYaml<Row[]>(contentDir, 'subprocessors.yaml', (rows) => {
      const moved = rows.find((r) => r.id === 'algolia');
      if (moved) moved.countries = ['IE'];
      const added = {
        id: 'anthropic',
        name: 'Anthropic',
        entity: 'Anthropic PBC',
        category: 'ai',
        purpose: 'Answers questions in the AI assistant from workspace articles. <script>alert(1)</script>',
        dataCategories: ['Workspace content', 'Questions asked'],
        countries: ['US'],
        transferMechanism: 'Standard Contractual Clauses',
        dpaUrl: 'https://www.anthropic.com/legal/dpa',
        website: 'https://www.anthropic.com',
        contact: 'privacy@anthropic.example',
        since: day(30),
      };
      return [...rows.filter((r) => r.id !== 'stripe'), added];
    });
    await restart();
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await server?.stop();
    await running?.stop();
    await resend?.close();
    await slack?.close();
  });

  describe('detecting changes', () => {
    it('drafts exactly three notices from the edited list at start; detecting again drafts none', async () => {
      expect((await drafts()).map((d) => [d.subject, d.change, d.subjectId])).toEqual([
        ['subprocessor', 'changed', 'algolia'],
        ['subprocessor', 'added', 'anthropic'],
        ['subprocessor', 'removed', 'stripe'],
      ]);
      expect(server.output()).toContain('change detected, drafted for Announcements: subprocessor added: Anthropic');
      expect(await detect()).toContain('no new changes');
      expect(await drafts()).toHaveLength(3);
      const page = text((await staff.get('/console/announcements')).html);
      expect(page).toContain('New subprocessor: Anthropic');
      expect(page).toContain('Subprocessor change: Algolia');
      expect(page).toContain('Location before United States, Germany');
      // drafts are not public
      expect(await (await fetch(`${server.url}/subprocessors`)).text()).not.toContain('Anthropic');
    });
    it('serves /subprocessors, /changes and trust.json from memory exactly as rendered', async () => {
      for (const path of SNAPSHOT_PAGES) beforePublishing.set(path, (await fromMemoryAndRendered(path)).memory);
      const trust = await fetch(`${server.url}/api/v1/trust.json`);
      expect(trust.headers.get('access-control-allow-origin')).toBe('*');
      expect(trust.headers.get('cache-control')).toBe('public, max-age=300');
      expect((await fetch(`${server.url}/subprocessors`)).headers.get('content-security-policy')).toBeTruthy();
    });
  });

  describe('publishing a notice', () => {
    it('refuses an effective date inside the notice period unless the override is explained; the override is audited', async () => {
      const id = String(await draftFor('anthropic'));
      const refused = await staff.post('/console/announcements?_action=editNotice', {
        noticeId: id,
        intro: 'We plan to use Anthropic for the assistant.',
        effectiveOn: day(5),
        objectionDeadline: '',
        overrideReason: '',
      });
      expect(text(refused.html)).toContain(`The notice period is 30 days: the earliest effective date is ${day(30)}.`);
      const bad = await staff.post('/console/announcements?_action=editNotice', { noticeId: id, intro: 'x', effectiveOn: '2026-13-45' });
      expect(text(bad.html)).toContain('The effective date must be a date written YYYY-MM-DD');
      const saved = await staff.post('/console/announcements?_action=editNotice', {
        noticeId: id,
        intro: 'We plan to use **Anthropic** for the assistant. <img src=x onerror=alert(1)>',
        effectiveOn: '',
        objectionDeadline: day(25),
        overrideReason: '',
      });
      expect(text(saved.html)).toContain('The notice is saved.');
      const moved = String(await draftFor('algolia'));
      const overridden = await staff.post('/console/announcements?_action=editNotice', {
        noticeId: moved,
        intro: 'Algolia moves our search index to Ireland.',
        effectiveOn: day(7),
        objectionDeadline: day(7),
        overrideReason: 'Required by the provider for the EU data region.',
      });
      expect(text(overridden.html)).toContain('The notice is saved.');
      const audit = await auditWhere({ action: 'changes.notice_period_overridden' });
      expect(audit).toHaveLength(1);
      expect(audit[0]?.summary).toContain('Required by the provider');
    });

    it('notifies the topic on each channel with the effective date and a per-recipient objection link', async () => {
      const id = await draftFor('anthropic');
      const published = await staff.post('/console/announcements?_action=publishNotice', { noticeId: String(id), publishAt: '' });
      expect(text(published.html)).toContain('Published: 3 deliveries queued.');
      await until(() => resend.emails.length === 2, 'two notice emails');
      expect(resend.emails.flatMap((e) => e.to).sort()).toEqual(['dpo0@customer.example', 'dpo1@customer.example']);
      const [first, second] = resend.emails;
      const effective = new Intl.DateTimeFormat('en-GB', {
        timeZone: 'UTC',
        weekday: 'short',
        day: 'numeric',
        month: 'short',
        year: 'numeric',
      }).format(new Date(`${day(30)}T00:00:00Z`));
      expect(first?.subject).toBe(`[Subprocessor notice] New subprocessor: Anthropic (effective ${effective})`);
      expect(first?.text).toContain('Legal entity: Anthropic PBC');
      expect(first?.text).toContain('Data categories: Workspace content, Questions asked');
      expect(first?.text).toContain('Transfer mechanism: Standard Contractual Clauses');
      expect(first?.html).not.toMatch(/<script|<img/i);
      const link = (body: string | undefined) => /http:\/\/127\.0\.0\.1:\d+\/objections\/[\w.-]+/.exec(body ?? '')?.[0];
      expect(link(first?.text)).toBeTruthy();
      expect(link(first?.text)).not.toBe(link(second?.text));
      expect(first?.text).not.toContain('{{objection');
      await until(() => slack.messages.length === 1, 'the Slack notice');
      expect(JSON.stringify(slack.messages[0])).toContain('/objections/');
      expect(await notice(id)).toMatchObject({
        status: 'published',
        effectiveOn: day(30),
        objectionDeadline: day(25),
      });
    });

    it('shows the coming subprocessor as effective from its date; the as-of view, changelog, feeds and JSON carry the history', async () => {
      const list = await (await fetch(`${server.url}/subprocessors`)).text();
      expect(list).toMatch(/Anthropic<\/a>\s*<p class="coming" data-coming="added">\s*Effective from/);
      expect(list).not.toContain('<script>alert(1)');
      const yesterday = await (await fetch(`${server.url}/subprocessors?as_of=${day(-1)}`)).text();
      expect(yesterday).not.toContain('Anthropic');
      expect(yesterday).toContain('The list as it stood on');
      expect(yesterday).toContain('Stripe');
      const future = text(await (await fetch(`${server.url}/subprocessors?as_of=2999-01-01`)).text());
      expect(future).toContain('2999-01-01 is in the future');
      for (const value of ['yesterday', '2025-13-01', '2025-02-30', '2025-00-10', '2025-1-1', "2025-01-01'--"]) {
        const refused = await fetch(`${server.url}/subprocessors?as_of=${encodeURIComponent(value)}`);
        expect(refused.status, value).toBe(400);
        expect(refused.headers.get('content-type'), value).toMatch(/^text\/html/);
        const body = await refused.text();
        // the site's own page, not a bare error
        expect(body, value).toMatch(/<link rel="stylesheet" href="\/_astro\/[^"]+\.css">/);
        expect(text(body), value).toMatch(/The as_of parameter must be a day written YYYY-MM-DD, for example \d{4}-\d{2}-\d{2}/);
        expect(body, value).not.toContain('data-id=');
      }
      // before the published history begins, the page says when it begins instead of showing a list under that date
      const began = day(-10);
      for (const value of ['2000-01-01', day(-11)]) {
        const early = await fetch(`${server.url}/subprocessors?as_of=${value}`);
        expect(early.status, value).toBe(404);
        const body = await early.text();
        expect(text(body), value).toContain(`The published history of this list begins on ${longDate(began)}`);
        expect(body, value).toContain(`href="/subprocessors?as_of=${began}"`);
        expect(body, value).not.toContain('data-id=');
      }
      const first = await fetch(`${server.url}/subprocessors?as_of=${began}`);
      expect(first.status).toBe(200);
      expect(await first.text()).toContain('data-id="stripe"');
      const changes = text(await (await fetch(`${server.url}/changes`)).text());
      expect(changes).toContain('New subprocessor: Anthropic');
      expect(changes).not.toContain('Subprocessor removed: Stripe');
      const rss = await (await fetch(`${server.url}/feeds/changes.xml`)).text();
      expect(rss).toContain('New subprocessor: Anthropic');
      expect(rss).not.toMatch(/<img src=x/);
      const json = (await (await fetch(`${server.url}/api/v1/subprocessors.json`)).json()) as {
        subprocessors: { id: string }[];
        coming: { change: string; effectiveOn: string; subprocessor: { id: string } }[];
        history: { name: string; effectiveOn: string }[];
      };
      expect(json.subprocessors.map((s) => s.id)).not.toContain('anthropic');
      expect(json.coming).toEqual([
        expect.objectContaining({ change: 'added', effectiveOn: day(30), subprocessor: expect.objectContaining({ id: 'anthropic' }) }),
      ]);
      expect(json.history).toEqual([expect.objectContaining({ name: 'Anthropic', effectiveOn: day(30) })]);
    });
    it('publishing the notice replaced the pages in memory, which still equal their render', async () => {
      for (const path of SNAPSHOT_PAGES) {
        const { memory } = await fromMemoryAndRendered(path);
        // trust.json lists the subprocessors in effect today, and Anthropic's day is still to come
        if (path !== '/api/v1/trust.json') expect(memory).not.toBe(beforePublishing.get(path));
      }
      expect(await (await fetch(`${server.url}/changes`)).text()).toContain('New subprocessor: Anthropic');
    });
  });

  describe('scheduled notices', () => {
    it('a notice scheduled for later is published once at its time, by the worker', async () => {
      const id = await draftFor('stripe');
      const at = new Date(Date.now() + 10 * 60_000).toISOString().slice(0, 16);
      const scheduled = await staff.post('/console/announcements?_action=publishNotice', { noticeId: String(id), publishAt: at });
      expect(text(scheduled.html)).toContain('The notice is scheduled.');
      expect(text(scheduled.html)).toContain(`scheduled for ${at.replace('T', ' ')} UTC`);
      expect(await makeDue(db, { keys: [`notice:${id}:publish`] })).toBe(1);
      const before = resend.emails.length;
      await cli('worker', '--once');
      await until(() => resend.emails.length === before + 2, 'the removal notice');
      expect(resend.emails.at(-1)?.subject).toMatch(/^\[Subprocessor notice\] Subprocessor removed: Stripe \(effective /);
      expect(resend.emails.at(-1)?.text).not.toContain('/objections/');
      expect((await notice(id))?.status).toBe('published');
      const audit = (await auditWhere({ target: `notice:${id}` })).map(({ action, actorType }) => ({ action, actorType }));
      expect(audit).toEqual([
        { action: 'changes.scheduled', actorType: 'staff' },
        { action: 'changes.published', actorType: 'system' },
      ]);
      // in effect today: gone from the current list, still in yesterday's
      expect(await (await fetch(`${server.url}/subprocessors`)).text()).not.toContain('data-id="stripe"');
      expect(await (await fetch(`${server.url}/subprocessors?as_of=${day(-1)}`)).text()).toContain('data-id="stripe"');
    });
  });

  describe('objections', () => {
    let link = '';
    it('a forged or altered link opens nothing', async () => {
      const toOrganisation = resend.emails.find((e) => e.to.includes('dpo0@customer.example'));
      link = /http:\/\/127\.0\.0\.1:\d+(\/objections\/[\w.-]+)/.exec(toOrganisation?.text ?? '')?.[1] ?? '';
      expect((await fetch(`${server.url}/objections/1.1.forged`)).status).toBe(404);
      expect((await fetch(`${server.url}${flipLast(link)}`)).status).toBe(404);
    });

    it('opens only as spelled when sent: any other spelling of a valid link is refused like a forged one, and counted', async () => {
      const token = link.split('/').at(-1) ?? '';
      const [notice = '', recipient = '', mac = ''] = token.split('.');
      const swapCase = (v: string) => [...v].map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())).join('');
      const hex = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`;
      const variants = [
        `0${notice}.${recipient}.${mac}`,
        `${notice}.00${recipient}.${mac}`,
        `${notice}.${recipient}.${swapCase(mac)}`,
        `${token}=`,
        `${token}%3D%3D`,
        // the other base64 alphabet ('/' as %2F: a bare slash is another path, which no route answers)
        `${notice}.${recipient}.${Buffer.from(mac, 'base64url').toString('base64').replaceAll('/', '%2F')}+`,
        `%20${token}`,
        `${token}%09`,
        `${notice}%2E${recipient}%2E${mac}`,
        `${notice}.${recipient}%2e${mac}`,
        `${hex(notice[0] ?? '1')}${notice.slice(1)}.${recipient}.${mac}`,
        `${notice}.${recipient}.${hex(mac[0] ?? 'a')}${mac.slice(1)}`,
      ];
      const from = '127.0.0.77';
      const counted = async () => {
        const [row] = await readRows(db, (q) => {
          const r = q.t.rateLimits;
          return q.db
            .select({ n: r.count })
            .from(r)
            .where(and(eq(r.trustCenterId, q.trustCenter), eq(r.bucket, 'subscription-link-refused:ip'), eq(r.key, from)));
        });
        return row?.n ?? 0;
      };
      for (const variant of variants) {
        expect(variant).not.toBe(token);
        const answer = await send(`${server.url}/objections/${variant}`, { from });
        expect(answer.status, variant).toBe(404);
        expect(text(answer.body), variant).toContain('This objection link is not valid');
      }
      expect(await counted()).toBe(variants.length);
      // the form posted with another spelling files nothing, and is counted once
      const posted = await send(`${server.url}${link}?_action=fileObjection`, {
        from,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url, 'sec-fetch-site': 'same-origin' },
        body: new URLSearchParams({ token: `${token} `, reasons: 'Spelled otherwise.' }).toString(),
      });
      expect(posted.status).toBe(400);
      expect(await counted()).toBe(variants.length + 1);
      expect(await objectionCount()).toBe(0);
      const refused = await auditWhere({ action: 'subscriber.link_refused', ip: from });
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((r) => (JSON.parse(r.summary) as { purpose: string }).purpose === 'objection')).toBe(true);
      // the link as sent still opens
      expect((await send(`${server.url}${link}`, { from: '127.0.0.78' })).status).toBe(200);
    });

    it('is filed from the link, acknowledged to the customer, announced to staff and listed in the console', async () => {
      const customer = new ConsoleClient(server.url);
      const page = await customer.get(link);
      expect(page.status).toBe(200);
      expect(text(page.html)).toContain('New subprocessor: Anthropic');
      expect(page.html).toContain('value="Customer Ltd"');
      const empty = await customer.post(`${link}?_action=fileObjection`, { token: link.split('/').at(-1) ?? '', reasons: ' ' });
      expect(text(empty.html)).toContain('Tell us why you object');
      const before = resend.emails.length;
      const filed = await customer.post(`${link}?_action=fileObjection`, {
        token: link.split('/').at(-1) ?? '',
        reasons: 'Our contract forbids AI processing of our content. <script>alert(2)</script>',
        contactName: 'Dana Privacy',
        organisation: 'Customer Ltd',
      });
      expect(text(filed.html)).toMatch(/We recorded your objection as O-\d+/);
      await until(() => resend.emails.length >= before + 2, 'the acknowledgement and the staff notice');
      const ack = resend.emails.find((e) => e.subject.startsWith('We received your objection'));
      expect(ack?.to).toEqual(['dpo0@customer.example']);
      const toStaff = resend.emails.find((e) => e.subject.startsWith('New objection'));
      expect(toStaff?.to).toContain(staffEmail);
      expect(toStaff?.subject).toContain('from Customer Ltd');
      const again = await customer.get(link);
      expect(text(again.html)).toContain('We received your objection on');
      const list = await staff.get('/console/objections');
      expect(text(list.html)).toMatch(/O-\d+ New subprocessor: Anthropic Customer Ltd Open/);
      const id = /\/console\/objections\/(\d+)/.exec(list.html)?.[1] ?? '';
      const detail = await staff.get(`/console/objections/${id}`);
      expect(detail.html).toContain('&lt;script&gt;alert(2)&lt;/script&gt;');
      const updated = await staff.post(`/console/objections/${id}?_action=updateObjection`, {
        objectionId: id,
        status: 'in_discussion',
        note: 'Called Dana; offered to disable the assistant for their workspace.',
      });
      expect(text(updated.html)).toContain('In discussion');
      expect(text(updated.html)).toContain('offered to disable the assistant');
      const audit = (await auditWhere({ target: `objection:${id}` })).map(({ action }) => ({ action }));
      expect(audit.filter((a) => a.action !== 'objections.viewed')).toEqual([
        { action: 'objections.filed' },
        { action: 'objections.status_changed' },
        { action: 'objections.noted' },
      ]);
      // reading a customer's objection is recorded, as reading a subscriber record is
      expect(audit.filter((a) => a.action === 'objections.viewed').length).toBeGreaterThanOrEqual(1);
    });

    it('one link files one objection, also after its recipient unsubscribed', async () => {
      // the recipient who objected unsubscribes
      await writeRows(db, async (q) => {
        const o = q.t.objections;
        const [first] = await q.db
          .select({ recipientId: o.recipientId })
          .from(o)
          .where(eq(o.trustCenterId, q.trustCenter))
          .orderBy(asc(o.id))
          .limit(1);
        if (!first?.recipientId) throw new Error('no objection with a recipient');
        const gone = await q.db.delete(q.t.recipients).where(eq(q.t.recipients.id, first.recipientId)).returning({ id: q.t.recipients.id });
        expect(gone).toHaveLength(1);
      });
      const customer = new ConsoleClient(server.url);
      expect(text((await customer.get(link)).html)).toContain('We received your objection on');
      const again = await customer.post(`${link}?_action=fileObjection`, { token: link.split('/').at(-1) ?? '', reasons: 'Once more.' });
      expect(again.status).toBe(400);
      expect(text(again.html)).toContain('We received your objection on');
      expect(await objectionCount()).toBe(1);
    });

    it('after the deadline an objection is accepted and marked late', async () => {
      await writeRows(db, (q) =>
        q.db
          .update(q.t.changeNotices)
          .set({ objectionDeadline: day(-1) })
          .where(and(eq(q.t.changeNotices.trustCenterId, q.trustCenter), eq(q.t.changeNotices.subjectId, 'anthropic'))),
      );
      const toOther = resend.emails.find((e) => e.to.includes('dpo1@customer.example'));
      const other = /http:\/\/127\.0\.0\.1:\d+(\/objections\/[\w.-]+)/.exec(toOther?.text ?? '')?.[1] ?? '';
      const customer = new ConsoleClient(server.url);
      expect(text((await customer.get(other)).html)).toContain('has passed. You can still object');
      const filed = await customer.post(`${other}?_action=fileObjection`, {
        token: other.split('/').at(-1) ?? '',
        reasons: 'Too late, but we object.',
      });
      expect(text(filed.html)).toContain('It arrived after the objection deadline');
      const [last] = await readRows(db, (q) =>
        q.db
          .select({ late: q.t.objections.late })
          .from(q.t.objections)
          .where(eq(q.t.objections.trustCenterId, q.trustCenter))
          .orderBy(desc(q.t.objections.id))
          .limit(1),
      );
      expect(last).toEqual({ late: true });
    });
  });

  describe('documents', () => {
    it('a changed doc produces a notice to the doc topic naming the changed sections', async () => {
      editText(contentDir, 'docs/encryption.md', (t) =>
        t.replace('## Encryption in transit', '## Encryption in transit\n\nWe now require TLS 1.3 for every API client.\n'),
      );
      expect(await detect()).toContain('drafted: doc changed: ');
      const id = (await drafts()).find((d) => d.subject === 'doc')?.id ?? 0;
      const before = resend.emails.length;
      const published = await staff.post('/console/announcements?_action=publishNotice', { noticeId: String(id), publishAt: '' });
      expect(text(published.html)).toContain('Published: 1 deliveries queued.');
      await until(() => resend.emails.length === before + 1, 'the doc notice');
      const notice = resend.emails.at(-1);
      expect(notice?.to).toEqual(['docs@customer.example']);
      expect(notice?.text).toContain('Sections changed: Encryption in transit');
      expect(notice?.text).not.toContain('/objections/');
    });
  });

  describe('editing and publishing a draft in one request', () => {
    const notificationCount = () => readRows(db, (q) => q.db.$count(q.t.notifications, eq(q.t.notifications.trustCenterId, q.trustCenter)));
    const stored = notice;

    it('a refused publication saves nothing, sends nothing, and shows what was typed', async () => {
      const id = await draftFor('algolia');
      const before = await stored(id);
      const notifications = await notificationCount();
      const refused = await staff.post('/console/announcements?_action=publishNotice', {
        noticeId: String(id),
        intro: 'Typed, then Publish now: <b>not to be lost</b>.',
        effectiveOn: day(3),
        objectionDeadline: day(3),
        overrideReason: '',
        publishAt: '',
        when: 'now',
      });
      expect(refused.status).toBe(400);
      expect(text(refused.html)).toContain(`The notice period is 30 days: the earliest effective date is ${day(30)}.`);
      // the form comes back with the typed text, escaped, and the typed dates
      expect(refused.html).toContain('Typed, then Publish now: &lt;b&gt;not to be lost&lt;/b&gt;.');
      expect(refused.html).toContain(`value="${day(3)}"`);
      expect(await stored(id)).toEqual(before);
      expect(await notificationCount()).toBe(notifications);
    });

    it('Publish now sends the introduction and dates as edited in the same form, and keeps them', async () => {
      const id = await draftFor('algolia');
      const before = resend.emails.length;
      const published = await staff.post('/console/announcements?_action=publishNotice', {
        noticeId: String(id),
        intro: 'Algolia now serves our search from **Ireland**: edited and published in one go.',
        effectiveOn: day(8),
        objectionDeadline: day(6),
        overrideReason: 'Required by the provider for the EU data region.',
        publishAt: '',
        when: 'now',
      });
      // dpo0's recipient was removed above: dpo1 by email, and the Slack channel
      expect(text(published.html)).toContain('Published: 2 deliveries queued.');
      await until(() => resend.emails.length === before + 1, 'the notice email');
      for (const email of resend.emails.slice(before)) {
        expect(email.text).toContain('Algolia now serves our search from Ireland: edited and published in one go.');
        expect(email.text).toContain(`Objections by: ${longDate(day(6))}`);
      }
      expect(await stored(id)).toEqual({
        status: 'published',
        intro: 'Algolia now serves our search from **Ireland**: edited and published in one go.',
        effectiveOn: day(8),
        objectionDeadline: day(6),
      });
      const audit = (await auditWhere({ target: `notice:${id}` })).map(({ action }) => ({ action }));
      expect(audit.slice(-3)).toEqual([
        { action: 'changes.notice_edited' },
        { action: 'changes.notice_period_overridden' },
        { action: 'changes.published' },
      ]);
    });

    it('Schedule keeps the edit made in the same form; Back to draft keeps it too', async () => {
      editText(contentDir, 'docs/encryption.md', (t) => `${t}\n\n## Key rotation\n\nKeys rotate every 90 days.\n`);
      expect(await detect()).toContain('drafted: doc changed: ');
      const id = (await drafts()).find((d) => d.subject === 'doc')?.id ?? 0;
      const at = new Date(Date.now() + 60 * 60_000).toISOString().slice(0, 16);
      const scheduled = await staff.post('/console/announcements?_action=publishNotice', {
        noticeId: String(id),
        intro: 'We now rotate keys every 90 days (edited when scheduling).',
        effectiveOn: '',
        publishAt: at,
        when: 'later',
      });
      expect(text(scheduled.html)).toContain('The notice is scheduled.');
      expect(await stored(id)).toMatchObject({ status: 'scheduled', intro: 'We now rotate keys every 90 days (edited when scheduling).' });
      const back = await staff.post('/console/announcements?_action=unscheduleNotice', {
        noticeId: String(id),
        intro: 'Keys rotate every 90 days (edited, then back to draft).',
        effectiveOn: '',
        publishAt: at,
      });
      expect(text(back.html)).toContain('The notice is back to draft.');
      expect(await stored(id)).toMatchObject({ status: 'draft', intro: 'Keys rotate every 90 days (edited, then back to draft).' });
      // Schedule without a time names what is missing
      const noTime = await staff.post('/console/announcements?_action=publishNotice', {
        noticeId: String(id),
        intro: 'Keys rotate every 90 days.',
        effectiveOn: '',
        publishAt: '',
        when: 'later',
      });
      expect(noTime.status).toBe(400);
      expect(text(noTime.html)).toContain('Choose when to publish it (UTC) to schedule it.');
      expect(await stored(id)).toMatchObject({ status: 'draft', intro: 'Keys rotate every 90 days (edited, then back to draft).' });
    });
  });
});
