/**
 * Scheduled maintenance: announced when created, subscribers reminded 24 h
 * and 1 h before, started and completed on its own at the window's edges,
 * each step once, across a restart; an .ics file for the window; the status
 * page shows it as upcoming, then in progress, then history. On each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL under row-level
 * security when CANDOR_TEST_POSTGRES_URL is set; the server restarted and the
 * worker run beside it reach the same database through `running.env`.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { and, asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const HOUR = 3_600_000;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let db: Database;
  let env: Record<string, string>;
  let port = 0;
  const dataDir = tempDir();
  let responder: ConsoleClient;
  let id = '';

  // The window opens in two days at a whole minute (the form has minute precision).
  const startsAt = new Date(Math.floor((Date.now() + 48 * HOUR) / 60_000) * 60_000);
  const endsAt = new Date(startsAt.getTime() + 2 * HOUR);
  const local = (d: Date) => d.toISOString().slice(0, 16);

  /**
   * Time passes: the maintenance and its jobs move earlier together, so that
   * its window starts `untilStart` ms from now (negative: it started then).
   */
  function passTimeUntilStart(untilStart: number): Promise<void> {
    return writeRows(db, async (q) => {
      const { incidents: i, jobs: j } = q.t;
      const [incident] = await q.db
        .select({ windowStartsAt: i.windowStartsAt, windowEndsAt: i.windowEndsAt, startedAt: i.startedAt })
        .from(i)
        .where(and(eq(i.trustCenterId, q.trustCenter), eq(i.id, Number(id))));
      const { windowStartsAt, windowEndsAt, startedAt } = incident ?? {};
      if (!windowStartsAt || !windowEndsAt || !startedAt) throw new Error(`incident ${id} has no window`);
      const shift = windowStartsAt.getTime() - (Date.now() + untilStart);
      const earlier = (d: Date) => new Date(d.getTime() - shift);
      await q.db
        .update(i)
        .set({ windowStartsAt: earlier(windowStartsAt), windowEndsAt: earlier(windowEndsAt), startedAt: earlier(startedAt) })
        .where(eq(i.id, Number(id)));
      const steps = await q.db
        .select({ id: j.id, runAt: j.runAt, payload: j.payload })
        .from(j)
        .where(and(eq(j.trustCenterId, q.trustCenter), like(j.key, `maintenance:${id}:%`)));
      for (const step of steps) {
        const payload = { ...step.payload, startsAt: Number(step.payload.startsAt) - shift, endsAt: Number(step.payload.endsAt) - shift };
        await q.db
          .update(j)
          .set({ runAt: earlier(step.runAt), payload })
          .where(eq(j.id, step.id));
      }
    });
  }
  // Asynchronous: the fake providers live in this process and must keep answering while the worker sends.
  const runWorker = async () => {
    await promisify(execFile)(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--once'], {
      cwd: ROOT,
      env: { ...process.env, ...env, ...running.env, CANDOR_DATA_DIR: dataDir },
    });
  };
  const status = async () => {
    const [row] = await readRows(db, (q) =>
      q.db
        .select({ status: q.t.incidents.status })
        .from(q.t.incidents)
        .where(and(eq(q.t.incidents.trustCenterId, q.trustCenter), eq(q.t.incidents.id, Number(id)))),
    );
    return row?.status;
  };
  const updates = () =>
    readRows(db, (q) => {
      const u = q.t.incidentUpdates;
      return q.db.$count(u, and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(id))));
    });
  const componentHistory = () =>
    readRows(db, (q) => {
      const c = q.t.componentStates;
      return q.db
        .select({ componentId: c.componentId, status: c.status, source: c.source })
        .from(c)
        .where(and(eq(c.trustCenterId, q.trustCenter), eq(c.incidentId, Number(id))))
        .orderBy(asc(c.id));
    });
  const subjects = () => resend.emails.map((e) => e.subject);

  /** Starts the server again on the same port and data (on PostgreSQL, the same database: running.env names it). */
  async function start(): Promise<void> {
    server = await startServer({ port, dataDir, env: { ...env, ...running.env } });
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
  }

  beforeAll(async () => {
    resend = await startFakeResend();
    slack = await startFakeSlack();
    port = await freePort();
    env = providerEnv({ port, resend, slack, testKeys: true });
    running = await engine.start({ port, dataDir, env });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', topic: 'maintenance', address: (i) => `ops${i}@customer.example` });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      topic: 'maintenance',
      component: 'community',
      address: () => 'forum@customer.example',
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'incidents-only@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'slack',
      topic: 'maintenance',
      address: () => 'C0MAINT',
      secret: () => 'xoxb-customer',
    });
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
  });
  afterAll(async () => {
    if (process.env.DEBUG_SERVER) console.log(server?.output());
    await server?.stop();
    await running?.stop();
    await resend?.close();
    await slack?.close();
  });

  const MAINTENANCE = {
    title: 'Database upgrade',
    kind: 'maintenance',
    severity: 'minor',
    status: 'investigating',
    'component:public-api': 'degraded',
    'component:web-app': 'operational',
    body: 'We will upgrade the primary database. Expect a few seconds of reconnects.',
    windowStartsAt: local(startsAt),
    windowEndsAt: local(endsAt),
  };

  describe('scheduled maintenance', () => {
    it('refuses a window that ends before it starts, or is over, naming the problem', async () => {
      const backwards = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...MAINTENANCE,
        windowEndsAt: local(new Date(startsAt.getTime() - HOUR)),
      });
      expect(text(backwards.html)).toContain('The maintenance window must end after it starts.');
      const missing = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...MAINTENANCE,
        windowStartsAt: '',
        windowEndsAt: '',
      });
      expect(text(missing.html)).toContain('Scheduled maintenance needs a window');
      const over = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...MAINTENANCE,
        windowStartsAt: '2026-01-01T01:00',
        windowEndsAt: '2026-01-01T02:00',
      });
      expect(text(over.html)).toContain('That maintenance window is already over');
      const half = await responder.post('/console/incidents/new?_action=previewIncident', { ...MAINTENANCE, windowEndsAt: '' });
      expect(half.status).toBe(400);
      expect(text(half.html)).toContain('Scheduled maintenance needs a window');
      expect(await readRows(db, (q) => q.db.$count(q.t.incidents, eq(q.t.incidents.trustCenterId, q.trustCenter)))).toBe(0);
    });

    it('the composer starts from a template in content/templates, for the kind it is written for', async () => {
      const page = await responder.get('/console/incidents/new?template=maintenance-scheduled');
      // the template is for maintenance only: the composer is maintenance's short form
      expect(page.html).toMatch(/<input type="hidden" name="kind" value="maintenance"\s*\/?>/);
      expect(text(page.html)).toContain('Schedule maintenance');
      expect(text(page.html)).toContain('We will carry out planned maintenance on _the affected services_ during the window');
      // only templates from content/templates are offered: anything else leaves the composer empty
      const unknown = await responder.get('/console/incidents/new?kind=maintenance&template=../docs/encryption');
      expect(unknown.status).toBe(200);
      expect(unknown.html).toMatch(/<textarea name="body"[^>]*><\/textarea>/);
    });

    it('previews the announcement with its window, to the maintenance subscribers only', async () => {
      const preview = await responder.post('/console/incidents/new?_action=previewIncident', MAINTENANCE);
      const t = text(preview.html);
      expect(t).toContain('Recipients: email 2 · sms 0 · slack 1 · webhook 0');
      expect(t).toContain('Email Subject: [Scheduled maintenance] Database upgrade — Scheduled');
      expect(t).toContain('Maintenance window:');
    });

    it('announces it when created; the status page lists it as upcoming, services still operational', async () => {
      const published = await responder.post('/console/incidents/new?_action=publishIncident', MAINTENANCE);
      expect(published.status).toBe(303);
      id = /\/console\/incidents\/(\d+)/.exec(published.location ?? '')?.[1] ?? '';
      await until(() => resend.emails.length === 2, 'the announcement to two subscribers');
      expect(resend.emails.flatMap((e) => e.to).sort()).toEqual(['ops0@customer.example', 'ops1@customer.example']);
      const email = resend.emails[0];
      expect(email?.subject).toBe('[Scheduled maintenance] Database upgrade — Scheduled');
      expect(email?.text).toContain('Maintenance window:');
      expect(email?.html).toContain(`/incidents/${id}.ics`);
      await until(() => slack.messages.length === 1, 'the Slack root');
      expect(await status()).toBe('scheduled');
      const page = await (await fetch(`${server.url}/status`)).text();
      expect(page).toContain('Upcoming maintenance');
      expect(page).toContain('All services are operational');
      expect(page).toMatch(/<span class="component-state state-operational">Operational<\/span>/);
      expect(page).not.toContain('Open incidents');
      const json = (await (await fetch(`${server.url}/api/v1/status.json`)).json()) as {
        openIncidents: unknown[];
        upcomingMaintenance: { id: number; window: { startsAt: string; endsAt: string } }[];
      };
      expect(json.openIncidents).toEqual([]);
      expect(json.upcomingMaintenance).toEqual([
        expect.objectContaining({ id: Number(id), window: { startsAt: startsAt.toISOString(), endsAt: endsAt.toISOString() } }),
      ]);
      const plan = await responder.get(`/console/incidents/${id}`);
      // its composer offers the templates written for maintenance, not those for outages
      expect(plan.html).toContain('data-template="maintenance-started"');
      expect(plan.html).not.toContain('data-template="investigating"');
      expect(text(plan.html)).toMatch(/Reminder to subscribers, 24 hours before: .* \(planned\)/);
      const jobs = await readRows(db, (q) => {
        const j = q.t.jobs;
        return q.db
          .select({ key: j.key, runAt: j.runAt })
          .from(j)
          .where(and(eq(j.trustCenterId, q.trustCenter), like(j.key, 'maintenance:%')))
          .orderBy(asc(j.runAt));
      });
      expect(jobs).toEqual([
        { key: `maintenance:${id}:remind-24h`, runAt: new Date(startsAt.getTime() - 24 * HOUR) },
        { key: `maintenance:${id}:remind-1h`, runAt: new Date(startsAt.getTime() - HOUR) },
        { key: `maintenance:${id}:start`, runAt: startsAt },
        { key: `maintenance:${id}:complete`, runAt: endsAt },
      ]);
    });

    it('serves the window as an .ics calendar file', async () => {
      const res = await fetch(`${server.url}/incidents/${id}.ics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/calendar; charset=utf-8');
      const ics = await res.text();
      const stamp = (d: Date) => `${d.toISOString().replace(/[-:]/g, '').slice(0, 15)}Z`;
      expect(ics).toContain(`DTSTART:${stamp(startsAt)}\r\n`);
      expect(ics).toContain(`DTEND:${stamp(endsAt)}\r\n`);
      expect(ics).toContain('SUMMARY:Lumenwork maintenance: Database upgrade\r\n');
      expect(ics).toContain('STATUS:CONFIRMED');
      expect((await fetch(`${server.url}/incidents/999.ics`)).status).toBe(404);
    });

    it('reminds subscribers 24 hours before, once, in the Slack thread', async () => {
      await passTimeUntilStart(24 * HOUR - 60_000);
      await runWorker();
      await runWorker();
      await until(() => resend.emails.length === 4, 'two reminders');
      expect(subjects().slice(2)).toEqual([
        '[Scheduled maintenance] Database upgrade — Reminder',
        '[Scheduled maintenance] Database upgrade — Reminder',
      ]);
      expect(resend.emails[2]?.text).toContain('Reminder: planned maintenance on Public API and Web application starts at');
      await until(() => slack.messages.length === 2, 'the Slack reminder');
      expect(slack.messages[1]?.threadTs).toBe(slack.messages[0]?.ts);
      // no timeline entry: a reminder is not an update
      expect(await updates()).toBe(1);
    });

    it('starts on its own at the window although the server was down then; the late 1-hour reminder is not sent', async () => {
      await server.stop();
      await passTimeUntilStart(-60_000);
      await start();
      await until(async () => (await status()) === 'in_progress', 'the automatic start');
      await until(() => resend.emails.length === 6, 'the start notice');
      await new Promise((r) => setTimeout(r, 500));
      expect(subjects().slice(4)).toEqual([
        '[Scheduled maintenance] Database upgrade — In progress',
        '[Scheduled maintenance] Database upgrade — In progress',
      ]);
      const page = await (await fetch(`${server.url}/status`)).text();
      expect(page).toContain('Under maintenance: Web application and Public API');
      expect(page).toMatch(
        /<li class="component" data-component="public-api" data-state="under_maintenance">\s*<p class="component-head"><span class="component-name">Public API<\/span> <span class="component-state state-under_maintenance">Under maintenance<\/span>/,
      );
      // its history begins with the step that started it, not the announcement
      expect(await componentHistory()).toEqual([
        { componentId: 'public-api', status: 'under_maintenance', source: 'maintenance' },
        { componentId: 'web-app', status: 'under_maintenance', source: 'maintenance' },
      ]);
      expect(page).not.toContain('Upcoming maintenance');
      // a second restart does not start it twice
      await server.stop();
      await start();
      await runWorker();
      expect(await updates()).toBe(2);
    });

    it('completes on its own at the end of the window; the status page returns to operational', async () => {
      await passTimeUntilStart(-2 * HOUR - 60_000);
      await runWorker();
      expect(await status()).toBe('resolved');
      await until(() => resend.emails.length === 8, 'the completion notice');
      expect(subjects().at(-1)).toBe('[Scheduled maintenance] Database upgrade — Completed');
      await runWorker();
      expect(await updates()).toBe(3);
      const page = await (await fetch(`${server.url}/status`)).text();
      expect(page).toContain('All services are operational');
      expect((await componentHistory()).slice(2).map(({ status, source }) => ({ status, source }))).toEqual([
        { status: 'operational', source: 'maintenance' },
        { status: 'operational', source: 'maintenance' },
      ]);
      const incident = text(await (await fetch(`${server.url}/incidents/${id}`)).text());
      expect(incident).toContain('Completed');
      expect(incident).toContain('The planned maintenance on Public API and Web application is complete');
      const audit = await readRows(db, (q) => {
        const a = q.t.auditLog;
        return q.db
          .select({ action: a.action, actorType: a.actorType })
          .from(a)
          .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.target, `incident:${id}`)))
          .orderBy(asc(a.id));
      });
      expect(audit).toEqual([
        { action: 'incidents.declared', actorType: 'staff' },
        { action: 'incidents.updated', actorType: 'system' },
        { action: 'incidents.resolved', actorType: 'system' },
      ]);
      // the incidents-only subscriber never heard of it
      expect(resend.emails.flatMap((e) => e.to)).not.toContain('incidents-only@customer.example');
    });

    it('maintenance cancelled before it starts sends nothing more and its calendar entry says so', async () => {
      const published = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...MAINTENANCE,
        title: 'Search reindex',
      });
      const second = /\/console\/incidents\/(\d+)/.exec(published.location ?? '')?.[1] ?? '';
      await until(() => resend.emails.length === 10, 'the second announcement');
      const cancelled = await responder.post(`/console/incidents/${second}?_action=publishIncident`, {
        incidentId: second,
        status: 'resolved',
        body: 'Cancelled: we will announce a new date.',
      });
      expect(cancelled.status).toBe(303);
      await until(() => resend.emails.length === 12, 'the cancellation');
      expect(subjects().at(-1)).toBe('[Scheduled maintenance] Search reindex — Cancelled');
      const page = text(await (await fetch(`${server.url}/incidents/${second}`)).text());
      expect(page).toContain('Cancelled · cancelled');
      expect(page).not.toContain('started');
      const states = await readRows(db, (q) =>
        q.db
          .select({ status: q.t.jobs.status })
          .from(q.t.jobs)
          .where(and(eq(q.t.jobs.trustCenterId, q.trustCenter), like(q.t.jobs.key, `maintenance:${second}:%`))),
      );
      expect(states.map((s) => s.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
      expect(await (await fetch(`${server.url}/incidents/${second}.ics`)).text()).toContain('STATUS:CANCELLED');
    });
  });
});
