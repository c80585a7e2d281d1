/**
 * The dashboard leads with what needs a person now, computed from what is
 * recorded: an open incident whose promised update is late, breach clocks
 * running, maintenance starting within a day, failed deliveries,
 * quarantined addresses and objections waiting, a failed or overdue
 * backup. The backup figures come from `backup_runs`. Counters of staff and
 * sessions come after. A responder sees "Declare incident"; a viewer not.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, eq, inArray, ne } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { suppressRecipient } from '../../src/core/notify/recipients.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const idFrom = (location: string | null) => Number(/\/console\/incidents\/(\d+)/.exec(location ?? '')?.[1]);

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let responder: ConsoleClient;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 3, channel: 'email', address: (i) => `ops${i}@customer.example` });
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
  });
  afterAll(async () => {
    await running?.stop();
  });

  describe('the dashboard', () => {
    it('says nothing needs a person when nothing does', async () => {
      const page = await responder.get('/console');
      expect(page.status).toBe(200);
      expect(text(page.html)).toContain('Nothing needs a person right now');
      if (running.engine === 'sqlite') {
        // the server planned the first backup at the configured time (content/site.yaml: 02:30 UTC)
        expect(text(page.html)).toMatch(
          /Last backup none yet Last verified restore none yet Schedule daily at 02:30 UTC, newest 14 kept; next \d{4}-\d\d-\d\d 02:30 UTC/,
        );
      } else {
        // on PostgreSQL without CANDOR_BACKUP_DATABASE_URL no backup is taken, and the page says so
        // (with it: tests/integration/postgres-backup-schedule.test.ts)
        expect(text(page.html)).toContain(
          'Last backup none yet Last verified restore none yet Schedule Scheduled backups are not configured: CANDOR_BACKUP_DATABASE_URL is unset',
        );
      }
      expect(page.html).toContain('href="/console/incidents/new?kind=outage"');
    });

    it('leads with the late incident, the breach clocks, maintenance, failures, quarantine and objections', async () => {
      const outage = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Checkout errors',
        kind: 'outage',
        severity: 'major',
        status: 'investigating',
        'component:web-app': 'major_outage',
        body: 'We are looking into failed checkouts.',
      });
      expect(outage.status).toBe(303);
      const outageId = idFrom(outage.location);
      // the promised update is now 95 minutes overdue
      await writeRows(db, (q) =>
        q.db
          .update(q.t.incidents)
          .set({ nextUpdateBy: new Date(Date.now() - 95 * 60_000) })
          .where(and(eq(q.t.incidents.trustCenterId, q.trustCenter), eq(q.t.incidents.id, outageId))),
      );

      const calm = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Slow search',
        kind: 'outage',
        severity: 'minor',
        status: 'identified',
        'component:web-app': 'degraded',
        body: 'Search is slow.',
      });
      expect(calm.status).toBe(303);

      const breach = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Exported workspace data',
        kind: 'breach',
        severity: 'critical',
        status: 'identified',
        'component:web-app': 'operational',
        body: 'We found unauthorised access to one export.',
        breachAwareAt: new Date(Date.now() - 2 * 3_600_000).toISOString().slice(0, 16),
        breachNature: 'A leaked credential.',
        breachSubjects: 'not yet known',
        breachRecords: 'not yet known',
        breachConsequences: 'not yet known',
        breachMeasures: 'Credential revoked.',
      });
      expect(breach.status).toBe(303);
      const breachId = idFrom(breach.location);

      const start = new Date(Date.now() + 3 * 3_600_000);
      const maintenance = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Database upgrade',
        kind: 'maintenance',
        severity: 'minor',
        status: 'scheduled',
        'component:web-app': 'under_maintenance',
        body: 'A short upgrade.',
        windowStartsAt: start.toISOString().slice(0, 16),
        windowEndsAt: new Date(start.getTime() + 3_600_000).toISOString().slice(0, 16),
      });
      expect(maintenance.status).toBe(303);

      await until(
        // none pending nor in flight: a delivery still being sent would be marked sent after the test marks it failed
        async () =>
          (await readRows(db, (q) =>
            q.db.$count(
              q.t.deliveries,
              and(eq(q.t.deliveries.trustCenterId, q.trustCenter), inArray(q.t.deliveries.status, ['pending', 'sending'])),
            ),
          )) === 0,
        'the notices logged',
      );
      // two deliveries of the outage's first notice failed; one address was quarantined; one objection waits
      const oldest = await writeRows(db, async (q) => {
        const { incidentUpdates: u, deliveries: d, recipients: r } = q.t;
        const [first] = await q.db
          .select({ id: u.notificationId })
          .from(u)
          .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, outageId)))
          .orderBy(asc(u.id))
          .limit(1);
        const two = await q.db
          .select({ id: d.id })
          .from(d)
          .where(and(eq(d.trustCenterId, q.trustCenter), eq(d.notificationId, first?.id ?? 0)))
          .orderBy(asc(d.id))
          .limit(2);
        expect(two).toHaveLength(2);
        await q.db
          .update(d)
          .set({ status: 'failed', finishedAt: new Date() })
          .where(
            and(
              eq(d.trustCenterId, q.trustCenter),
              inArray(
                d.id,
                two.map((x) => x.id),
              ),
            ),
          );
        const [oldest] = await q.db.select({ id: r.id }).from(r).where(eq(r.trustCenterId, q.trustCenter)).orderBy(asc(r.id)).limit(1);
        return oldest?.id ?? 0;
      });
      await db.transaction((tx) => suppressRecipient(tx, oldest, 'bounced', new Date()));
      await writeRows(db, async (q) => {
        const now = new Date();
        const [notice] = await q.db
          .insert(q.t.changeNotices)
          .values({
            subject: 'subprocessor',
            change: 'added',
            subjectId: 'x',
            subjectName: 'X',
            details: {},
            fingerprint: 'f1',
            status: 'published',
            intro: '',
            detectedAt: now,
            publishedAt: now,
            trustCenterId: q.trustCenter,
          })
          .returning({ id: q.t.changeNotices.id });
        await q.db.insert(q.t.objections).values({
          noticeId: notice?.id ?? 0,
          linkRecipient: 1,
          reasons: 'No',
          status: 'open',
          late: false,
          createdAt: now,
          updatedAt: now,
          trustCenterId: q.trustCenter,
        });
      });

      const page = await responder.get('/console');
      const t = text(page.html);
      // the overdue incident first, with how late it is; the other with its promise
      const rows = [
        ...page.html.matchAll(/<tr data-late="(yes|no)">\s*<th scope="row"><a href="\/console\/incidents\/(\d+)">([^<]+)<\/a>/g),
      ].map((m) => [m[3], m[1]]);
      // then the others, soonest promise first, as recorded
      const promised = await readRows(db, (q) => {
        const i = q.t.incidents;
        return q.db
          .select({ title: i.title })
          .from(i)
          .where(and(eq(i.trustCenterId, q.trustCenter), ne(i.kind, 'maintenance'), ne(i.id, outageId)))
          .orderBy(asc(i.nextUpdateBy));
      });
      expect(promised.map((p) => p.title).sort()).toEqual(['Exported workspace data', 'Slow search']);
      expect(rows).toEqual([['Checkout errors', 'yes'], ...promised.map((p) => [p.title, 'no'])]);
      expect(t).toMatch(/Checkout errors .* 1 h 3[45] min late/);
      // breach: the authority's 72 hours run until awareness + 72 h
      expect(t).toContain('Notify the supervisory authority within 72 h (GDPR Art. 33)');
      expect(page.html).toContain(`href="/console/incidents/${breachId}"`);
      expect(t).toMatch(/Database upgrade ?: starts in [23] h \d+ min/);
      expect(t).toContain('2 failed deliveries in 7 days');
      expect(t).toContain('1 address quarantined in 7 days');
      expect(t).toContain('1 objection waiting');
      // what needs a person comes before the counters
      expect(t.indexOf('Needs attention now')).toBeLessThan(t.indexOf('active staff'));
      expect(t.indexOf('Checkout errors')).toBeLessThan(t.indexOf('active staff'));
      // responders may not open subscribers: the quarantine count is not a link for them
      expect(page.html).not.toContain('href="/console/subscribers/quarantine"');
    });

    it('a viewer sees the same facts, without the Declare button', async () => {
      const viewer = new ConsoleClient(server.url);
      viewer.setCookie('candor_session', (await signedInStaffOn(db, 'viewer')).token);
      const page = await viewer.get('/console');
      expect(text(page.html)).toContain('Checkout errors');
      expect(page.html).not.toContain('href="/console/incidents/new?kind=');
      const admin = new ConsoleClient(server.url);
      admin.setCookie('candor_session', (await signedInStaffOn(db, 'admin')).token);
      expect((await admin.get('/console')).html).toContain('href="/console/subscribers/quarantine"');
    });
  });

  describe('the backups on the dashboard', () => {
    // tags become spaces in the page's text: `…UTC</strong>, 3.3 MiB` reads `UTC , 3.3 MiB`
    const flat = (html: string) => text(html).replaceAll(' ,', ',');
    const utc = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    const addRun = (r: {
      slot: number;
      finished: number;
      file: string;
      bytes: number;
      outcome?: 'running' | 'ok' | 'failed';
      error?: string | null;
      restore: 'ok' | 'failed' | null;
      ms: number | null;
      restoreError?: string | null;
    }) =>
      writeRows(db, (q) =>
        q.db.insert(q.t.backupRuns).values({
          slot: new Date(r.slot),
          takenBy: 'test:1',
          startedAt: new Date(r.finished - 2000),
          finishedAt: new Date(r.finished),
          file: r.file,
          bytes: r.bytes,
          outcome: r.outcome ?? 'ok',
          error: r.error ?? null,
          restoreCheckedAt: r.restore ? new Date(r.finished + 900) : null,
          restoreMs: r.ms,
          restoreOutcome: r.restore,
          restoreError: r.restoreError ?? null,
          trustCenterId: q.trustCenter,
        }),
      );

    it('shows the last backup and the last verified restore as recorded, and asks for attention when the check fails', async () => {
      const good = Date.now() - 5 * 3_600_000;
      await addRun({
        slot: 1,
        finished: good,
        file: '/srv/backups/candor-daily-20310101T023000Z.backup',
        bytes: 3_460_000,
        restore: 'ok',
        ms: 1234,
      });
      let page = await responder.get('/console');
      let t = flat(page.html);
      expect(t).toContain(`Last backup ${utc(good)}, 3.3 MiB, candor-daily-20310101T023000Z.backup`);
      expect(t).toContain(`Last verified restore ${utc(good + 900)}, restored in 1234 ms`);
      expect(page.html).not.toContain('id="backups-attention"');
      // the full path stays on the server
      expect(page.html).not.toContain('/srv/backups');

      const damaged = Date.now() - 3_600_000;
      await addRun({
        slot: 2,
        finished: damaged,
        file: '/srv/backups/candor-daily-20310102T023000Z.backup',
        bytes: 52_000,
        restore: 'failed',
        ms: 87,
        restoreError:
          'candor-daily-20310102T023000Z.backup is damaged or was altered: its content does not authenticate (chunk 3, byte 196620)',
      });
      page = await responder.get('/console');
      t = flat(page.html);
      const panel = /<div class="panel" id="backups-attention">([\s\S]*?)<\/div>/.exec(page.html)?.[1] ?? '';
      expect(flat(panel)).toContain(
        `The restore check of ${utc(damaged - 2000)} failed: candor-daily-20310102T023000Z.backup is damaged or was altered`,
      );
      // the newest backup written, and the newest restore that passed
      expect(flat(panel)).toContain(`Last backup ${utc(damaged)}, 51 KiB, candor-daily-20310102T023000Z.backup`);
      expect(flat(panel)).toContain(`Last verified restore ${utc(good + 900)}, restored in 1234 ms`);
      expect(t.indexOf('Backups')).toBeLessThan(t.indexOf('active staff'));
    });

    it('asks for attention when no good backup was made for more than 26 hours', async () => {
      const old = Date.now() - 27 * 3_600_000;
      await writeRows(db, (q) => q.db.delete(q.t.backupRuns).where(eq(q.t.backupRuns.trustCenterId, q.trustCenter)));
      await addRun({
        slot: 3,
        finished: old,
        file: '/srv/backups/candor-daily-20310103T023000Z.backup',
        bytes: 2048,
        restore: 'ok',
        ms: 640,
      });
      const page = await responder.get('/console');
      const panel = /<div class="panel" id="backups-attention">([\s\S]*?)<\/div>/.exec(page.html)?.[1] ?? '';
      expect(flat(panel)).toContain(`Overdue: no good backup for 27 hours (since ${utc(old)})`);
      expect(flat(panel)).toContain('Last backup');
      expect(flat(panel)).toContain('restored in 640 ms');
      expect(flat(page.html)).not.toContain('Nothing needs a person right now');
    });
  });
});
