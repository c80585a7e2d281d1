/**
 * The console's Subscribers pages: counts, exact search, a record, quarantine, export and removal, each audited.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { suppressRecipient } from '../../src/core/notify/recipients.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import type { RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let admin: ConsoleClient;
  let adminId: number;

  beforeAll(async () => {
    running = await engine.start({
      env: { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex') },
    });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, {
      count: 3,
      channel: 'email',
      address: (i) => (i === 2 ? '=HYPERLINK("http://evil.example")@x.example' : `member${i}@customer.example`),
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'sms', topic: 'maintenance', address: (i) => `+4479111000${i}0` });
    const staff = await signedInStaffOn(db, 'admin');
    adminId = staff.staffId;
    admin = new ConsoleClient(server.url);
    admin.setCookie('candor_session', staff.token);
  });
  afterAll(async () => {
    await running?.stop();
  });

  const audit = (action: string) =>
    readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ actor_id: a.actorId, target: a.target, summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)));
    });
  const recipientRows = (where: { id?: number; channel?: 'sms' }) =>
    readRows(db, (q) => {
      const r = q.t.recipients;
      return q.db
        .select({ id: r.id, status: r.status })
        .from(r)
        .where(
          and(
            eq(r.trustCenterId, q.trustCenter),
            where.id === undefined ? undefined : eq(r.id, where.id),
            where.channel ? eq(r.channel, where.channel) : undefined,
          ),
        )
        .orderBy(asc(r.id));
    });

  describe('subscribers in the console', () => {
    it('shows counts by channel and topic', async () => {
      const page = await admin.get('/console/subscribers');
      expect(page.status).toBe(200);
      expect(page.html).toMatch(/<tr data-channel="email"><th scope="row">email<\/th><td>3<\/td>/);
      expect(text(page.html)).toContain('Incidents and outages: 3');
      expect(text(page.html)).toContain('Scheduled maintenance: 2');
    });

    it('finds a subscriber by exact address only, and viewing the record is audited', async () => {
      const miss = await admin.get('/console/subscribers?q=member0@customer');
      expect(text(miss.html)).toContain('is not a valid email address');
      const none = await admin.get('/console/subscribers?q=nobody@customer.example');
      expect(text(none.html)).toContain('No subscriber has exactly that address.');
      const hit = await admin.get('/console/subscribers?q=Member1@Customer.example');
      expect(hit.status).toBe(303);
      const record = await admin.get(hit.location ?? '');
      expect(record.html).toContain('member1@customer.example');
      expect(await audit('subscribers.viewed')).toEqual([expect.objectContaining({ actor_id: adminId })]);
      const byPhone = await admin.get(`/console/subscribers?q=${encodeURIComponent('+44 7911 100010')}`);
      expect(byPhone.status).toBe(303);
    });

    it('lists the quarantine with its cause and lifts a suppression (audited)', async () => {
      const id = (await recipientRows({ channel: 'sms' }))[0]?.id ?? 0;
      await db.transaction((tx) => suppressRecipient(tx, id, 'replied STOP', new Date()));
      const page = await admin.get('/console/subscribers/quarantine');
      expect(page.html).toContain(`data-recipient="${id}"`);
      expect(text(page.html)).toContain('replied STOP');
      expect(page.html).toContain('+44 …0000');
      const lifted = await admin.post('/console/subscribers/quarantine?_action=liftSuppression', { recipientId: String(id) });
      expect(text(lifted.html)).toContain('The suppression was lifted.');
      expect((await recipientRows({ id })).map((r) => ({ status: r.status }))).toEqual([{ status: 'active' }]);
      expect(await audit('subscribers.unsuppressed')).toEqual([expect.objectContaining({ target: `recipient:${id}` })]);
    });

    it('exports every address as CSV with formulas defused (audited)', async () => {
      const csv = await admin.get('/console/subscribers/export.csv');
      expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      const lines = csv.html.trim().split('\r\n');
      expect(lines[0]).toBe(
        'subscriber_id,organisation,channel,address,status,topics,subscribed_at,consent_source,consent_method,opted_in_at,opted_in_via',
      );
      expect(lines).toHaveLength(6);
      expect(csv.html).toContain('member0@customer.example');
      expect(csv.html).toContain(`"'=HYPERLINK(""http://evil.example"")@x.example"`);
      expect(await audit('subscribers.exported')).toEqual([expect.objectContaining({ actor_id: adminId })]);
    });

    it('removes a subscriber with all their data; delivery counts stay (audited)', async () => {
      const hit = await admin.get('/console/subscribers?q=member0@customer.example');
      const id = hit.location?.split('/').at(-1) ?? '';
      const removed = await admin.post(`/console/subscribers/${id}?_action=removeSubscriber`, { subscriberId: id });
      expect(text(removed.html)).toContain('The subscriber and all their addresses were removed.');
      expect((await admin.get(`/console/subscribers/${id}`)).status).toBe(404);
      expect(await audit('subscribers.removed')).toEqual([expect.objectContaining({ target: `subscriber:${id}` })]);
    });
  });
});
