/**
 * The dashboard leads with what needs a person now, computed from what is
 * recorded: an open incident whose promised update is late, breach clocks
 * running, maintenance starting within a day, failed deliveries,
 * quarantined addresses and objections waiting, a failed or overdue
 * backup. The backup figures come from `backup_runs`. Counters of staff and
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
    // the server planned the first backup at the configured time (content/site.yaml: 02:30 UTC)
    expect(text(page.html)).toMatch(
      /Last backup none yet Last verified restore none yet Schedule daily at 02:30 UTC, newest 14 kept; next \d{4}-\d\d-\d\d 02:30 UTC/,
    );
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
      // none pending nor in flight: a delivery still being sent would be marked sent after the test marks it failed
      () =>
        (db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE status IN ('pending', 'sending')`).get() as { n: number }).n === 0,
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

describe('the backups on the dashboard', () => {
  // tags become spaces in the page's text: `…UTC</strong>, 3.3 MiB` reads `UTC , 3.3 MiB`
  const flat = (html: string) => text(html).replaceAll(' ,', ',');
  const utc = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const addRun = (r: {
    slot: number;
    finished: number;
    file: string;
    bytes: number;
    outcome?: string;
    error?: string | null;
    restore: 'ok' | 'failed' | null;
    ms: number | null;
    restoreError?: string | null;
  }) =>
    run(
      `INSERT INTO backup_runs (slot, taken_by, started_at, finished_at, file, bytes, outcome, error, restore_checked_at, restore_ms, restore_outcome, restore_error)
       VALUES (?, 'test:1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.slot,
      r.finished - 2000,
      r.finished,
      r.file,
      r.bytes,
      r.outcome ?? 'ok',
      r.error ?? null,
      r.restore ? r.finished + 900 : null,
      r.ms,
      r.restore,
      r.restoreError ?? null,
    );

  it('shows the last backup and the last verified restore as recorded, and asks for attention when the check fails', async () => {
    const good = Date.now() - 5 * 3_600_000;
    addRun({
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
    addRun({
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
    run('DELETE FROM backup_runs');
    addRun({ slot: 3, finished: old, file: '/srv/backups/candor-daily-20310103T023000Z.backup', bytes: 2048, restore: 'ok', ms: 640 });
    const page = await responder.get('/console');
    const panel = /<div class="panel" id="backups-attention">([\s\S]*?)<\/div>/.exec(page.html)?.[1] ?? '';
    expect(flat(panel)).toContain(`Overdue: no good backup for 27 hours (since ${utc(old)})`);
    expect(flat(panel)).toContain('Last backup');
    expect(flat(panel)).toContain('restored in 640 ms');
    expect(flat(page.html)).not.toContain('Nothing needs a person right now');
  });
});
