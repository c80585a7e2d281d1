/**
 * A customer in Chromium: subscribes by email, confirms from the message the
 * fake Resend captured, changes what they follow, and unsubscribes.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer } from '../helpers/server.ts';

let browser: Browser;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function accessible(page: Page, label: string): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, formatViolations(label, violations)).toEqual([]);
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;

  beforeAll(async () => {
    resend = await startFakeResend();
    const port = await freePort();
    running = await engine.start({ port, env: providerEnv({ port, resend }) });
    server = running.server;
  });
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  describe('subscribing in Chromium', () => {
    it('subscribes by email, confirms from the email, changes topics and unsubscribes', async () => {
      const context = await browser.newContext();
      context.setDefaultTimeout(15_000);
      const page = await context.newPage();
      const problems = await watchProblems(page);

      await page.goto(`${server.url}/subscribe`);
      await accessible(page, '/subscribe');
      await page.getByLabel('Subprocessor changes').check();
      await page.getByLabel('Public API').check();
      await page.getByRole('radio', { name: 'Email' }).check();
      await page.getByLabel('Address').fill('grace@customer.example');
      await page.screenshot({ path: screenshotPath(engine, 'subscribe'), fullPage: true });
      await page.getByRole('button', { name: 'Subscribe' }).click();
      await expect.poll(() => page.getByText('Check your inbox').count()).toBe(1);

      await expect.poll(() => resend.emailsTo('grace@customer.example').length).toBe(1);
      const email = resend.emailsTo('grace@customer.example')[0];
      const link = /(http:\/\/\S+\/subscribe\/confirm\/[a-z0-9.]+)/.exec(email?.text ?? '')?.[1] ?? '';
      expect(email?.html).toContain(link);

      await page.goto(link);
      await page.getByRole('button', { name: 'Confirm my subscription' }).click();
      await expect.poll(() => page.getByText('You are subscribed.').count()).toBe(1);
      await page.getByRole('link', { name: 'Manage your subscription' }).click();
      await page.waitForURL('**/subscription/**');
      await accessible(page, 'manage');
      expect(await page.getByLabel('Subprocessor changes').isChecked()).toBe(true);
      expect(await page.getByLabel('Public API').isChecked()).toBe(true);

      await page.getByLabel('Subprocessor changes').uncheck();
      await page.getByLabel('Changes to security and privacy documents').check();
      // a whole group as well as single services
      await page.getByLabel('All of AI').check();
      await page.getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => page.getByText('Saved.').count()).toBe(1);
      expect(await page.getByLabel('Changes to security and privacy documents').isChecked()).toBe(true);
      expect(await page.getByLabel('Subprocessor changes').isChecked()).toBe(false);
      expect(await page.getByLabel('All of AI').isChecked()).toBe(true);
      expect(await page.getByLabel('Public API').isChecked()).toBe(true);
      expect(await page.getByLabel('All of Core').isChecked()).toBe(false);
      await page.screenshot({ path: screenshotPath(engine, 'manage-subscription'), fullPage: true });

      await page.getByRole('link', { name: 'Unsubscribe this address' }).click();
      await page.getByRole('button', { name: 'Unsubscribe' }).click();
      await expect.poll(() => page.getByText('will not receive our updates any more').count()).toBe(1);
      await accessible(page, 'unsubscribed');
      expect(problems).toEqual([]);
      await context.close();
    }, 90_000);
  });
});
