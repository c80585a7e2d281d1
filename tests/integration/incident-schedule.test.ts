/**
 * Time in the incident loop, across restarts: a scheduled update is published
 * once at its time even when the server was down then; a cancelled one never
 * is; staff are reminded before the promised update and again when it is late.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL under
 * row-level security when CANDOR_TEST_POSTGRES_URL is set; the server restarted
 * and the worker run beside it reach the same database through `running.env`.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { and, asc, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { makeDue } from '../helpers/jobs.ts';
import { ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  const dataDir = tempDir();
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let responder: ConsoleClient;
  let incidentId = '';

  const runDueJobs = () => {
    const run = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--once'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...running.env, CANDOR_DATA_DIR: dataDir },
    });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout;
  };
  /** The server started again on the same data (on PostgreSQL, the same database: running.env names it), on another port. */
  const startAgain = () => startServer({ dataDir, env: running.env });
  const updates = () =>
    readRows(db, (q) => {
      const u = q.t.incidentUpdates;
      return q.db.$count(u, and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(incidentId))));
    });
  const incident = async () => {
    const [row] = await readRows(db, (q) => {
      const i = q.t.incidents;
      return q.db
        .select({ status: i.status, nextUpdateBy: i.nextUpdateBy })
        .from(i)
        .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, Number(incidentId))));
    });
    if (!row) throw new Error(`no incident ${incidentId}`);
    return row;
  };
  const latestScheduled = async () => {
    const [row] = await readRows(db, (q) => {
      const u = q.t.scheduledUpdates;
      return q.db.select({ id: u.id }).from(u).where(eq(u.trustCenterId, q.trustCenter)).orderBy(desc(u.id)).limit(1);
    });
    if (!row) throw new Error('no scheduled update');
    return row.id;
  };
  const inTwoMinutes = () => new Date(Date.now() + 2 * 60_000).toISOString().slice(0, 16);

  beforeAll(async () => {
    running = await engine.start({ dataDir });
    server = running.server;
    db = running.database;
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
    const declared = await responder.post('/console/incidents/new?_action=publishIncident', {
      title: 'Search is slow',
      kind: 'outage',
      severity: 'critical',
      status: 'investigating',
      'component:search': 'degraded',
      body: 'Search results take several seconds.',
    });
    incidentId = /\/console\/incidents\/(\d+)/.exec(declared.location ?? '')?.[1] ?? '';
  });
  afterAll(async () => {
    await server?.stop();
    await running?.stop();
  });

  describe('scheduled updates', () => {
    it('is published once at its time, although the server was down then, and not again after another restart', async () => {
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'identified',
        body: 'Found: a slow index rebuild.',
        scheduleAt: inTwoMinutes(),
      });
      expect(res.location).toMatch(/\?scheduled=\d+/);
      const page = await responder.get(`/console/incidents/${incidentId}`);
      expect(page.html).toContain('Scheduled updates');
      expect(await updates()).toBe(1);
      await server.stop();
      // two minutes pass while nothing runs
      expect(await makeDue(db, { kind: 'incident.scheduled_update' })).toBe(1);
      server = await startAgain();
      const end = Date.now() + 15_000;
      while ((await updates()) < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(await updates(), server.output()).toBe(2);
      expect((await incident()).status).toBe('identified');
      await server.stop();
      server = await startAgain();
      runDueJobs();
      await new Promise((r) => setTimeout(r, 500));
      expect(await updates()).toBe(2);
      // the restarted server listens on another port
      responder = new ConsoleClient(server.url);
      responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
    }, 150_000); // three server starts: slow on a loaded machine

    it('a cancelled scheduled update is never published', async () => {
      await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'monitoring',
        body: 'Should never go out.',
        scheduleAt: inTwoMinutes(),
      });
      const id = await latestScheduled();
      const cancelled = await responder.post(`/console/incidents/${incidentId}?_action=cancelScheduledUpdate`, { scheduledId: String(id) });
      expect(cancelled.html).toContain('The scheduled update is cancelled.');
      expect(await makeDue(db, { keys: [`scheduled-update:${id}`] })).toBe(1);
      runDueJobs();
      expect(await updates()).toBe(2);
    });

    it('refuses a time in the past', async () => {
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'monitoring',
        body: 'x',
        scheduleAt: '2020-01-01T00:00',
      });
      expect(res.html).toContain('Choose a time at least a minute from now (UTC).');
    });
  });

  describe('a scheduled update keeps what staff chose', () => {
    it('publishes without notifying when "Notify subscribers" was unticked, with the promise chosen', async () => {
      const promise = new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 2 * 86_400_000);
      const early = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'monitoring',
        body: 'A quiet note.',
        notifyShown: 'yes',
        scheduleAt: inTwoMinutes(),
        nextUpdateBy: new Date(Date.now() + 60_000).toISOString().slice(0, 16),
      });
      // a promise before the update is published is refused now, not dropped later
      expect(early.html).toContain('The next update must be promised for a time still to come (UTC).');
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId,
        status: 'monitoring',
        body: 'A quiet note.',
        notifyShown: 'yes',
        scheduleAt: inTwoMinutes(),
        nextUpdateBy: promise.toISOString().slice(0, 16),
      });
      expect(res.location).toMatch(/\?scheduled=\d+/);
      const id = await latestScheduled();
      const notifications = () => readRows(db, (q) => q.db.$count(q.t.notifications, eq(q.t.notifications.trustCenterId, q.trustCenter)));
      const before = await notifications();
      expect(await makeDue(db, { keys: [`scheduled-update:${id}`] })).toBe(1);
      runDueJobs();
      expect(await updates()).toBe(3);
      const [latest] = await readRows(db, (q) => {
        const u = q.t.incidentUpdates;
        return q.db
          .select({ notified: u.notified, notificationId: u.notificationId })
          .from(u)
          .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(incidentId))))
          .orderBy(desc(u.id))
          .limit(1);
      });
      expect(latest).toEqual({ notified: false, notificationId: null });
      expect(await notifications()).toBe(before);
      expect((await incident()).nextUpdateBy?.getTime()).toBe(promise.getTime());
    });
  });

  describe('cadence reminders', () => {
    it('reminds staff 15 minutes before the promised update and again when it is overdue; a new update moves both', async () => {
      const jobs = () =>
        readRows(db, (q) => {
          const j = q.t.jobs;
          return q.db
            .select({ key: j.key, runAt: j.runAt, status: j.status })
            .from(j)
            .where(and(eq(j.trustCenterId, q.trustCenter), eq(j.kind, 'incident.reminder')))
            .orderBy(asc(j.key));
        });
      const next = (await incident()).nextUpdateBy;
      if (!next) throw new Error('no next update promised');
      expect(await jobs()).toEqual([
        { key: `reminder:${incidentId}:overdue`, runAt: next, status: 'pending' },
        { key: `reminder:${incidentId}:soon`, runAt: new Date(next.getTime() - 15 * 60_000), status: 'pending' },
      ]);
      const reminders = () =>
        readRows(db, (q) => {
          const n = q.t.notifications;
          return q.db
            .select({ title: n.title })
            .from(n)
            .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.kind, 'staff-reminder')))
            .orderBy(asc(n.id));
        });
      expect(await makeDue(db, { keys: [`reminder:${incidentId}:soon`] })).toBe(1);
      runDueJobs();
      expect((await reminders()).map((r) => r.title)).toEqual([
        expect.stringMatching(/^Due in 15 minutes: the next update on "Search is slow"/),
      ]);
      expect(await makeDue(db, { keys: [`reminder:${incidentId}:overdue`] })).toBe(1);
      runDueJobs();
      expect((await reminders()).map((r) => r.title)[1]).toMatch(/^Overdue: the next update on "Search is slow" was promised by/);
      // what the log transport kept of the reminder (its payload is JSON: searched as text here, on either engine)
      const logged = (
        await readRows(db, (q) =>
          q.db
            .select({ to: q.t.loggedMessages.to, payload: q.t.loggedMessages.payload })
            .from(q.t.loggedMessages)
            .where(eq(q.t.loggedMessages.trustCenterId, q.trustCenter)),
        )
      ).filter((m) => JSON.stringify(m.payload).includes('Overdue'));
      expect(logged.length).toBeGreaterThan(0);
    });
  });
});
