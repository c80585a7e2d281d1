/**
 * In Chromium: an admin keeps a customer organisation and places a
 * subscriber's number in it; a responder targets a breach notice at it and
 * sees, before publishing, whom it reaches, and the loud warning when it
 * reaches no one. Every page passes axe.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { recipientById } from '../../src/stores/subscribers.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
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
  let smsSubscriber = 0;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, env: providerEnv({ port, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `ops${i}@acmebank.example` });
    const [sms = 0] = await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447911123409' });
    await keepOrganisationOn(db, 'Initech', { domains: ['initech.example'] });
    smsSubscriber = (await db.read((r) => recipientById(r, sms)))?.subscriberId ?? 0;
    expect(smsSubscriber).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await running?.stop();
  });

  async function as(role: 'admin' | 'responder'): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
    const { context, page, problems } = await staffPage(browser, server.url, (await signedInStaffOn(db, role)).token);
    return { page, problems, close: () => context.close() };
  }

  async function accessible(page: Page, what: string): Promise<void> {
    const violations = await axeViolations(page);
    expect(violations, formatViolations(what, violations)).toEqual([]);
  }

  describe('customer organisations and a targeted notice, in Chromium', () => {
    it('an admin keeps Acme Bank and places a subscriber’s number in it', async () => {
      const { page, problems, close } = await as('admin');
      await page.goto(`${server.url}/console/organisations`);
      await page.getByLabel('Name').fill('Acme Bank');
      await page.getByLabel(/Email domains it controls/).fill('acmebank.example');
      await page.getByRole('button', { name: 'Add the organisation' }).click();
      await page.waitForURL(/\/console\/organisations\/\d+$/);
      await expect.poll(() => page.locator('#member-list tbody tr').count()).toBe(2);
      await accessible(page, 'organisation');
      await page.screenshot({ path: screenshotPath(engine, 'console-organisation'), fullPage: true });
      // "Who was told, and when?": the evidence page, with its period filter and downloads
      await page.getByRole('link', { name: 'Who was told, and when?' }).click();
      await page.waitForURL(/\/console\/evidence\?organisation=\d+$/);
      await expect.poll(() => page.getByRole('link', { name: 'Download PDF' }).count()).toBe(1);
      await accessible(page, 'evidence of notification');
      await page.screenshot({ path: screenshotPath(engine, 'console-evidence'), fullPage: true });
      await page.goBack();
      await page.goto(`${server.url}/console/organisations`);
      await accessible(page, 'organisations');
      await page.goto(`${server.url}/console/subscribers/${smsSubscriber}`);
      await page.getByLabel('Assign').selectOption('all');
      await page.getByRole('button', { name: 'Assign', exact: true }).click();
      await expect.poll(() => page.locator('#membership-list li').count()).toBe(1);
      await accessible(page, 'subscriber record');
      expect(problems).toEqual([]);
      await close();
    }, 60_000);

    it('a responder sees whom a targeted notice reaches, and a loud warning when it reaches no one', async () => {
      const { page, problems, close } = await as('responder');
      await page.goto(`${server.url}/console/incidents/new?kind=security`);
      await page.getByLabel('Title').fill('Export exposure');
      await page.getByLabel('Acme Bank').check();
      await page.getByLabel('Web application').selectOption('operational');
      await page.getByLabel(/^Update/).fill('We found unauthorised access to exports.');
      await page.getByRole('button', { name: 'Preview' }).click();
      await expect.poll(() => page.getByText('Acme Bank: email 2 · sms 1 · slack 0 · webhook 0').count()).toBe(1);
      await expect.poll(() => page.getByText('domain acmebank.example: 2 email').count()).toBe(1);
      await accessible(page, 'targeted preview');
      await page.screenshot({ path: screenshotPath(engine, 'console-targeted-preview'), fullPage: true });
      // a data breach for Initech, which has no verified member: no one to reach
      await page.goto(`${server.url}/console/incidents/new?kind=breach`);
      await page.getByLabel('Title').fill('Initech export exposure');
      await page.getByLabel('Initech').check();
      await page.getByLabel('Web application').selectOption('operational');
      await page.getByLabel(/^Update/).fill('We found unauthorised access to exports of your workspace.');
      for (const field of ['Nature of the breach', 'Data subjects', 'Personal data records', 'Likely consequences', 'Measures taken'])
        await page.getByLabel(field).fill('not yet known');
      await page.getByRole('button', { name: 'Preview' }).click();
      await expect.poll(() => page.getByRole('alert').filter({ hasText: 'This notice reaches no one' }).count()).toBe(1);
      await expect.poll(() => page.getByLabel('Send anyway: it reaches no one (this is audited)').count()).toBe(1);
      await accessible(page, 'notice that reaches no one');
      expect(problems).toEqual([]);
      await close();
    }, 60_000);
  });
});
