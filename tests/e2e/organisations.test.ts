/**
 * In Chromium: an admin keeps a customer organisation and places a
 * subscriber's number in it; a responder targets a breach notice at it and
 * sees, before publishing, whom it reaches, and the loud warning when it
 * reaches no one. Every page passes axe.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisation } from '../helpers/organisations.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

const SCREENSHOTS = join(ROOT, 'test-output/screenshots');
let server: RunningServer;
let browser: Browser;
let db: Db;
let smsSubscriber = 0;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const port = await freePort();
  server = await startServer({ port, dataDir: tempDir(), env: providerEnv({ port, testKeys: true }) });
  db = openTestDb(server.dataDir);
  addSubscribers(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `ops${i}@acmebank.example` });
  const [sms = 0] = addSubscribers(db, TEST_KEYS, { count: 1, channel: 'sms', address: () => '+447911123409' });
  await keepOrganisation(db, 'Initech', { domains: ['initech.example'] });
  smsSubscriber = (db.$client.prepare('SELECT subscriber_id FROM recipients WHERE id = ?').get(sms) as { subscriber_id: number })
    .subscriber_id;
  browser = await launchChromium();
});
afterAll(async () => {
  db?.$client.close();
  await browser?.close();
  await server?.stop();
});

async function as(role: 'admin' | 'responder'): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext();
  context.setDefaultTimeout(15_000);
  await context.addCookies([{ name: 'candor_session', value: signedInStaff(db, role).token, url: server.url }]);
  const page = await context.newPage();
  return { page, problems: await watchProblems(page), close: () => context.close() };
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
    await page.screenshot({ path: join(SCREENSHOTS, 'console-organisation.png'), fullPage: true });
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
    await page.screenshot({ path: join(SCREENSHOTS, 'console-targeted-preview.png'), fullPage: true });
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
