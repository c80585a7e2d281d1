/**
 * Issue 14, "Figures that must be true": a responder declares an incident
 * that degrades the web app and takes the API down, restores the web app
 * while the incident stays open, and resolves it. Every state change is
 * recorded with its time, and /status and status.json compute the day's
 * state, its detail and the uptime from those rows: the web app shows
 * "Degraded performance" and keeps 100 % uptime, the API loses exactly the
 * time it was down. Meanwhile the banner names the worst state, open
 * incidents show their latest update, and "Past 90 days" lists the open
 * incident; the emails name the worst state declared, not the severity.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { pageText as text } from '../helpers/page.ts';
import type { RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

interface StateRow {
  component_id: string;
  status: string;
  since: number;
  incident_id: number | null;
  update_id: number | null;
  source: string;
}
interface JsonInterval {
  status: string;
  from: string;
  to: string | null;
  seconds: number;
  incidentId: number | null;
}
interface JsonDay {
  date: string;
  state: string;
  uptimePercent: number | null;
  intervals: JsonInterval[];
}
interface StatusJson {
  generatedAt: string;
  overall: string;
  worst: string;
  components: { id: string; status: string; history: { since: string | null; uptimePercent: number | null; days: JsonDay[] } }[];
  openIncidents: { id: number; latestUpdate: { status: string; body: string } | null }[];
  recentIncidents: { id: number; status: string }[];
}

/** The element of this tag that carries this attribute, through its matching closing tag. */
function element(html: string, tag: string, attribute: string): string {
  const at = html.indexOf(attribute);
  if (at < 0) throw new Error(`no ${attribute} in the page`);
  const open = html.lastIndexOf(`<${tag}`, at);
  const pattern = new RegExp(`<${tag}[\\s>]|</${tag}>`, 'g');
  pattern.lastIndex = open + 1;
  let depth = 1;
  for (let m = pattern.exec(html); m; m = pattern.exec(html)) {
    depth += m[0].startsWith('</') ? -1 : 1;
    if (depth === 0) return html.slice(open, m.index + m[0].length);
  }
  throw new Error(`no end of the <${tag}> with ${attribute}`);
}

/** 100 × (1 − weighted downtime / measured time), rounded down to hundredths: Statuspage's weights, major 100 %, partial 30 %. */
function expectedUptime(measuredMs: number, majorMs: number, partialMs = 0): number {
  const tenths = BigInt(measuredMs) * 10n;
  return Number(((tenths - BigInt(majorMs) * 10n - BigInt(partialMs) * 3n) * 10_000n) / tenths) / 100;
}
const pageText = (html: string) => text(html).trim();
const percent = (p: number) => `${Number.isInteger(p) ? p : p.toFixed(2)}%`;

