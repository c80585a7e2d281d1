/**
 * Issue 14 in Chromium: on a status page with months of history, a responder
 * declares an incident that degrades the web application and takes AI
 * indexing (a service added two minutes ago) down, restores the web app
 * while the incident stays open, and resolves it. The bars, each day's
 * detail (by pointer and by keyboard, without script) and the uptime
 * figures are checked against the rows of component_states; the page is
 * checked with axe and photographed at desktop and phone width, where it
 * shows 30 days instead of 90.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set; the
 * history is written through the query builder before the server starts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { asc, eq } from 'drizzle-orm';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, openServiceGroups, staffPage, watchProblems } from '../helpers/browser.ts';
import { readRows, type ServerOnEngine, screenshotPath, serverEnginesUnderTest, writeRows } from '../helpers/engine-server.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const DAY = 86_400_000;
const SERVICES = [
  'web-app',
  'help-center',
  'community',
  'public-api',
  'sso-login',
  'file-uploads',
  'search',
  'ai-assistant',
  'ai-indexing',
  'notifications',
  'integrations',
];
/** Past incidents written straight into the history, as earlier updates would have: days ago, hours, service, state. */
const PAST = [
  { title: 'Slow search results', daysAgo: 12, hours: 3, service: 'search', state: 'degraded' },
  { title: 'Uploads failing for some workspaces', daysAgo: 40, hours: 2, service: 'file-uploads', state: 'partial_outage' },
  { title: 'Sign-in unavailable', daysAgo: 63, hours: 1, service: 'sso-login', state: 'major_outage' },
] as const;

let browser: Browser;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

/** Months of history, as the server would find it at start: every service listed 200 days ago but AI indexing, added two minutes ago. */
async function seedHistory(database: Database, seededAt: number): Promise<void> {
  await writeRows(database, async (q) => {
    const listed = SERVICES.map((componentId) => ({
      componentId,
      status: 'operational' as const,
      since: new Date(componentId === 'ai-indexing' ? seededAt - 120_000 : seededAt - 200 * DAY),
      incidentId: null,
      source: 'listed' as const,
      trustCenterId: q.trustCenter,
    }));
    await q.db.insert(q.t.componentStates).values(listed);
    for (const p of PAST) {
      // noon UTC, so the incident stays within its day
      const start = Math.floor((seededAt - p.daysAgo * DAY) / DAY) * DAY + 12 * 3_600_000;
      const end = start + p.hours * 3_600_000;
      const [incident] = await q.db
        .insert(q.t.incidents)
        .values({
          kind: 'outage',
          severity: 'major',
          title: p.title,
          status: 'resolved',
          public: true,
          startedAt: new Date(start),
          resolvedAt: new Date(end),
          createdAt: new Date(start),
          trustCenterId: q.trustCenter,
        })
        .returning({ id: q.t.incidents.id });
      if (!incident) throw new Error(`no incident ${p.title}`);
      const incidentId = incident.id;
      const trustCenterId = q.trustCenter;
      await q.db.insert(q.t.incidentComponents).values({ incidentId, componentId: p.service, status: 'operational', trustCenterId });
      await q.db
        .insert(q.t.incidentUpdates)
        .values({ incidentId, status: 'resolved', body: 'Resolved.', publishedAt: new Date(end), trustCenterId });
      await q.db.insert(q.t.componentStates).values([
        { componentId: p.service, status: p.state, since: new Date(start), incidentId, source: 'update', trustCenterId },
        { componentId: p.service, status: 'operational', since: new Date(end), incidentId, source: 'update', trustCenterId },
      ]);
    }
  });
}

interface Row {
  componentId: string;
  status: string;
  /** ms since the epoch */
  since: number;
  incidentId: number | null;
  source: string;
}
/** Every row of component_states, oldest first, as the server wrote them. */
const rowsOf = (database: Database): Promise<Row[]> =>
  readRows(database, async (q) => {
    const s = q.t.componentStates;
    const found = await q.db
      .select({ componentId: s.componentId, status: s.status, since: s.since, incidentId: s.incidentId, source: s.source })
      .from(s)
      .where(eq(s.trustCenterId, q.trustCenter))
      .orderBy(asc(s.since), asc(s.id));
    return found.map((r) => ({ ...r, since: r.since.getTime() }));
  });
