/**
 * Free-form announcements (Console → Announcements → Write an announcement):
 * the composer previews each channel and whom it reaches without storing
 * anything; bad input is refused naming the field, keeping what was typed,
 * storing and sending nothing; Save draft, then Publish now from the same
 * form sends the text as edited, once per address, on email, SMS, Slack and
 * signed webhook, to the change topics chosen and no one else, without an
 * objection link, audited; it appears on /changes (also from memory), in the
 * change feeds and /api/v1/changes.json, escaped; a scheduled one is
 * published once by the worker, goes back to draft when its effective date
 * passed meanwhile (staff are told), and can be put back to draft (keeping
 * the edit) or discarded. On each engine (tests/helpers/engine-server.ts):
 * SQLite, and PostgreSQL under row-level security when CANDOR_TEST_POSTGRES_URL
 * is set.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { startFakeTwilio } from '../fakes/twilio.ts';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { makeDue } from '../helpers/jobs.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const DAY = 86_400_000;
const day = (offset: number) => new Date(Date.now() + offset * DAY).toISOString().slice(0, 10);
const COMPOSE = '/console/announcements/compose';
const PHONE = '+447911100001';
const whsec = `whsec_${randomBytes(24).toString('base64')}`;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let twilio: Awaited<ReturnType<typeof startFakeTwilio>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let db: Database;
  let env: Record<string, string>;
  let staff: ConsoleClient;
  let viewer: ConsoleClient;
  let staffEmail = '';

  /** Rows of the table, or of the announcements titled so. */
  const count = (table: 'notifications' | 'announcements', title?: string) =>
    readRows(db, (q) => {
      if (table === 'notifications') return q.db.$count(q.t.notifications, eq(q.t.notifications.trustCenterId, q.trustCenter));
      const a = q.t.announcements;
      return q.db.$count(a, and(eq(a.trustCenterId, q.trustCenter), title === undefined ? undefined : eq(a.title, title)));
    });
  const announcement = async (id: number) => {
    const [row] = await readRows(db, (q) => {
      const a = q.t.announcements;
      return q.db
        .select({ status: a.status, title: a.title, body: a.body, topics: a.topics, effectiveOn: a.effectiveOn })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.id, id)));
    });
    return row;
  };
  /** The audit entries about an announcement, oldest first. */
  const auditOf = (id: number) =>
    readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ action: a.action, actorType: a.actorType })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.target, `announcement:${id}`)))
        .orderBy(asc(a.id));
    });
  const idFrom = (location: string | null) => Number(/[?&](?:id|published|scheduled)=(\d+)/.exec(location ?? '')?.[1] ?? 0);

  const TITLE = 'A new EU data region in Frankfurt <script>alert(1)</script>';
  const BODY = [
    'From **1 May** new workspaces can be hosted in [Frankfurt](https://trust.example/regions).',
    '',
    '<img src=x onerror=alert(2)> Existing workspaces move on request. {{objection:1}}',
  ].join('\n');

  /** The composer's fields; both change topics ticked unless said otherwise. */
  const form = (fields: Record<string, string> = {}): Record<string, string> => ({
    announcementId: '',
    title: TITLE,
    body: BODY,
    effectiveOn: day(10),
    publishAt: '',
    'topic:subprocessors': 'yes',
    'topic:docs': 'yes',
    ...fields,
  });

  beforeAll(async () => {
    resend = await startFakeResend();
    twilio = await startFakeTwilio({ statusCallbacks: false });
    slack = await startFakeSlack();
    receiver = await startWebhookReceiver({ secret: whsec });
    const port = await freePort();
    env = {
      ...providerEnv({ port, resend, twilio, slack, testKeys: true }),
      CANDOR_WEBHOOK_ALLOW_HOSTS: `${new URL(receiver.url).host},${new URL(slack.url).host}`,
    };
    running = await engine.start({ port, dataDir: tempDir(), env });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', topic: 'subprocessors', address: () => 'dpo@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', topic: 'docs', address: () => 'security@customer.example' });
    // one address following both change topics: it hears once
    const [both = 0] = await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      topic: 'subprocessors',
      address: () => 'both@customer.example',
    });
    await writeRows(db, async (q) => {
      const [recipient] = await q.db
        .select({ subscriberId: q.t.recipients.subscriberId })
        .from(q.t.recipients)
        .where(eq(q.t.recipients.id, both));
      if (!recipient?.subscriberId) throw new Error('no subscriber for both@');
      await q.db
        .insert(q.t.subscriberTopics)
        .values({ subscriberId: recipient.subscriberId, topic: 'docs', component: '', trustCenterId: q.trustCenter });
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'incidents-only@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', topic: 'subprocessors', address: () => PHONE });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      topic: 'subprocessors',
      address: () => 'C0PRIVACY',
      secret: () => 'xoxb-customer',
    });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'webhook',
      topic: 'docs',
      address: () => `${receiver.url}/candor`,
      secret: () => whsec,
    });
    staff = new ConsoleClient(server.url);
    const signedIn = await signedInStaffOn(db, 'responder');
    staffEmail = signedIn.email;
    staff.setCookie('candor_session', signedIn.token);
    viewer = new ConsoleClient(server.url);
    viewer.setCookie('candor_session', (await signedInStaffOn(db, 'viewer')).token);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await running?.stop();
    await Promise.all([resend?.close(), twilio?.close(), slack?.close(), receiver?.close()]);
  });

  describe('the composer', () => {
    it('is offered to responders, not to viewers', async () => {
      expect(text((await staff.get('/console/announcements')).html)).toContain('Write an announcement');
      expect(text((await viewer.get('/console/announcements')).html)).not.toContain('Write an announcement');
      expect((await viewer.get(COMPOSE)).status).toBe(403);
      const page = await staff.get(COMPOSE);
      expect(page.status).toBe(200);
      // a new announcement goes to both change topics unless staff untick one
      expect(page.html).toMatch(/name="topic:subprocessors" value="yes" checked/);
      expect(page.html).toMatch(/name="topic:docs" value="yes" checked/);
      expect(text(page.html)).toContain('carries no objection link');
    });

    it('previews each channel and whom it reaches, storing and sending nothing', async () => {
      const notifications = await count('notifications');
      const preview = await staff.post(`${COMPOSE}?_action=previewAnnouncement`, form());
      expect(preview.status).toBe(200);
      const page = text(preview.html);
      // three email addresses (one following both topics, counted once), the phone, the channel, the endpoint
      expect(page).toContain('It would reach: Email 3 · SMS 1 · Slack 1 · Webhook 1 · Microsoft Teams 0 · Discord 0.');
      expect(page).toContain(`[Announcement] ${TITLE} (effective `);
      expect(page).toMatch(
        /Lumenwork - Announcement: A new EU data region in Frankfurt <script>alert\(1\)<\/script> \(effective \d{4}-\d{2}-\d{2}\)\. From 1 May/,
      );
      expect(page).toContain('"type": "announcement.published"');
      // nothing a staff member typed becomes markup (inside a quoted attribute value it is only text), and no objection placeholder survives
      expect(preview.html.replace(/ value="[^"]*"/g, '')).not.toMatch(/<script>alert|<img src=x/);
      // the placeholder stays in the form, as typed, but no message carries it
      expect(preview.html.slice(preview.html.indexOf('id="preview"'))).not.toContain('{{objection');
      // the form keeps what was typed
      expect(preview.html).toContain(`value="${TITLE}"`);
      expect(await count('announcements')).toBe(0);
      expect(await count('notifications')).toBe(notifications);
    });

    it('refuses what is missing or wrong, naming it, keeping what was typed, storing and sending nothing', async () => {
      const notifications = await count('notifications');
      const cases: [Record<string, string>, string][] = [
        [{ title: '  ' }, 'Write a title'],
        [{ body: '' }, 'Write the announcement itself: the body is empty.'],
        [{ 'topic:subprocessors': '', 'topic:docs': '' }, 'Choose whom it goes to'],
        [{ effectiveOn: '2026-02-30' }, 'The effective date must be a date written YYYY-MM-DD, got "2026-02-30".'],
        [{ effectiveOn: day(-1) }, 'The effective date cannot be before the announcement is published.'],
        [{ title: 'x'.repeat(201) }, 'The title is too long (200 characters at most).'],
      ];
      for (const [fields, message] of cases) {
        const refused = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, { ...form(fields), when: 'now' });
        expect(refused.status, message).toBe(400);
        expect(text(refused.html), message).toContain(message);
        if (fields.body === undefined) expect(refused.html, message).toContain('Existing workspaces move on request.');
      }
      const noTime = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, { ...form(), when: 'later' });
      expect(noTime.status).toBe(400);
      expect(text(noTime.html)).toContain('Choose when to publish it (UTC) to schedule it.');
      const soon = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, {
        ...form({ publishAt: new Date().toISOString().slice(0, 16) }),
        when: 'later',
      });
      expect(text(soon.html)).toContain('Choose a time at least a minute from now (UTC).');
      const forged = await staff.post(`${COMPOSE}?_action=saveAnnouncement`, form({ announcementId: '1 OR 1=1' }));
      expect(forged.status).toBe(404);
      expect(await count('announcements')).toBe(0);
      expect(await count('notifications')).toBe(notifications);
    });
  });

  describe('publishing', () => {
    let id = 0;
    it('Save draft keeps it; Publish now from the same form sends the text as edited', async () => {
      const saved = await staff.post(`${COMPOSE}?_action=saveAnnouncement`, form({ title: 'Draft title' }));
      expect(saved.status).toBe(303);
      id = idFrom(saved.location);
      expect(id).toBeGreaterThan(0);
      const reopened = await staff.follow(saved);
      expect(text(reopened.html)).toContain('The draft is saved.');
      expect(reopened.html).toContain('value="Draft title"');
      expect(await announcement(id)).toMatchObject({ status: 'draft', title: 'Draft title' });
      expect(text((await staff.get('/console/announcements')).html)).toContain('Draft title · draft, saved');
      // not public while a draft
      expect(text(await (await fetch(`${server.url}/changes`)).text())).not.toContain('Draft title');

      const published = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, {
        ...form({ announcementId: String(id) }),
        when: 'now',
      });
      expect(published.status).toBe(303);
      expect(idFrom(published.location)).toBe(id);
      const list = await staff.follow(published);
      expect(text(list.html)).toContain('The announcement is published: 6 deliveries queued.');
      expect(await announcement(id)).toMatchObject({ status: 'published', title: TITLE, effectiveOn: day(10) });
      expect(await auditOf(id)).toEqual([
        { action: 'announcements.saved', actorType: 'staff' },
        { action: 'announcements.published', actorType: 'staff' },
      ]);
      // published once: the same form posted again changes nothing
      const again = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, { ...form({ announcementId: String(id) }), when: 'now' });
      expect(again.status).toBe(400);
      expect(text(again.html)).toContain('This announcement is already published.');
    });

    it('reaches the chosen topics once per address on every channel, with no objection link', async () => {
      await until(() => resend.emails.length === 3, 'three emails');
      expect(resend.emails.flatMap((e) => e.to).sort()).toEqual([
        'both@customer.example',
        'dpo@customer.example',
        'security@customer.example',
      ]);
      const email = resend.emails[0];
      expect(email?.subject).toMatch(/^\[Announcement\] A new EU data region in Frankfurt <script>alert\(1\)<\/script> \(effective /);
      expect(email?.text).toContain('From 1 May new workspaces can be hosted in Frankfurt (https://trust.example/regions).');
      expect(email?.text).toContain(`${server.url}/changes#announcement-${id}`);
      expect(email?.html).toContain('<strong>1 May</strong>');
      expect(email?.html).not.toMatch(/<script|<img/i);
      for (const e of resend.emails) {
        expect(e.text).not.toContain('/objections/');
        expect(e.text).not.toContain('{{objection');
      }
      await until(() => twilio.messagesTo(PHONE).length === 1, 'the SMS');
      const sms = twilio.messagesTo(PHONE)[0]?.body ?? '';
      expect(sms).toMatch(/^Lumenwork - Announcement: A new EU data region/);
      // the page link, carrying the delivery's marker (issue 18) before the fragment
      expect(sms).toMatch(/\/changes\?d=[0-9a-z]+#announcement-\d+$/);
      expect(sms.replace(/\?d=[0-9a-z]+#/, '#').endsWith(`${server.url}/changes#announcement-${id}`)).toBe(true);
      await until(() => slack.messages.length === 1, 'the Slack message');
      expect(slack.messages[0]?.text).toContain('[Announcement] A new EU data region in Frankfurt &lt;script&gt;');
      await until(() => receiver.verified().length === 1, 'the signed webhook');
      const payload = receiver.verified()[0]?.payload as { type: string; data: { announcement: Record<string, unknown> } };
      expect(payload.type).toBe('announcement.published');
      expect(payload.data.announcement).toMatchObject({
        id,
        title: TITLE,
        topics: ['subprocessors', 'docs'],
        effectiveOn: day(10),
        url: `${server.url}/changes#announcement-${id}`,
      });
    });

    it('appears on /changes (also when served from memory), in the change feeds and in /api/v1/changes.json, escaped', async () => {
      // asked twice: the second answer comes from memory (src/runtime/status-snapshots.ts)
      await fetch(`${server.url}/changes`);
      const page = await (await fetch(`${server.url}/changes`)).text();
      expect(page).toContain(`id="announcement-${id}"`);
      expect(page).toContain('A new EU data region in Frankfurt &lt;script&gt;alert(1)&lt;/script&gt;');
      expect(page).not.toMatch(/<script>alert|<img src=x/);
      expect(text(page)).toContain('From 1 May new workspaces can be hosted in Frankfurt');
      for (const format of ['xml', 'atom']) {
        const feed = await (await fetch(`${server.url}/feeds/changes.${format}`)).text();
        expect(feed, format).toContain(`/changes#announcement-${id}`);
        expect(feed, format).not.toMatch(/<script>alert|<img src=x/);
      }
      // JSON Feed: the title is plain text; the HTML is safe
      const jsonFeed = (await (await fetch(`${server.url}/feeds/changes.json`)).json()) as { items: Record<string, string>[] };
      expect(jsonFeed.items[0]).toMatchObject({ url: `${server.url}/changes#announcement-${id}`, title: expect.stringContaining(TITLE) });
      expect(jsonFeed.items[0]?.content_html).not.toMatch(/<script|<img/);
      expect(jsonFeed.items[0]?.content_html).toContain('<strong>1 May</strong>');
      const json = (await (await fetch(`${server.url}/api/v1/changes.json`)).json()) as { changes: Record<string, unknown>[] };
      expect(json.changes).toEqual([
        expect.objectContaining({
          id: `announcement-${id}`,
          type: 'announcement',
          title: TITLE,
          topics: ['subprocessors', 'docs'],
          effectiveOn: day(10),
          objectionDeadline: null,
          change: null,
        }),
      ]);
      expect(String(json.changes[0]?.text)).not.toContain('{{objection');
      const listed = text((await staff.get('/console/announcements')).html);
      expect(listed).toContain(`Announcement: ${TITLE}`);
    });
  });

  describe('a form posted twice', () => {
    it('makes one announcement and sends it once (a double click on Publish now, a retried request)', async () => {
      const page = await staff.get(COMPOSE);
      const formKey = /name="formKey" value="([\w-]+)"/.exec(page.html)?.[1] ?? '';
      expect(formKey).toMatch(/^[\w-]{16,64}$/);
      // a second composer has its own key
      expect((await staff.get(COMPOSE)).html).not.toContain(formKey);
      const fields = form({ formKey, title: 'Posted twice', 'topic:docs': '' });
      const saved = [
        await staff.post(`${COMPOSE}?_action=saveAnnouncement`, fields),
        await staff.post(`${COMPOSE}?_action=saveAnnouncement`, fields),
      ];
      expect(saved.map((r) => idFrom(r.location))).toEqual([idFrom(saved[0]?.location ?? null), idFrom(saved[0]?.location ?? null)]);
      const notifications = await count('notifications');
      const [first, second] = await Promise.all([
        staff.post(`${COMPOSE}?_action=publishAnnouncement`, { ...fields, when: 'now' }),
        staff.post(`${COMPOSE}?_action=publishAnnouncement`, { ...fields, when: 'now' }),
      ]);
      expect([first?.status, second?.status].sort()).toEqual([303, 400]);
      expect(text([first, second].find((r) => r?.status === 400)?.html ?? '')).toContain('This announcement is already published.');
      expect(await count('notifications')).toBe(notifications + 1);
      expect(await count('announcements', 'Posted twice')).toBe(1);
      // dpo@ and both@ follow subprocessor changes: one email each
      await until(() => resend.emails.filter((e) => e.subject.startsWith('[Announcement] Posted twice')).length === 2, 'the two emails');
    });
  });

  describe('scheduling', () => {
    it('the worker publishes a scheduled one once; one whose effective date passed meanwhile returns to draft and staff are told', async () => {
      const at = new Date(Date.now() + 10 * 60_000).toISOString().slice(0, 16);
      const first = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, {
        ...form({ title: 'Status page moves to status.lumenwork.example', effectiveOn: '', 'topic:subprocessors': '', publishAt: at }),
        when: 'later',
      });
      expect(first.status).toBe(303);
      const onTime = idFrom(first.location);
      expect(text((await staff.follow(first)).html)).toContain('The announcement is scheduled.');
      const second = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, {
        ...form({ title: 'Late one', effectiveOn: day(1), publishAt: at }),
        when: 'later',
      });
      const late = idFrom(second.location);
      expect(await announcement(onTime)).toMatchObject({ status: 'scheduled', topics: ['docs'] });
      expect(text((await staff.get('/console/announcements')).html)).toContain(
        `Status page moves to status.lumenwork.example · scheduled for ${at.replace('T', ' ')} UTC`,
      );
      // the server was down past the late one's effective date
      await writeRows(db, (q) =>
        q.db
          .update(q.t.announcements)
          .set({ effectiveOn: day(-1) })
          .where(and(eq(q.t.announcements.trustCenterId, q.trustCenter), eq(q.t.announcements.id, late))),
      );
      expect(await makeDue(db, { keys: [`announcement:${onTime}:publish`, `announcement:${late}:publish`] })).toBe(2);
      const before = resend.emails.length;
      await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--once'], {
        cwd: ROOT,
        env: { ...process.env, ...env, ...running.env, CANDOR_DATA_DIR: server.dataDir },
      });
      // the docs topic: security@ and both@; and the staff member about the late one
      await until(() => resend.emails.length === before + 3, 'two announcements and a staff notice');
      const sent = resend.emails.slice(before);
      expect(
        sent
          .filter((e) => e.subject === '[Announcement] Status page moves to status.lumenwork.example')
          .flatMap((e) => e.to)
          .sort(),
      ).toEqual(['both@customer.example', 'security@customer.example']);
      const told = sent.find((e) => e.subject.startsWith('Not published: the scheduled announcement "Late one"'));
      expect(told?.to).toEqual([staffEmail]);
      expect(told?.text).toContain('The effective date cannot be before the announcement is published.');
      expect(await announcement(onTime)).toMatchObject({ status: 'published' });
      expect(await announcement(late)).toMatchObject({ status: 'draft' });
      expect(await auditOf(onTime)).toEqual([
        { action: 'announcements.scheduled', actorType: 'staff' },
        { action: 'announcements.published', actorType: 'system' },
      ]);
      expect(await auditOf(late)).toEqual([
        { action: 'announcements.scheduled', actorType: 'staff' },
        { action: 'announcements.schedule_failed', actorType: 'system' },
      ]);
    });

    it('Back to draft keeps the edit made in the same form; Discard drops a draft', async () => {
      const at = new Date(Date.now() + 30 * 60_000).toISOString().slice(0, 16);
      const scheduled = await staff.post(`${COMPOSE}?_action=publishAnnouncement`, {
        ...form({ title: 'To be changed', publishAt: at }),
        when: 'later',
      });
      const id = idFrom(scheduled.location);
      const page = await staff.get(`${COMPOSE}?id=${id}`);
      expect(text(page.html)).toContain(`Scheduled for ${at.replace('T', ' ')} UTC.`);
      const back = await staff.post(
        `${COMPOSE}?_action=unscheduleAnnouncement`,
        form({ announcementId: String(id), title: 'Changed while scheduled', publishAt: at }),
      );
      expect(back.status).toBe(303);
      expect(text((await staff.follow(back)).html)).toContain('Back to draft');
      expect(await announcement(id)).toMatchObject({ status: 'draft', title: 'Changed while scheduled' });
      expect(
        await readRows(db, (q) =>
          q.db
            .select({ status: q.t.jobs.status })
            .from(q.t.jobs)
            .where(and(eq(q.t.jobs.trustCenterId, q.trustCenter), eq(q.t.jobs.key, `announcement:${id}:publish`))),
        ),
      ).toEqual([{ status: 'cancelled' }]);
      const discarded = await staff.post(`${COMPOSE}?_action=discardAnnouncement`, form({ announcementId: String(id) }));
      expect(discarded.status).toBe(303);
      expect(text((await staff.follow(discarded)).html)).toContain('The draft announcement is discarded.');
      expect(await announcement(id)).toMatchObject({ status: 'discarded' });
      expect((await staff.get(`${COMPOSE}?id=${id}`)).status).toBe(404);
      expect((await auditOf(id)).map(({ action }) => ({ action }))).toEqual([
        { action: 'announcements.scheduled' },
        { action: 'announcements.schedule_cancelled' },
        { action: 'announcements.discarded' },
      ]);
    });
  });
});
