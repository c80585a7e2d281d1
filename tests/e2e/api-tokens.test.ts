/**
 * Console → API tokens in Chromium: an admin opens it from the console navigation, makes a token (the
 * secret shown once, in a field to copy), sees it listed and revokes it; the staff API reference page
 * too; every state passes axe, on a desktop and on a phone. On each engine (tests/helpers/engine-server.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOperations } from '../../src/lib/api/operations.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { ROOT } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

let browser: Browser;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function accessible(page: Page, what: string): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, formatViolations(what, violations)).toEqual([]);
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;

  beforeAll(async () => {
    running = await engine.start();
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
  });

  it('an admin makes a token, copies it once, and revokes it; every state passes axe', async () => {
    const { token } = await signedInStaffOn(running.database, 'admin');
    const { context, page, problems } = await staffPage(browser, running.server.url, token);
    await page.goto(`${running.server.url}/console`);
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'API tokens' }).click();
    await page.waitForURL('**/console/api-tokens');
    await accessible(page, 'api tokens, none yet');
    await page.getByLabel(/^Name/).fill('Alertmanager');
    await page.getByRole('checkbox', { name: 'incidents.manage' }).check();
    await page.getByRole('button', { name: 'Make token' }).click();
    const secret = page.getByLabel('Token', { exact: true });
    await expect.poll(async () => (await secret.inputValue()).startsWith('cnd_')).toBe(true);
    const value = await secret.inputValue();
    await accessible(page, 'api tokens, secret shown');
    await page.screenshot({ path: screenshotPath(engine, 'console-api-tokens'), fullPage: true });
    // shown once: the page read again lists the token by its prefix only
    await page.goto(`${running.server.url}/console/api-tokens`);
    expect(await page.content()).not.toContain(value);
    await expect.poll(() => page.locator('#api-tokens tr[data-state="active"]').count()).toBe(1);
    await page.getByRole('button', { name: 'Revoke the token Alertmanager' }).click();
    await expect.poll(() => page.locator('#api-tokens tr[data-state="revoked"]').count()).toBe(1);
    await accessible(page, 'api tokens, revoked');
    expect(problems).toEqual([]);
    await context.close();

    const phone = await staffPage(browser, running.server.url, token, { width: 390, height: 800 });
    await phone.page.goto(`${running.server.url}/console/api-tokens`);
    await accessible(phone.page, 'api tokens on a phone');
    await phone.page.screenshot({ path: screenshotPath(engine, 'console-api-tokens-390'), fullPage: true });
    await phone.page.goto(`${running.server.url}/api/reference`);
    await accessible(phone.page, 'api reference on a phone');
    await phone.context.close();
  }, 90_000);

  it('the staff API reference lists every operation with its permission, and each problem type at its anchor', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${running.server.url}/api`);
    await page.getByRole('link', { name: 'staff API reference' }).click();
    await page.waitForURL('**/api/reference');
    await accessible(page, 'api reference');
    await expect.poll(() => page.locator('section[data-operation]').count()).toBe(apiOperations.length);
    expect(await page.locator('#op-declareIncident').textContent()).toContain('incidents.manage');
    expect(await page.locator('#op-declareIncident').textContent()).toContain('Idempotency-Key');
    expect(await page.locator('#problem-validation-failed').count()).toBe(1);
    await page.screenshot({ path: screenshotPath(engine, 'api-reference'), fullPage: false });
    await context.close();
  }, 60_000);
});