const iso = (t: number) => new Date(t).toISOString();
const hhmm = (t: number) => iso(t).slice(11, 16);
const dateOf = (t: number) => iso(t).slice(0, 10);
/** Statuspage's weights, rounded down to hundredths: major outage 100 %, partial outage 30 %. */
const uptime = (measuredMs: number, majorMs: number) => {
  const tenths = BigInt(measuredMs) * 10n;
  return Number(((tenths - BigInt(majorMs) * 10n) * 10_000n) / tenths) / 100;
};
const percent = (p: number) => `${Number.isInteger(p) ? p : p.toFixed(2)}%`;

/** The text of an element, its white space collapsed. */
const text = async (locator: Locator) => ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
/** A day's detail is always in the page (it names the day for screen readers); shown, it is a box, not a clipped pixel. */
const shown = (tip: Locator) => tip.evaluate((el) => el.getBoundingClientRect().width > 50 && el.getBoundingClientRect().height > 30);
const day = (page: Page, service: string, date: string) => page.locator(`[data-component="${service}"] .days > label[data-date="${date}"]`);

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;
  let seededAt = 0;
  let incidentId = 0;

  beforeAll(async () => {
    seededAt = Date.now();
    running = await engine.start({ beforeStart: (database) => seedHistory(database, seededAt) });
    server = running.server;
    db = running.database;
  });
  afterAll(async () => {
    await running?.stop();
  });

  describe('the status page follows the recorded history, in Chromium', () => {
    it('a responder degrades one service and takes another down, restores the first, resolves', async () => {
      const { context, page, problems } = await staffPage(browser, server.url, (await signedInStaffOn(db, 'responder')).token);
      await page.goto(`${server.url}/console/incidents/new?kind=outage`);
      await page.getByLabel('Title').fill('Indexing stopped');
      await page.getByLabel('Severity', { exact: true }).selectOption('major');
      await page.getByLabel('Web application').selectOption('degraded');
      await page.getByLabel('AI indexing').selectOption('major_outage');
      await page.getByLabel(/^Update/).fill('AI indexing has stopped and the web application is slow. We are investigating.');
      await page.getByRole('button', { name: 'Publish', exact: true }).click();
      await page.waitForURL(/\/console\/incidents\/\d+\?published=/);
      incidentId = Number(/\/console\/incidents\/(\d+)/.exec(page.url())?.[1]);
      // time passes between the steps, so each state lasts a measurable while
      await page.waitForTimeout(1500);
      await page.getByLabel('Status', { exact: true }).selectOption('identified');
      await page.getByLabel('Web application').selectOption('operational');
      await page.getByLabel(/^Update/).fill('The web application is fast again. Indexing restarts after a queue migration.');
      await page.getByRole('button', { name: 'Publish update' }).click();
      await page.waitForURL(/published=/);
      // meanwhile, readers see the worst state named, and the latest update of the open incident
      for (const [name, width] of [
        ['desktop', 1280],
        ['phone', 390],
      ] as const) {
        const reader = await browser.newPage({ viewport: { width, height: 900 } });
        await reader.goto(`${server.url}/status`);
        expect(await text(reader.locator('.status-banner'))).toBe('Major outage: AI indexing');
        const open = await text(reader.locator('#open-incidents'));
        expect(open).toContain('Identified');
        expect(open).toContain('The web application is fast again. Indexing restarts after a queue migration.');
        expect(await text(reader.locator('#past-incidents'))).toContain('Indexing stopped Identified · Major outage');
        const violations = await axeViolations(reader);
        expect(violations, formatViolations(`status page with an open incident (${name})`, violations)).toEqual([]);
        await reader.screenshot({ path: screenshotPath(engine, `status-open-incident-${name}`), fullPage: false });
        await reader.close();
      }
      await page.waitForTimeout(1500);
      await page.getByLabel('Status', { exact: true }).selectOption('resolved');
      await page.getByLabel(/^Update/).fill('Indexing has caught up. Resolved.');
      await page.getByRole('button', { name: 'Publish update' }).click();
      await page.waitForURL(/published=/);
      await expect.poll(() => page.locator('#incident-status').textContent()).toBe('Resolved');
      expect(problems).toEqual([]);
      await context.close();

      const history = (await rowsOf(db)).filter((r) => r.incidentId === incidentId);
      expect(history.map((r) => [r.componentId, r.status, r.source])).toEqual([
        ['ai-indexing', 'major_outage', 'update'],
        ['web-app', 'degraded', 'update'],
        ['web-app', 'operational', 'update'],
        ['ai-indexing', 'operational', 'update'],
      ]);
    }, 120_000);

    it('desktop: bars, day details by pointer and keyboard, and uptime are those of the rows; no script, no axe violation', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems = await watchProblems(page);
      await page.goto(`${server.url}/status`);
      expect(await page.locator('script').count()).toBe(0);
      await openServiceGroups(page);
      const now = Date.parse((await page.locator('time.as-of').getAttribute('datetime')) ?? '');
      const today = dateOf(now);
      const history = await rowsOf(db);
      const at = (service: string, status: string) =>
        history.find((r) => r.componentId === service && r.status === status && r.incidentId === incidentId)?.since ?? Number.NaN;

      // the bars: each day's state as recorded
      const states = async (service: string) =>
        page
          .locator(`[data-component="${service}"] .days > label`)
          .evaluateAll((labels) => labels.map((l) => l.getAttribute('data-state')));
      const web = await states('web-app');
      expect(web).toHaveLength(90);
      expect(web.at(-1)).toBe('degraded');
      expect(web.slice(0, -1).every((s) => s === 'operational')).toBe(true);
      const indexing = await states('ai-indexing');
      expect(indexing.at(-1)).toBe('major_outage');
      const listedToday = dateOf(history.find((r) => r.componentId === 'ai-indexing' && r.source === 'listed')?.since ?? 0) === today;
      if (listedToday) expect(indexing.slice(0, -1).every((s) => s === 'no_data')).toBe(true);
      for (const p of PAST) {
        const date = dateOf(seededAt - p.daysAgo * DAY);
        expect(await day(page, p.service, date).getAttribute('data-state')).toBe(p.state);
      }

      // a day's detail by pointer: what, when, how long, which incident
      const webToday = day(page, 'web-app', today);
      await webToday.hover();
      const tip = webToday.locator('.tip');
      await expect.poll(() => shown(tip)).toBe(true);
      const tipText = await text(tip);
      expect(tipText).toContain(`Degraded performance ${hhmm(at('web-app', 'degraded'))}–${hhmm(at('web-app', 'operational'))} UTC`);
      expect(tipText).toContain('100% uptime');
      expect(tipText).not.toContain('Partial outage');
      expect(await tip.getByRole('link', { name: 'Indexing stopped' }).getAttribute('href')).toBe(`/incidents/${incidentId}`);
      await page.screenshot({ path: screenshotPath(engine, 'status-day-detail'), fullPage: false, clip: await around(page, 'web-app') });

      // by keyboard: the days of a service are one tab stop, the arrow keys move between them
      await page.mouse.move(0, 0);
      await page.locator('#services-title').click();
      // first the group's summary (it folds the group), then its services' days
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('SUMMARY');
      await page.keyboard.press('Tab');
      const focused = () => page.evaluate(() => document.activeElement?.closest('label')?.getAttribute('data-date') ?? null);
      const focusedService = () =>
        page.evaluate(() => document.activeElement?.closest('[data-component]')?.getAttribute('data-component') ?? null);
      expect(await focusedService()).toBe('web-app');
      await page.keyboard.press('ArrowLeft');
      expect(await focused()).toBe(today);
      await expect.poll(() => shown(tip)).toBe(true);
      const outline = await webToday.evaluate((l) => getComputedStyle(l).outlineStyle);
      expect(outline).toBe('solid');
      await page.keyboard.press('ArrowLeft');
      expect(await focused()).toBe(dateOf(now - DAY));
      await expect.poll(() => shown(tip)).toBe(false);
      const yesterday = day(page, 'web-app', dateOf(now - DAY)).locator('.tip');
      await expect.poll(() => shown(yesterday)).toBe(true);
      expect(await text(yesterday)).toMatch(/No incidents$/);
      // each day is named for screen readers by its detail
      const longDate = new Date(now).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
      const named = page.locator('[data-component="web-app"]').getByRole('radio', {
        name: new RegExp(`^${longDate} Degraded performance for .* uptime Degraded performance .*: Indexing stopped$`),
      });
      expect(await named.count()).toBe(1);
      // then the incidents its days link to, each showing its day; then the next service
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Indexing stopped');
      expect(await focused()).toBe(today);
      await expect.poll(() => shown(tip)).toBe(true);
      await page.keyboard.press('Tab');
      expect(await focusedService()).toBe('help-center');

      // the uptime figures
      const listed = history.find((r) => r.componentId === 'ai-indexing' && r.source === 'listed')?.since ?? Number.NaN;
      const expected = uptime(now - listed, at('ai-indexing', 'operational') - at('ai-indexing', 'major_outage'));
      expect(expected).toBeLessThan(100);
      const uptimeText = (service: string) => text(page.locator(`[data-component="${service}"] .uptime[data-days="90"]`));
      expect(await uptimeText('ai-indexing')).toBe(`${percent(expected)} uptime`);
      expect(await uptimeText('web-app')).toBe('100% uptime');
      // Sign-in: one hour of major outage 63 days ago, over the 89 days and the hours of today measured
      const windowStart = Math.floor(now / DAY) * DAY - 89 * DAY;
      expect(await uptimeText('sso-login')).toBe(`${percent(uptime(now - windowStart, 3_600_000))} uptime`);
      // the incident's own detail on the day of AI indexing
      const indexingTip = await text(day(page, 'ai-indexing', today).locator('.tip'));
      expect(indexingTip).toContain(
        `Major outage ${hhmm(at('ai-indexing', 'major_outage'))}–${hhmm(at('ai-indexing', 'operational'))} UTC`,
      );

      // the state column lines up across groups
      const rights = await page
        .locator('.component-state')
        .evaluateAll((spans) => spans.map((s) => Math.round(s.getBoundingClientRect().right)));
      expect(new Set(rights).size).toBe(1);

      // past days list the incident with the worst state it declared
      expect(await text(page.locator('#past-incidents'))).toContain('Indexing stopped Resolved · Major outage');

      const violations = await axeViolations(page);
      expect(violations, formatViolations('status page (desktop)', violations)).toEqual([]);
      await page.locator('h1').click();
      await page.screenshot({ path: screenshotPath(engine, 'status-desktop'), fullPage: true });
      expect(problems).toEqual([]);
      await page.close();
    }, 60_000);

    it('phone: 30 days, wide enough to point at, and their uptime; the detail by keyboard; no axe violation', async () => {
      const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
      await page.goto(`${server.url}/status`);
      await openServiceGroups(page);
      const now = Date.parse((await page.locator('time.as-of').getAttribute('datetime')) ?? '');
      const visible = await page
        .locator('[data-component="search"] .days > label')
        .evaluateAll((labels) => labels.filter((l) => l.getBoundingClientRect().width > 0).map((l) => l.getAttribute('data-date')));
      expect(visible).toHaveLength(30);
      expect(visible.at(-1)).toBe(dateOf(now));
      expect(visible[0]).toBe(dateOf(now - 29 * DAY));
      const width = await day(page, 'search', dateOf(now)).evaluate((l) => l.getBoundingClientRect().width);
      expect(width).toBeGreaterThanOrEqual(7);
      // the degraded day 12 days ago is among them; its detail by tapping
      const slow = day(page, 'search', dateOf(seededAt - 12 * DAY));
      await slow.tap();
      await expect.poll(() => shown(slow.locator('.tip'))).toBe(true);
      expect(await text(slow.locator('.tip'))).toContain('Degraded performance for 3 h');
      // the uptime shown is that of the 30 days; the 90-day figure is hidden
      expect(await page.locator('[data-component="search"] .uptime[data-days="30"]').isVisible()).toBe(true);
      expect(await page.locator('[data-component="search"] .uptime[data-days="90"]').isVisible()).toBe(false);
      // the arrow keys stay within the days shown
      await day(page, 'search', dateOf(now)).locator('input').focus();
      for (let i = 0; i < 29; i++) await page.keyboard.press('ArrowLeft');
      expect(await page.evaluate(() => document.activeElement?.closest('label')?.getAttribute('data-date'))).toBe(dateOf(now - 29 * DAY));
      await page.keyboard.press('ArrowLeft');
      expect(await page.evaluate(() => document.activeElement?.closest('label')?.getAttribute('data-date'))).toBe(dateOf(now));

      const violations = await axeViolations(page);
      expect(violations, formatViolations('status page (phone)', violations)).toEqual([]);
      await page.mouse.move(0, 0);
      await page.locator('h1').click();
      await page.screenshot({ path: screenshotPath(engine, 'status-phone'), fullPage: true });
      await page.close();
    }, 60_000);
  });
});

/** A band of the page around a service, wide enough for its day detail. */
async function around(page: Page, service: string) {
  const box = await page.locator(`[data-component="${service}"]`).boundingBox();
  if (!box) throw new Error(`no ${service} on the page`);
  return { x: 0, y: Math.max(0, box.y - 10), width: page.viewportSize()?.width ?? 1280, height: 300 };
}
