/**
 * Time in the incident loop, across restarts: a scheduled update is published
 * once at its time even when the server was down then; a cancelled one never
 * is; staff are reminded before the promised update and again when it is late.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

const dataDir = tempDir();
let server: RunningServer;
let db: Db;
let responder: ConsoleClient;
let incidentId = '';

const runDueJobs = () => {
  const run = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), 'worker', '--once'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CANDOR_DATA_DIR: dataDir },
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
};
const updates = () =>
  (db.$client.prepare('SELECT count(*) AS n FROM incident_updates WHERE incident_id = ?').get(Number(incidentId)) as { n: number }).n;
const inTwoMinutes = () => new Date(Date.now() + 2 * 60_000).toISOString().slice(0, 16);

beforeAll(async () => {
  server = await startServer({ dataDir });
  db = openTestDb(dataDir);
  responder = new ConsoleClient(server.url);
  responder.setCookie('candor_session', signedInStaff(db, 'responder').token);
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
  db?.$client.close();
  await server?.stop();
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
    expect(updates()).toBe(1);
    await server.stop();
    // two minutes pass while nothing runs
    db.$client.prepare(`UPDATE jobs SET run_at = ? WHERE kind = 'incident.scheduled_update'`).run(Date.now() - 1000);
    server = await startServer({ dataDir });
    const end = Date.now() + 15_000;
    while (updates() < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(updates(), server.output()).toBe(2);
    expect(db.$client.prepare('SELECT status FROM incidents WHERE id = ?').get(Number(incidentId))).toEqual({ status: 'identified' });
    await server.stop();
    server = await startServer({ dataDir });
    runDueJobs();
    await new Promise((r) => setTimeout(r, 500));
    expect(updates()).toBe(2);
    // the restarted server listens on another port
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', signedInStaff(db, 'responder').token);
  });

  it('a cancelled scheduled update is never published', async () => {
    await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
      incidentId,
      status: 'monitoring',
      body: 'Should never go out.',
      scheduleAt: inTwoMinutes(),
    });
    const id = (db.$client.prepare('SELECT max(id) AS id FROM scheduled_updates').get() as { id: number }).id;
    const cancelled = await responder.post(`/console/incidents/${incidentId}?_action=cancelScheduledUpdate`, { scheduledId: String(id) });
    expect(cancelled.html).toContain('The scheduled update is cancelled.');
    db.$client.prepare(`UPDATE jobs SET run_at = ? WHERE key = ?`).run(Date.now() - 1000, `scheduled-update:${id}`);
    runDueJobs();
    expect(updates()).toBe(2);
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
    const id = (db.$client.prepare('SELECT max(id) AS id FROM scheduled_updates').get() as { id: number }).id;
    const notifications = () => (db.$client.prepare('SELECT count(*) AS n FROM notifications').get() as { n: number }).n;
    const before = notifications();
    db.$client.prepare(`UPDATE jobs SET run_at = ? WHERE key = ?`).run(Date.now() - 1000, `scheduled-update:${id}`);
    runDueJobs();
    expect(updates()).toBe(3);
    expect(
      db.$client
        .prepare(`SELECT notified, notification_id FROM incident_updates WHERE incident_id = ? ORDER BY id DESC LIMIT 1`)
        .get(Number(incidentId)),
    ).toEqual({ notified: 0, notification_id: null });
    expect(notifications()).toBe(before);
    expect(db.$client.prepare('SELECT next_update_by FROM incidents WHERE id = ?').get(Number(incidentId))).toEqual({
      next_update_by: promise.getTime(),
    });
  });
});

describe('cadence reminders', () => {
  it('reminds staff 15 minutes before the promised update and again when it is overdue; a new update moves both', () => {
    const jobs = () =>
      db.$client.prepare(`SELECT key, run_at, status FROM jobs WHERE kind = 'incident.reminder' ORDER BY key`).all() as {
        key: string;
        run_at: number;
        status: string;
      }[];
    const next = (
      db.$client.prepare('SELECT next_update_by FROM incidents WHERE id = ?').get(Number(incidentId)) as { next_update_by: number }
    ).next_update_by;
    expect(jobs()).toEqual([
      { key: `reminder:${incidentId}:overdue`, run_at: next, status: 'pending' },
      { key: `reminder:${incidentId}:soon`, run_at: next - 15 * 60_000, status: 'pending' },
    ]);
    const reminders = () =>
      db.$client.prepare(`SELECT title FROM notifications WHERE kind = 'staff-reminder' ORDER BY id`).all() as { title: string }[];
    db.$client.prepare(`UPDATE jobs SET run_at = ? WHERE key = ?`).run(Date.now() - 1000, `reminder:${incidentId}:soon`);
    runDueJobs();
    expect(reminders().map((r) => r.title)).toEqual([expect.stringMatching(/^Due in 15 minutes: the next update on "Search is slow"/)]);
    db.$client.prepare(`UPDATE jobs SET run_at = ? WHERE key = ?`).run(Date.now() - 1000, `reminder:${incidentId}:overdue`);
    runDueJobs();
    expect(reminders().map((r) => r.title)[1]).toMatch(/^Overdue: the next update on "Search is slow" was promised by/);
    const logged = db.$client.prepare(`SELECT "to" FROM logged_messages WHERE payload LIKE '%Overdue%'`).all();
    expect(logged.length).toBeGreaterThan(0);
  });
});
