/**
 * Controlling what goes out: an update published without notifying anyone,
 * the next update's promise chosen by staff, and corrections after
 * publishing (an update's text, the incident's title and severity): each
 * kept as a revision, audited, marked "edited" on the public pages, and
 * sent to subscribers only when staff ask.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisation } from '../helpers/organisations.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

let server: RunningServer;
let db: Db;
let responder: ConsoleClient;
let staffId = 0;

beforeAll(async () => {
  const port = await freePort();
  server = await startServer({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
  db = openTestDb(server.dataDir);
  addSubscribers(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `ops${i}@customer.example` });
  responder = new ConsoleClient(server.url);
  const signedIn = signedInStaff(db, 'responder');
  staffId = signedIn.staffId;
  responder.setCookie('candor_session', signedIn.token);
});
afterAll(async () => {
  db?.$client.close();
  await server?.stop();
});

const deliveries = () => (db.$client.prepare('SELECT count(*) AS n FROM deliveries').get() as { n: number }).n;
const audit = (action: string) =>
  (
    db.$client.prepare('SELECT actor_id, target, summary FROM audit_log WHERE action = ? ORDER BY id').all(action) as {
      actor_id: number;
      target: string;
      summary: string;
    }[]
  ).map((r) => ({ ...r, summary: JSON.parse(r.summary) as Record<string, unknown> }));
const OUTAGE = {
  title: 'Slow search',
  kind: 'outage',
  severity: 'minor',
  status: 'investigating',
  'component:search': 'degraded',
  body: 'Search is slow; we are looking into it.',
  notifyShown: 'yes',
  notify: 'yes',
};
let id = '';
let firstUpdate = 0;

describe('what goes out, and when', () => {
  it('refuses a next-update promise in the past or beyond a week, naming it', async () => {
    const past = await responder.post('/console/incidents/new?_action=publishIncident', {
      ...OUTAGE,
      nextUpdateBy: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
    });
    expect(past.status).toBe(400);
    expect(text(past.html)).toContain('The next update must be promised for a time still to come (UTC).');
    const far = await responder.post('/console/incidents/new?_action=publishIncident', {
      ...OUTAGE,
      nextUpdateBy: new Date(Date.now() + 9 * 86_400_000).toISOString().slice(0, 16),
    });
    expect(text(far.html)).toContain('Promise the next update within 7 days');
    expect(db.$client.prepare('SELECT count(*) AS n FROM incidents').get()).toEqual({ n: 0 });
  });

  it('declares with the promise chosen, and notifies', async () => {
    const promise = new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 20 * 60_000);
    const res = await responder.post('/console/incidents/new?_action=publishIncident', {
      ...OUTAGE,
      nextUpdateBy: promise.toISOString().slice(0, 16),
    });
    expect(res.status).toBe(303);
    id = /\/console\/incidents\/(\d+)/.exec(res.location ?? '')?.[1] ?? '';
    const row = db.$client.prepare('SELECT next_update_by FROM incidents WHERE id = ?').get(Number(id)) as { next_update_by: number };
    expect(row.next_update_by).toBe(promise.getTime());
    expect(deliveries()).toBe(2);
    firstUpdate = (db.$client.prepare('SELECT id FROM incident_updates WHERE incident_id = ?').get(Number(id)) as { id: number }).id;
  });

  it('an update with "Notify subscribers" unticked is published, and sent to no one', async () => {
    const res = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
      incidentId: id,
      status: 'identified',
      body: 'A slow index rebuild.',
      notifyShown: 'yes',
    });
    expect(res.status).toBe(303);
    expect(deliveries()).toBe(2);
    const update = db.$client
      .prepare(`SELECT notified, notification_id FROM incident_updates WHERE incident_id = ? AND status = 'identified'`)
      .get(Number(id));
    expect(update).toEqual({ notified: 0, notification_id: null });
    const page = await fetch(`${server.url}/incidents/${id}`);
    expect(await page.text()).toContain('A slow index rebuild.');
    const console_ = await responder.get(`/console/incidents/${id}`);
    expect(text(console_.html)).toContain('published without notifying subscribers');
  });
});

describe('corrections after publishing', () => {
  it('an update’s text, silently: kept as a revision, audited, "edited" on the public page', async () => {
    const res = await responder.post(`/console/incidents/${id}?_action=editIncidentUpdate`, {
      incidentId: id,
      updateId: String(firstUpdate),
      body: 'Search is slow for workspaces in the EU region; we are looking into it.',
    });
    expect(res.status).toBe(200);
    expect(text(res.html)).toContain('The update is corrected: subscribers were not notified');
    expect(deliveries()).toBe(2);
    expect(db.$client.prepare('SELECT field, "before", "after", notified, "by" FROM incident_revisions').all()).toEqual([
      {
        field: 'body',
        before: 'Search is slow; we are looking into it.',
        after: 'Search is slow for workspaces in the EU region; we are looking into it.',
        notified: 0,
        by: staffId,
      },
    ]);
    expect(audit('incidents.update_edited')).toEqual([
      expect.objectContaining({
        actor_id: staffId,
        target: `incident:${id}`,
        summary: expect.objectContaining({ updateId: firstUpdate, notified: false, deliveries: 0 }),
      }),
    ]);
    const page = text(await (await fetch(`${server.url}/incidents/${id}`)).text());
    expect(page).toMatch(/edited \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC Search is slow for workspaces in the EU region/);
    // the cached status pages follow the edit
    expect(await (await fetch(`${server.url}/status`)).text()).not.toContain('Search is slow; we are looking into it.');
  });

  it('refuses an empty or unchanged text, and a viewer', async () => {
    const empty = await responder.post(`/console/incidents/${id}?_action=editIncidentUpdate`, {
      incidentId: id,
      updateId: String(firstUpdate),
      body: ' ',
    });
    expect(empty.status).toBe(400);
    expect(text(empty.html)).toContain('An update cannot be empty');
    const same = await responder.post(`/console/incidents/${id}?_action=editIncidentUpdate`, {
      incidentId: id,
      updateId: String(firstUpdate),
      body: 'Search is slow for workspaces in the EU region; we are looking into it.',
    });
    expect(text(same.html)).toContain('The text is unchanged');
    const viewer = new ConsoleClient(server.url);
    viewer.setCookie('candor_session', signedInStaff(db, 'viewer').token);
    expect(
      (
        await viewer.post(`/console/incidents/${id}?_action=editIncidentUpdate`, {
          incidentId: id,
          updateId: String(firstUpdate),
          body: 'x',
        })
      ).status,
    ).toBe(403);
    expect(db.$client.prepare('SELECT count(*) AS n FROM incident_revisions').get()).toEqual({ n: 1 });
  });

  it('the title and severity, with a correction sent when asked', async () => {
    const res = await responder.post(`/console/incidents/${id}?_action=editIncident`, {
      incidentId: id,
      title: 'Slow search in the EU region',
      severity: 'major',
      notify: 'yes',
    });
    expect(res.status).toBe(200);
    expect(text(res.html)).toContain('the correction is queued for 2 recipients');
    expect(deliveries()).toBe(4);
    expect(audit('incidents.edited')).toEqual([
      expect.objectContaining({
        summary: {
          before: { title: 'Slow search', severity: 'minor' },
          after: { title: 'Slow search in the EU region', severity: 'major' },
          notified: true,
          deliveries: 2,
        },
      }),
    ]);
    await until(
      () => (db.$client.prepare(`SELECT count(*) AS n FROM deliveries WHERE status = 'sent'`).get() as { n: number }).n === 4,
      'the correction logged',
    );
    const logged = db.$client.prepare(`SELECT payload FROM logged_messages ORDER BY id DESC LIMIT 1`).get() as { payload: string };
    expect(JSON.parse(logged.payload).subject).toContain('Slow search in the EU region');
    const page = text(await (await fetch(`${server.url}/incidents/${id}`)).text());
    expect(page).toContain('Slow search in the EU region');
    expect(page).toMatch(/Identified · started .* · edited/);
  });
});

describe('what the review found', () => {
  it('a data breach cannot be declared or updated without notifying: its notices are numbered for the customers', async () => {
    const breach = {
      title: 'Exports exposed',
      kind: 'breach',
      severity: 'critical',
      status: 'identified',
      'component:web-app': 'operational',
      body: 'We found unauthorised access to one export.',
      breachAwareAt: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
      breachNature: 'not yet known',
      breachSubjects: 'not yet known',
      breachRecords: 'not yet known',
      breachConsequences: 'not yet known',
      breachMeasures: 'Credential revoked.',
      notifyShown: 'yes',
    };
    const silent = await responder.post('/console/incidents/new?_action=publishIncident', breach);
    expect(silent.status).toBe(400);
    expect(text(silent.html)).toContain('Every notice of a data breach goes to the customers concerned');
    expect(db.$client.prepare(`SELECT count(*) AS n FROM incidents WHERE kind = 'breach'`).get()).toEqual({ n: 0 });
    // the breach form has no switch to untick
    expect((await responder.get('/console/incidents/new?kind=breach')).html).not.toContain('name="notify"');
  });

  it('a preview with an unreadable promise, status or breach time is refused with a message, not a 500', async () => {
    const promise = await responder.post('/console/incidents/new?_action=previewIncident', { ...OUTAGE, nextUpdateBy: 'tomorrow-ish' });
    expect(promise.status).toBe(400);
    expect(text(promise.html)).toContain('The next update time is not a time');
    const status = await responder.post('/console/incidents/new?_action=previewIncident', { ...OUTAGE, status: 'sleeping' });
    expect(status.status).toBe(400);
    expect(text(status.html)).toContain('Choose a status');
    const aware = await responder.post('/console/incidents/new?_action=previewIncident', {
      ...OUTAGE,
      kind: 'breach',
      breachAwareAt: 'yesterday',
      breachNature: 'x',
    });
    expect(aware.status).toBe(400);
    expect(text(aware.html)).toContain('Write the times of the breach as YYYY-MM-DD HH:MM (UTC).');
  });

  it('a correction of a targeted incident that would reach no one is refused, and nothing is saved', async () => {
    const org = await keepOrganisation(db, 'Initech', { domains: ['initech.example'] });
    const declared = await responder.post('/console/incidents/new?_action=publishIncident', {
      title: 'Initech exports',
      kind: 'security',
      severity: 'major',
      status: 'investigating',
      'component:web-app': 'operational',
      body: 'We are looking into access to Initech exports.',
      [`organisation:${org}`]: 'yes',
      confirmNoRecipients: 'yes',
    });
    expect(declared.status, text(declared.html).slice(0, 300)).toBe(303);
    const targeted = /\/console\/incidents\/(\d+)/.exec(declared.location ?? '')?.[1] ?? '';
    const update = (db.$client.prepare('SELECT id FROM incident_updates WHERE incident_id = ?').get(Number(targeted)) as { id: number }).id;
    const revisions = () => (db.$client.prepare('SELECT count(*) AS n FROM incident_revisions').get() as { n: number }).n;
    const before = revisions();
    const res = await responder.post(`/console/incidents/${targeted}?_action=editIncidentUpdate`, {
      incidentId: targeted,
      updateId: String(update),
      body: 'We are looking into access to the exports of Initech workspaces.',
      notify: 'yes',
    });
    expect(res.status).toBe(400);
    expect(text(res.html)).toContain('This correction would reach no one');
    expect(revisions()).toBe(before);
    // saved without notifying, it is a correction on the pages only
    const quiet = await responder.post(`/console/incidents/${targeted}?_action=editIncidentUpdate`, {
      incidentId: targeted,
      updateId: String(update),
      body: 'We are looking into access to the exports of Initech workspaces.',
    });
    expect(text(quiet.html)).toContain('subscribers were not notified');
  });
});
