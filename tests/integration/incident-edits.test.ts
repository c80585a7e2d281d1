/**
 * Controlling what goes out: an update published without notifying anyone,
 * the next update's promise chosen by staff, and corrections after
 * publishing (an update's text, the incident's title and severity): each
 * kept as a revision, audited, marked "edited" on the public pages, and
 * sent to subscribers only when staff ask. On each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL under row-level
 * security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { pageText as text, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let responder: ConsoleClient;
  let staffId = 0;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `ops${i}@customer.example` });
    responder = new ConsoleClient(server.url);
    const signedIn = await signedInStaffOn(db, 'responder');
    staffId = signedIn.staffId;
    responder.setCookie('candor_session', signedIn.token);
  });
  afterAll(async () => {
    await running?.stop();
  });

  /** Deliveries, or those of one status. */
  const deliveries = (status?: 'sent') =>
    readRows(db, (q) => {
      const d = q.t.deliveries;
      return q.db.$count(d, and(eq(d.trustCenterId, q.trustCenter), status === undefined ? undefined : eq(d.status, status)));
    });
  const audit = (action: string) =>
    readRows(db, (q) => {
      const a = q.t.auditLog;
      return q.db
        .select({ actorId: a.actorId, target: a.target, summary: a.summary })
        .from(a)
        .where(and(eq(a.trustCenterId, q.trustCenter), eq(a.action, action)))
        .orderBy(asc(a.id));
    });
  const incidentCount = (kind?: 'breach') =>
    readRows(db, (q) => {
      const i = q.t.incidents;
      return q.db.$count(i, and(eq(i.trustCenterId, q.trustCenter), kind === undefined ? undefined : eq(i.kind, kind)));
    });
  const revisionCount = () =>
    readRows(db, (q) => q.db.$count(q.t.incidentRevisions, eq(q.t.incidentRevisions.trustCenterId, q.trustCenter)));
  /** The first update of an incident. */
  const firstUpdateOf = async (incidentId: string) => {
    const [row] = await readRows(db, (q) => {
      const u = q.t.incidentUpdates;
      return q.db
        .select({ id: u.id })
        .from(u)
        .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(incidentId))))
        .orderBy(asc(u.id))
        .limit(1);
    });
    if (!row) throw new Error(`incident ${incidentId} has no update`);
    return row.id;
  };
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
      expect(await incidentCount()).toBe(0);
    });

    it('declares with the promise chosen, and notifies', async () => {
      const promise = new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 20 * 60_000);
      const res = await responder.post('/console/incidents/new?_action=publishIncident', {
        ...OUTAGE,
        nextUpdateBy: promise.toISOString().slice(0, 16),
      });
      expect(res.status).toBe(303);
      id = /\/console\/incidents\/(\d+)/.exec(res.location ?? '')?.[1] ?? '';
      const [row] = await readRows(db, (q) =>
        q.db
          .select({ nextUpdateBy: q.t.incidents.nextUpdateBy })
          .from(q.t.incidents)
          .where(and(eq(q.t.incidents.trustCenterId, q.trustCenter), eq(q.t.incidents.id, Number(id)))),
      );
      expect(row?.nextUpdateBy?.getTime()).toBe(promise.getTime());
      expect(await deliveries()).toBe(2);
      firstUpdate = await firstUpdateOf(id);
    });

    it('an update with "Notify subscribers" unticked is published, and sent to no one', async () => {
      const res = await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        incidentId: id,
        status: 'identified',
        body: 'A slow index rebuild.',
        notifyShown: 'yes',
      });
      expect(res.status).toBe(303);
      expect(await deliveries()).toBe(2);
      const update = await readRows(db, (q) => {
        const u = q.t.incidentUpdates;
        return q.db
          .select({ notified: u.notified, notificationId: u.notificationId })
          .from(u)
          .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, Number(id)), eq(u.status, 'identified')));
      });
      expect(update).toEqual([{ notified: false, notificationId: null }]);
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
      expect(await deliveries()).toBe(2);
      const revisions = await readRows(db, (q) => {
        const r = q.t.incidentRevisions;
        return q.db
          .select({ field: r.field, before: r.before, after: r.after, notified: r.notified, by: r.by })
          .from(r)
          .where(eq(r.trustCenterId, q.trustCenter));
      });
      expect(revisions).toEqual([
        {
          field: 'body',
          before: 'Search is slow; we are looking into it.',
          after: 'Search is slow for workspaces in the EU region; we are looking into it.',
          notified: false,
          by: staffId,
        },
      ]);
      expect(await audit('incidents.update_edited')).toEqual([
        expect.objectContaining({
          actorId: staffId,
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
      viewer.setCookie('candor_session', (await signedInStaffOn(db, 'viewer')).token);
      expect(
        (
          await viewer.post(`/console/incidents/${id}?_action=editIncidentUpdate`, {
            incidentId: id,
            updateId: String(firstUpdate),
            body: 'x',
          })
        ).status,
      ).toBe(403);
      expect(await revisionCount()).toBe(1);
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
      expect(await deliveries()).toBe(4);
      expect(await audit('incidents.edited')).toEqual([
        expect.objectContaining({
          summary: {
            before: { title: 'Slow search', severity: 'minor' },
            after: { title: 'Slow search in the EU region', severity: 'major' },
            notified: true,
            deliveries: 2,
          },
        }),
      ]);
      await until(async () => (await deliveries('sent')) === 4, 'the correction logged');
      // what the log transport kept of the correction (the latest notification): each message carries the new title. Chosen by
      // notification, not as the latest message: the dispatcher polls, and may send the declaration in the same round as the correction
      const logged = await readRows(db, async (q) => {
        const { notifications: n, deliveries: d, loggedMessages: m } = q.t;
        const [correction] = await q.db.select({ id: n.id }).from(n).where(eq(n.trustCenterId, q.trustCenter)).orderBy(desc(n.id)).limit(1);
        if (!correction) return [];
        return q.db
          .select({ payload: m.payload })
          .from(m)
          .innerJoin(d, eq(d.id, m.deliveryId))
          .where(and(eq(m.trustCenterId, q.trustCenter), eq(d.notificationId, correction.id)));
      });
      expect(logged).toHaveLength(2);
      for (const message of logged) expect(message.payload.subject).toContain('Slow search in the EU region');
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
      expect(await incidentCount('breach')).toBe(0);
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
      const org = await keepOrganisationOn(db, 'Initech', { domains: ['initech.example'] });
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
      const update = await firstUpdateOf(targeted);
      const before = await revisionCount();
      const res = await responder.post(`/console/incidents/${targeted}?_action=editIncidentUpdate`, {
        incidentId: targeted,
        updateId: String(update),
        body: 'We are looking into access to the exports of Initech workspaces.',
        notify: 'yes',
      });
      expect(res.status).toBe(400);
      expect(text(res.html)).toContain('This correction would reach no one');
      expect(await revisionCount()).toBe(before);
      // saved without notifying, it is a correction on the pages only
      const quiet = await responder.post(`/console/incidents/${targeted}?_action=editIncidentUpdate`, {
        incidentId: targeted,
        updateId: String(update),
        body: 'We are looking into access to the exports of Initech workspaces.',
      });
      expect(text(quiet.html)).toContain('subscribers were not notified');
    });
  });
});
