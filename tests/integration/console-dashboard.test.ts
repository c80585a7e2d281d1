/**
 * The dashboard leads with what needs a person now, computed from what is
 * recorded: an open incident whose promised update is late, breach clocks
 * running, maintenance starting within a day, failed deliveries,
 * quarantined addresses and objections waiting. Counters of staff and
 * sessions come after. A responder sees "Declare incident"; a viewer not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

let server: RunningServer;
let db: Db;
let responder: ConsoleClient;

beforeAll(async () => {
  const port = await freePort();
  server = await startServer({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
  db = openTestDb(server.dataDir);
  addSubscribers(db, TEST_KEYS, { count: 3, channel: 'email', address: (i) => `ops${i}@customer.example` });
  responder = new ConsoleClient(server.url);
  responder.setCookie('candor_session', signedInStaff(db, 'responder').token);
});
afterAll(async () => {
  db?.$client.close();
  await server?.stop();
});

const idFrom = (location: string | null) => Number(/\/console\/incidents\/(\d+)/.exec(location ?? '')?.[1]);
const run = (sql: string, ...params: unknown[]) => db.$client.prepare(sql).run(...params);

describe('the dashboard', () => {
  it('says nothing needs a person when nothing does', async () => {
    const page = await responder.get('/console');
    expect(page.status).toBe(200);
    expect(text(page.html)).toContain('Nothing needs a person right now');
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
    run('UPDATE incidents SET next_update_by = ? WHERE id = ?', Date.now() - 95 * 60_000, outageId);

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
      () => (db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE status = 'pending'`).get() as { n: number }).n === 0,
      'the notices logged',
    );
    // two deliveries of the outage's first notice failed; one address was quarantined; one objection waits
    const outageNotification = (
      db.$client.prepare('SELECT notification_id AS id FROM incident_updates WHERE incident_id = ? ORDER BY id LIMIT 1').get(outageId) as {
        id: number;
      }
    ).id;
    run(
      `UPDATE deliveries SET status = 'failed', finished_at = ? WHERE id IN (SELECT id FROM deliveries WHERE notification_id = ? LIMIT 2)`,
      Date.now(),
      outageNotification,
    );
    run(
      `UPDATE recipients SET status = 'suppressed', suppressed_at = ?, suppressed_reason = 'bounced' WHERE id = (SELECT min(id) FROM recipients)`,
      Date.now(),
    );
    const notice = run(
      `INSERT INTO change_notices (subject, change, subject_id, subject_name, details, fingerprint, status, intro, detected_at, published_at)
       VALUES ('subprocessor', 'added', 'x', 'X', '{}', 'f1', 'published', '', ?, ?)`,
      Date.now(),
      Date.now(),
    ).lastInsertRowid;
    run(
      `INSERT INTO objections (notice_id, link_recipient, reasons, status, late, created_at, updated_at) VALUES (?, 1, 'No', 'open', 0, ?, ?)`,
      notice,
      Date.now(),
      Date.now(),
    );

    const page = await responder.get('/console');
    const t = text(page.html);
    // the overdue incident first, with how late it is; the other with its promise
    const rows = [
      ...page.html.matchAll(/<tr data-late="(yes|no)">\s*<th scope="row"><a href="\/console\/incidents\/(\d+)">([^<]+)<\/a>/g),
    ].map((m) => [m[3], m[1]]);
    // then the others, soonest promise first, as recorded
    const promised = db.$client
      .prepare(`SELECT title FROM incidents WHERE kind != 'maintenance' AND id != ? ORDER BY next_update_by`)
      .all(outageId) as { title: string }[];
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
    viewer.setCookie('candor_session', signedInStaff(db, 'viewer').token);
    const page = await viewer.get('/console');
    expect(text(page.html)).toContain('Checkout errors');
    expect(page.html).not.toContain('href="/console/incidents/new?kind=');
    const admin = new ConsoleClient(server.url);
    admin.setCookie('candor_session', signedInStaff(db, 'admin').token);
    expect((await admin.get('/console')).html).toContain('href="/console/subscribers/quarantine"');
  });
});