const DAY = 86_400_000;

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let responder: ConsoleClient;

  beforeAll(async () => {
    running = await engine.start();
    server = running.server;
    db = running.database;
    responder = new ConsoleClient(server.url);
    responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
  });
  afterAll(async () => {
    await running?.stop();
  });

  /** Every recorded state change, oldest first. */
  const rows = (): Promise<StateRow[]> =>
    readRows(db, async (q) => {
      const c = q.t.componentStates;
      const found = await q.db
        .select({
          componentId: c.componentId,
          status: c.status,
          since: c.since,
          incidentId: c.incidentId,
          updateId: c.updateId,
          source: c.source,
        })
        .from(c)
        .where(eq(c.trustCenterId, q.trustCenter))
        .orderBy(asc(c.since), asc(c.id));
      return found.map((r) => ({
        component_id: r.componentId,
        status: r.status,
        since: r.since.getTime(),
        incident_id: r.incidentId,
        update_id: r.updateId,
        source: r.source,
      }));
    });
  /** The email subjects (and SMS bodies) of an incident's notifications, oldest first. */
  const contentOf = (incident: number) =>
    readRows(db, async (q) => {
      const n = q.t.notifications;
      const found = await q.db
        .select({ content: n.content })
        .from(n)
        .where(and(eq(n.trustCenterId, q.trustCenter), eq(n.threadKey, `incident:${incident}`)))
        .orderBy(asc(n.id));
      return found.map((r) => r.content as { email: { subject: string }; sms: { body: string } });
    });
  const statusJson = async () => (await (await fetch(`${server.url}/api/v1/status.json`)).json()) as StatusJson;
  const statusPage = async () => (await fetch(`${server.url}/status`)).text();
  let incidentId = 0;

  describe('service history from recorded state changes', () => {
    it('begins each service listed on the status page with an operational row', async () => {
      const listed = (await rows()).filter((r) => r.source === 'listed');
      expect(listed.map((r) => r.component_id).sort()).toEqual(
        [
          'ai-assistant',
          'ai-indexing',
          'community',
          'file-uploads',
          'help-center',
          'integrations',
          'notifications',
          'public-api',
          'search',
          'sso-login',
          'web-app',
        ].sort(),
      );
      expect(listed.every((r) => r.status === 'operational' && r.incident_id === null)).toBe(true);
    });

    it('declare: the web app degraded, the API down; the banner names the worst state and the service in it', async () => {
      const declared = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'API outage',
        kind: 'outage',
        severity: 'critical',
        status: 'investigating',
        'component:web-app': 'degraded',
        'component:public-api': 'major_outage',
        body: 'The API is down and the web app is slow. We are investigating.',
      });
      expect(declared.status).toBe(303);
      incidentId = Number(/\/console\/incidents\/(\d+)/.exec(declared.location ?? '')?.[1]);
      const html = await statusPage();
      const banner = pageText(element(html, 'p', 'class="status-banner'));
      expect(banner).toContain('Major outage');
      expect(banner).toContain('Public API');
      expect(banner).not.toMatch(/Some services are (down|degraded)/);
      expect(element(html, 'p', 'class="status-banner').includes('state-major_outage')).toBe(true);
      expect((await statusJson()).worst).toBe('major_outage');
    });

    it('"Past 90 days" lists the incident while it is open', async () => {
      const html = await statusPage();
      expect(pageText(html.slice(html.indexOf('Past 90 days')))).toContain('API outage');
      expect(pageText(element(html, 'div', 'id="past-incidents"'))).toContain('API outage');
      const json = await statusJson();
      expect(json.recentIncidents.map((i) => i.id)).toContain(incidentId);
    });

    it('an update restores the web app; the open incident shows that update, not only its title', async () => {
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId: String(incidentId),
        status: 'identified',
        'component:web-app': 'operational',
        'component:public-api': 'major_outage',
        body: 'The web app is fast again. The API gateway is being rolled back.',
      });
      expect(res.status).toBe(303);
      const html = await statusPage();
      const open = pageText(element(html, 'ul', 'id="open-incidents"'));
      expect(open).toContain('API outage');
      expect(open).toContain('Identified');
      expect(open).toContain('The web app is fast again. The API gateway is being rolled back.');
      expect(open).not.toContain('We are investigating.');
      const json = await statusJson();
      expect(json.openIncidents.find((i) => i.id === incidentId)?.latestUpdate).toMatchObject({
        status: 'identified',
        body: 'The web app is fast again. The API gateway is being rolled back.',
      });
      expect(json.components.find((c) => c.id === 'web-app')?.status).toBe('operational');
    });

    it('resolving records the API operational; every change is one row with its time, incident and update', async () => {
      const res = await responder.post(`/console/incidents/${incidentId}?_action=publishIncident`, {
        incidentId: String(incidentId),
        status: 'resolved',
        body: 'Resolved: the gateway is rolled back.',
      });
      expect(res.status).toBe(303);
      const updates = await readRows(db, async (q) => {
        const u = q.t.incidentUpdates;
        const found = await q.db
          .select({ id: u.id, publishedAt: u.publishedAt })
          .from(u)
          .where(and(eq(u.trustCenterId, q.trustCenter), eq(u.incidentId, incidentId)))
          .orderBy(asc(u.id));
        return found.map((r) => ({ id: r.id, published_at: r.publishedAt.getTime() }));
      });
      expect(updates).toHaveLength(3);
      const [declared, restored, resolved] = updates as [(typeof updates)[0], (typeof updates)[0], (typeof updates)[0]];
      const history = (await rows()).filter((r) => r.incident_id === incidentId);
      expect(history).toEqual([
        {
          component_id: 'public-api',
          status: 'major_outage',
          since: declared.published_at,
          incident_id: incidentId,
          update_id: declared.id,
          source: 'update',
        },
        {
          component_id: 'web-app',
          status: 'degraded',
          since: declared.published_at,
          incident_id: incidentId,
          update_id: declared.id,
          source: 'update',
        },
        {
          component_id: 'web-app',
          status: 'operational',
          since: restored.published_at,
          incident_id: incidentId,
          update_id: restored.id,
          source: 'update',
        },
        {
          component_id: 'public-api',
          status: 'operational',
          since: resolved.published_at,
          incident_id: incidentId,
          update_id: resolved.id,
          source: 'update',
        },
      ]);
    });

    it('status.json: the day and the uptime of each service follow the recorded rows', async () => {
      const json = await statusJson();
      const now = Date.parse(json.generatedAt);
      const today = new Date(Math.floor(now / DAY) * DAY).toISOString().slice(0, 10);
      const history = await rows();
      const listedAt = (id: string) => history.find((r) => r.component_id === id && r.source === 'listed')?.since ?? Number.NaN;
      const at = (id: string, status: string) =>
        history.find((r) => r.component_id === id && r.status === status && r.incident_id === incidentId)?.since ?? Number.NaN;

      const web = json.components.find((c) => c.id === 'web-app');
      const webDay = web?.history.days.at(-1);
      expect(webDay).toMatchObject({ date: today, state: 'degraded', uptimePercent: 100 });
      expect(webDay?.intervals).toEqual([
        {
          status: 'degraded',
          from: new Date(at('web-app', 'degraded')).toISOString(),
          to: new Date(at('web-app', 'operational')).toISOString(),
          seconds: Math.round((at('web-app', 'operational') - at('web-app', 'degraded')) / 1000),
          incidentId,
        },
      ]);
      expect(web?.history.uptimePercent).toBe(100);

      const api = json.components.find((c) => c.id === 'public-api');
      const down = at('public-api', 'operational') - at('public-api', 'major_outage');
      // the history of a new installation begins when it was listed: the time before has no data
      const measured = now - Math.max(listedAt('public-api'), Math.floor(now / DAY) * DAY);
      expect(api?.history.days.at(-1)).toMatchObject({ date: today, state: 'major_outage', uptimePercent: expectedUptime(measured, down) });
      expect(api?.history.days.at(-1)?.intervals).toEqual([
        expect.objectContaining({ status: 'major_outage', incidentId, to: new Date(at('public-api', 'operational')).toISOString() }),
      ]);
      expect(api?.history.uptimePercent).toBe(expectedUptime(now - listedAt('public-api'), down));
      expect(api?.history.since).toBe(new Date(listedAt('public-api')).toISOString());
      // days before the history began have no data; they are not 100 %
      expect(api?.history.days).toHaveLength(90);
      const before = api?.history.days.filter((d) => Date.parse(`${d.date}T00:00:00Z`) + DAY <= listedAt('public-api')) ?? [];
      expect(before.length).toBeGreaterThanOrEqual(89);
      expect(before.every((d) => d.state === 'no_data' && d.uptimePercent === null)).toBe(true);
      // the others were untouched
      expect(json.components.find((c) => c.id === 'search')?.history.days.at(-1)).toMatchObject({
        state: 'operational',
        uptimePercent: 100,
        intervals: [],
      });
      expect(json.recentIncidents.find((i) => i.id === incidentId)?.status).toBe('resolved');
    });

    it('/status: the web app, only degraded and restored mid-incident, never reads "Partial outage" and keeps 100 % uptime', async () => {
      // what the page says between the web app and the next service, whatever the markup
      const html = await statusPage();
      const web = pageText(html.slice(html.indexOf('data-component="web-app"'), html.indexOf('data-component="help-center"')));
      expect(web).not.toContain('Partial outage');
      expect(web).toContain('Degraded performance');
      expect(web).toContain('100% uptime');
      expect(web).not.toMatch(/99\.\d\d% uptime/);
    });

    it('/status: the bars, the day details and the uptime figures are those of the rows', async () => {
      const html = await statusPage();
      const now = Date.parse(/<time class="as-of" datetime="([^"]+)"/.exec(html)?.[1] ?? '');
      expect(now).toBeGreaterThan(0);
      const today = new Date(now).toISOString().slice(0, 10);
      const history = await rows();
      const at = (id: string, status: string) =>
        history.find((r) => r.component_id === id && r.status === status && r.incident_id === incidentId)?.since ?? Number.NaN;
      const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);

      const web = element(html, 'li', 'data-component="web-app"');
      expect(web).toMatch(new RegExp(`data-date="${today}" data-state="degraded"`));
      const webTip = pageText(element(web, 'label', `data-date="${today}"`));
      expect(webTip).toContain(`Degraded performance ${hhmm(at('web-app', 'degraded'))}–${hhmm(at('web-app', 'operational'))} UTC`);
      expect(webTip).toContain('API outage');
      expect(webTip).not.toContain('Partial outage');
      expect(element(web, 'label', `data-date="${today}"`)).toContain(`href="/incidents/${incidentId}"`);
      expect(pageText(element(web, 'span', 'class="uptime" data-days="90"'))).toBe('100% uptime');
      // the current state column says what the service is in now
      expect(pageText(element(web, 'span', 'class="component-state'))).toBe('Operational');

      const api = element(html, 'li', 'data-component="public-api"');
      expect(api).toMatch(new RegExp(`data-date="${today}" data-state="major_outage"`));
      const apiTip = pageText(element(api, 'label', `data-date="${today}"`));
      expect(apiTip).toContain(`Major outage ${hhmm(at('public-api', 'major_outage'))}–${hhmm(at('public-api', 'operational'))} UTC`);
      const listed = history.find((r) => r.component_id === 'public-api' && r.source === 'listed')?.since ?? Number.NaN;
      const uptime = expectedUptime(now - listed, at('public-api', 'operational') - at('public-api', 'major_outage'));
      expect(pageText(element(api, 'span', 'class="uptime" data-days="90"'))).toBe(`${percent(uptime)} uptime`);
      // the day before the history began
      const yesterday = new Date(now - DAY).toISOString().slice(0, 10);
      expect(api).toMatch(new RegExp(`data-date="${yesterday}" data-state="no_data"`));
      expect(pageText(element(api, 'label', `data-date="${yesterday}"`))).toContain('No data');
      // after resolution, past 90 days still list it, and the banner is calm again
      expect(pageText(element(html, 'div', 'id="past-incidents"'))).toContain('API outage');
      expect(pageText(element(html, 'p', 'class="status-banner'))).toBe('All services are operational');
    });

    it("the incident's page says what it did to each service, and for how long", async () => {
      const page = await (await fetch(`${server.url}/incidents/${incidentId}`)).text();
      const history = await rows();
      const at = (id: string, status: string) =>
        new Date(history.find((r) => r.component_id === id && r.status === status && r.incident_id === incidentId)?.since ?? Number.NaN)
          .toISOString()
          .replace('T', ' ')
          .slice(0, 16);
      const web = pageText(element(page, 'li', 'data-component="web-app"'));
      // the end of a stretch gives its time alone on the day it began
      const until = (from: string, to: string) => (from.slice(0, 10) === to.slice(0, 10) ? to.slice(11) : to);
      expect(web).toContain(
        `Degraded performance ${at('web-app', 'degraded')} UTC to ${until(at('web-app', 'degraded'), at('web-app', 'operational'))} UTC`,
      );
      expect(web).not.toContain('Partial outage');
      const api = pageText(element(page, 'li', 'data-component="public-api"'));
      expect(api).toContain(
        `Major outage ${at('public-api', 'major_outage')} UTC to ${until(at('public-api', 'major_outage'), at('public-api', 'operational'))} UTC`,
      );
    });

    it('the emails name the worst state declared, and the resolution the worst the incident reached', async () => {
      const subjects = (await contentOf(incidentId)).map((content) => content.email.subject);
      expect(subjects).toEqual([
        '[Major outage] API outage — Investigating',
        '[Major outage] API outage — Identified',
        '[Major outage] API outage — Resolved',
      ]);
    });

    it('a critical incident that only slows a service down says "Degraded performance" everywhere', async () => {
      const declared = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Slow search',
        kind: 'outage',
        severity: 'critical',
        status: 'investigating',
        'component:search': 'degraded',
        body: 'Search is slow.',
      });
      const id = Number(/\/console\/incidents\/(\d+)/.exec(declared.location ?? '')?.[1]);
      await responder.post(`/console/incidents/${id}?_action=publishIncident`, {
        incidentId: String(id),
        status: 'resolved',
        body: 'Search is fast again.',
      });
      const parsed = await contentOf(id);
      expect(parsed.map((p) => p.email.subject)).toEqual([
        '[Degraded performance] Slow search — Investigating',
        '[Degraded performance] Slow search — Resolved',
      ]);
      expect(parsed[0]?.sms.body).toMatch(/ - Degraded performance: Slow search \(Investigating\)/);
      const json = await statusJson();
      const day = json.components.find((c) => c.id === 'search')?.history.days.at(-1);
      expect(day?.state).toBe('degraded');
      expect(day?.uptimePercent).toBe(100);
    });
  });
});
