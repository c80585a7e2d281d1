/**
 * Console → Deliveries → Logged messages, in Chromium: with no provider
 * keys, an incident's messages are kept by the log transport and shown as
 * each channel would show them (an email with subject and a clickable
 * preview, an SMS with its segment count, Slack's blocks), not as raw JSON.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, deliveryCountsOf, TEST_KEYS } from '../helpers/notify.ts';
import { until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

let browser: Browser;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let db: Database;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, env: providerEnv({ port, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', address: () => 'ops@customer.example' });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447700900123' });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'slack', address: () => 'C0STATUS', secret: () => 'xoxb-customer' });
  });
  afterAll(async () => {
    await running?.stop();
  });

  describe('logged messages in Chromium', () => {
    it('show an email, an SMS and a Slack message as their channels would', async () => {
      const responder = new ConsoleClient(server.url);
      responder.setCookie('candor_session', (await signedInStaffOn(db, 'responder')).token);
      const declared = await responder.post('/console/incidents/new?_action=publishIncident', {
        title: 'Search is slow',
        kind: 'outage',
        severity: 'minor',
        status: 'investigating',
        'component:web-app': 'degraded',
        body: 'Searches take **several seconds**. See https://help.lumenwork.example/search for tips.',
      });
      expect(declared.status).toBe(303);
      await until(async () => (await deliveryCountsOf(db)).sent === 3, 'three messages logged');

      const { token } = await signedInStaffOn(db, 'admin');
      const { context, page, problems } = await staffPage(browser, server.url, token, { width: 1280, height: 900 });
      await page.goto(`${server.url}/console/deliveries/log`);

      const email = page.locator('li[data-channel=email]');
      await expect.poll(() => email.locator('.msg-subject').textContent()).toMatch(/Search is slow/);
      const preview = email.getByRole('region', { name: 'Email preview' });
      expect(await preview.locator('strong', { hasText: 'several seconds' }).count()).toBe(1);
      const follow = preview.getByRole('link', { name: 'Follow this incident on our status page' });
      expect(await follow.getAttribute('href')).toMatch(new RegExp(`^${server.url}/incidents/\\d+$`));

      const sms = page.locator('li[data-channel=sms]');
      expect(await sms.locator('.msg-bubble').textContent()).toMatch(/Search is slow.*\/incidents\/\d+$/);
      expect(await sms.locator('.msg-meta').textContent()).toMatch(/^\d+ characters · GSM-7 · 1 segment$/);
      expect(await sms.locator('.msg-bubble a').getAttribute('href')).toMatch(/\/incidents\/\d+$/);

      const slack = page.locator('li[data-channel=slack]');
      expect(await slack.locator('.msg-slack a').count()).toBeGreaterThan(0);
      expect(await slack.locator('.msg-slack strong').count()).toBeGreaterThan(0);

      // no raw JSON for channels that have a view of their own
      const body = (await page.locator('main').textContent()) ?? '';
      expect(body).not.toMatch(/"blocks"|"subject"|"body":/);
      const violations = await axeViolations(page);
      expect(violations, formatViolations('logged messages', violations)).toEqual([]);
      await page.screenshot({ path: screenshotPath(engine, 'console-logged-messages'), fullPage: true });
      expect(problems).toEqual([]);
      await context.close();
    }, 90_000);
  });
});
