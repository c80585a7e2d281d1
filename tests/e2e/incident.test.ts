/**
 * A responder in Chromium declares a major outage on two services, publishes
 * two updates and resolves it; the public status page, the incident page and
 * the feed show it, and the fake providers received the messages.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const SCREENSHOTS = join(ROOT, 'test-output/screenshots');

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let slack: Awaited<ReturnType<typeof startFakeSlack>>;
  let browser: Browser;
  let db: Database;
  /** A screenshot's path: the SQLite run keeps the plain names, PostgreSQL's are suffixed. */
  const shot = (name: string) => join(SCREENSHOTS, engine.name === 'sqlite' ? `${name}.png` : `${name}-${engine.name}.png`);

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    resend = await startFakeResend();
    slack = await startFakeSlack();
    const port = await freePort();
    running = await engine.start({
      port,
      dataDir: tempDir(),
      env: providerEnv({ port, resend, slack, testKeys: true }),
    });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `ops${i}@customer.example` });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'slack', address: () => 'C0STATUS', secret: () => 'xoxb-customer' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await running?.stop();
    await resend?.close();
    await slack?.close();
  });

  describe('an incident, start to finish, in Chromium', () => {
    it('declares an outage from the dashboard in four interactions', async () => {
      const { context, page, problems } = await staffPage(browser, server.url, (await signedInStaffOn(db, 'responder')).token);
      await page.goto(`${server.url}/console`);
      // Every click, typed field and choice counts, from the dashboard after sign-in to the published incident.
      let interactions = 0;
      const act = async (step: () => Promise<void>) => {
        interactions++;
        await step();
      };
      await act(() => page.getByRole('link', { name: 'Declare an outage' }).click());
      await act(() => page.getByLabel('Title').fill('Checkout is failing'));
      await act(async () => {
        await page.getByLabel('Public API').selectOption('major_outage');
      });
      await act(() => page.getByRole('button', { name: 'Publish', exact: true }).click());
      await page.waitForURL(/\/console\/incidents\/\d+\?published=3/);
      expect(interactions).toBeLessThanOrEqual(4);
      // the first update is the outage template's, naming the service chosen
      await expect.poll(() => page.locator('#timeline-list li').first().textContent()).toContain('Public API is not working as expected');
      await expect.poll(() => resend.emails.filter((e) => e.subject.startsWith('[Major outage] Checkout is failing')).length).toBe(2);
      // the dashboard during the incident: what needs a person first
      await page.goto(`${server.url}/console`);
      await expect.poll(() => page.locator('#open-incidents').getByText('Checkout is failing').count()).toBe(1);
      const violations = await axeViolations(page);
      expect(violations, formatViolations('dashboard during an incident', violations)).toEqual([]);
      await page.screenshot({ path: shot('console-dashboard-incident'), fullPage: true });
      // resolved, so the next test starts from a quiet status page
      await page.locator('#open-incidents').getByRole('link', { name: 'Checkout is failing' }).click();
      await page.getByLabel('Status', { exact: true }).selectOption('resolved');
      await page.getByLabel(/^Update/).fill('Checkout works again.');
      await page.getByRole('button', { name: 'Publish update' }).click();
      await page.waitForURL(/published=/);
      expect(problems).toEqual([]);
      await context.close();
    }, 90_000);

    it('each kind has its own short form, accessible, with the preview above Publish', async () => {
      const { context, page, problems } = await staffPage(browser, server.url, (await signedInStaffOn(db, 'responder')).token);
      await page.goto(`${server.url}/console/incidents/new`);
      expect(await page.locator('.kind-choice').count()).toBe(4);
      await page.screenshot({ path: shot('console-declare-choose'), fullPage: true });
      const fields = async () =>
        page
          .locator('form.composer')
          .evaluate((form) =>
            [...form.querySelectorAll('input:not([type=hidden]), select, textarea')].map((e) => (e as HTMLInputElement).name),
          );
      const forms = {
        outage: {
          has: ['title', 'severity', 'status', 'body', 'nextUpdateBy', 'notify'],
          hasNot: ['windowStartsAt', 'breachNature', 'publicNotice'],
        },
        maintenance: {
          has: ['title', 'windowStartsAt', 'windowEndsAt', 'body', 'notify'],
          hasNot: ['severity', 'status', 'breachNature', 'nextUpdateBy'],
        },
        security: { has: ['title', 'severity', 'status', 'body'], hasNot: ['windowStartsAt', 'breachNature'] },
        breach: { has: ['title', 'severity', 'publicNotice', 'breachAwareAt', 'breachNature', 'body'], hasNot: ['windowStartsAt'] },
      } as const;
      for (const [kind, { has, hasNot }] of Object.entries(forms)) {
        await page.goto(`${server.url}/console/incidents/new?kind=${kind}`);
        const names = await fields();
        for (const name of has) expect(names, `${kind} form has ${name}`).toContain(name);
        for (const name of hasNot) expect(names, `${kind} form has no ${name}`).not.toContain(name);
        // its templates only
        const templates = await page.locator('nav.templates a').evaluateAll((links) => links.map((a) => a.getAttribute('data-template')));
        expect(templates.length, kind).toBeGreaterThan(0);
        const violations = await axeViolations(page);
        expect(violations, formatViolations(`${kind} form`, violations)).toEqual([]);
        await page.screenshot({ path: shot(`console-declare-${kind}`), fullPage: true });
      }
      // the preview of every channel comes before the Publish button
      await page.goto(`${server.url}/console/incidents/new?kind=outage`);
      await page.getByLabel('Title').fill('Slow uploads');
      await page.getByLabel('File uploads').selectOption('degraded');
      await page.getByRole('button', { name: 'Preview' }).click();
      await expect.poll(() => page.locator('.preview-channel').count()).toBe(4);
      const previewBottom = await page.locator('#preview-title').evaluate((h) => h.getBoundingClientRect().top);
      const publishTop = await page.getByRole('button', { name: 'Publish', exact: true }).evaluate((b) => b.getBoundingClientRect().top);
      expect(previewBottom).toBeLessThan(publishTop);
      await expect.poll(() => page.locator('.preview-channel[data-channel=sms] .msg-meta').textContent()).toMatch(/segment/);
      const violations = await axeViolations(page);
      expect(violations, formatViolations('outage preview', violations)).toEqual([]);
      await page.screenshot({ path: shot('console-incident-preview'), fullPage: true });
      expect(problems).toEqual([]);
      await context.close();
    }, 120_000);

    it('declare on two services, update, correct, resolve; public pages and feed follow', async () => {
      const { context, page, problems } = await staffPage(browser, server.url, (await signedInStaffOn(db, 'responder')).token);
      const emailsBefore = resend.emails.length;
      const slackBefore = slack.messages.length;

      await page.goto(`${server.url}/console/incidents/new?kind=outage`);
      await page.getByLabel('Title').fill('API and web app errors');
      await page.getByLabel('Severity', { exact: true }).selectOption('major');
      await page.getByLabel('Public API').selectOption('major_outage');
      await page.getByLabel('Web application').selectOption('degraded');
      await page.getByLabel(/^Update/).fill('We are investigating **errors** on the API and slow pages in the web app.');
      const promise = new Date(Date.now() + 45 * 60_000).toISOString().slice(0, 16);
      await page.getByLabel(/^Next update by/).fill(promise);
      await page.getByRole('button', { name: 'Publish', exact: true }).click();
      await page.waitForURL(/\/console\/incidents\/\d+\?published=3/);
      const id = /\/console\/incidents\/(\d+)/.exec(page.url())?.[1] ?? '';
      // the promise chosen, not the cadence
      await expect.poll(() => page.getByText(`Next update promised by ${promise.replace('T', ' ')} UTC`).count()).toBe(1);

      // a silent update: on the pages, not in anyone's inbox
      await page.getByLabel('Status', { exact: true }).selectOption('identified');
      await page.getByLabel(/^Update/).fill('A configuration change to the load balancer; reverting.');
      await page.getByRole('checkbox', { name: /^Notify subscribers \(email/ }).uncheck();
      await page.getByRole('button', { name: 'Publish update' }).click();
      await page.waitForURL(/published=0/);
      await expect.poll(() => page.locator('#timeline-list').textContent()).toContain('published without notifying subscribers');

      // a correction of the first update's text: silent, then announced
      const first = page.locator('#timeline-list li').last();
      await first.getByText('Edit this update').click();
      await first.getByLabel('Text').fill('We are investigating **errors** on the public API and slow pages in the web application.');
      await first.getByRole('button', { name: 'Save the correction' }).click();
      await expect.poll(() => page.getByText('The update is corrected: subscribers were not notified').count()).toBe(1);
      const corrected = page.locator('#timeline-list li').last();
      await corrected.getByText('Edit this update').click();
      await corrected
        .getByLabel('Text')
        .fill('We are investigating **errors** on the public API (HTTP 502) and slow pages in the web application.');
      await corrected.getByLabel('Notify subscribers of the correction').check();
      await corrected.getByRole('button', { name: 'Save the correction' }).click();
      await expect.poll(() => page.getByText(/the correction is queued for 3 recipients/).count()).toBe(1);

      for (const [status, text] of [
        ['monitoring', 'Reverted. Error rates are back to normal; we are watching.'],
        ['resolved', 'Resolved. A postmortem follows within 10 business days.'],
      ] as const) {
        await page.getByLabel('Status', { exact: true }).selectOption(status);
        await page.getByLabel(/^Update/).fill(text);
        await page.getByRole('button', { name: 'Publish update' }).click();
        await page.waitForURL(/published=/);
      }
      await expect.poll(() => page.locator('#incident-status').textContent()).toBe('Resolved');

      await page.goto(`${server.url}/status`);
      await expect.poll(() => page.getByText('All services are operational').count()).toBe(1);
      await page.locator('#past-incidents').getByRole('link', { name: 'API and web app errors' }).click();
      await page.waitForURL(`**/incidents/${id}`);
      await expect.poll(() => page.locator('ol.timeline > li').count()).toBe(4);
      expect(await page.locator('ol.timeline strong').first().textContent()).toBe('Resolved');
      expect(await page.locator('ol.timeline > li').last().textContent()).toMatch(/edited .*HTTP 502/s);
      const a11y = await axeViolations(page);
      expect(a11y, formatViolations('incident page', a11y)).toEqual([]);
      await page.screenshot({ path: shot('incident-page'), fullPage: true });

      const feed = (await (await fetch(`${server.url}/feeds/incidents.json`)).json()) as { items: { title: string; url: string }[] };
      expect(feed.items[0]).toMatchObject({ title: 'API and web app errors (Resolved)', url: `${server.url}/incidents/${id}` });

      // declared, the correction, monitoring and resolved: two recipients each; the silent update and the silent edit sent nothing
      await expect.poll(() => resend.emails.length - emailsBefore, { timeout: 20_000 }).toBe(8);
      const subjects = resend.emails.slice(emailsBefore).map((e) => e.subject);
      expect(subjects).toContain('[Major outage] API and web app errors — Resolved');
      expect(subjects.some((s) => s.includes('Identified'))).toBe(false);
      expect(resend.emails.slice(emailsBefore).filter((e) => (e.text ?? '').includes('Correction to the update of'))).toHaveLength(2);
      await expect.poll(() => slack.messages.length - slackBefore, { timeout: 20_000 }).toBe(4);
      const [root, ...replies] = slack.messages.slice(slackBefore);
      expect(replies.every((m) => m.threadTs === root?.ts)).toBe(true);
      expect(problems).toEqual([]);
      await context.close();
    }, 150_000);
  });
});
