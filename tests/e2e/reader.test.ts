/**
 * A customer with access to gated documents, in Chromium: asks for a sign-in link, opens it from the email
 * the fake Resend captured and presses the button, accepts the NDA, finds the library and signs out. Every
 * page on the way has no accessibility violations (axe-core) in the light and dark colour schemes.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL under row-level security when
 * CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRecipient } from '../../src/core/notify/recipients.ts';
import { insertGrant } from '../../src/stores/reader-access.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
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
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    const violations = await axeViolations(page);
    expect(violations, formatViolations(`${label} (${colorScheme})`, violations)).toEqual([]);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  const email = `reader-${engine.name}@customer.example`;

  beforeAll(async () => {
    resend = await startFakeResend();
    const port = await freePort();
    running = await engine.start({ port, env: providerEnv({ port, resend, testKeys: true }) });
    server = running.server;
    const now = new Date();
    await running.database.transaction(async (tx) => {
      const recipient = await ensureRecipient(tx, TEST_KEYS, { channel: 'email', address: email }, now);
      await insertGrant(tx, {
        requestId: null,
        recipientId: recipient.id,
        name: 'Dana Reyes',
        company: 'Customer Example Ltd',
        documents: ['soc-2-type-ii-report', 'penetration-test-summary'],
        createdAt: now,
        createdBy: null,
        expiresAt: new Date(now.getTime() + 30 * 86_400_000),
      });
    });
  });
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  it('signs in from the email, accepts the NDA, reads the library and signs out, every page accessible', async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const problems = await watchProblems(page);

    await page.goto(`${server.url}/documents/sign-in`);
    await accessible(page, '/documents/sign-in');
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Send me a sign-in link' }).click();
    await expect.poll(() => page.locator('#reader-link-sent').count()).toBe(1);
    await accessible(page, '/documents/sign-in (sent)');

    await expect.poll(() => resend.emailsTo(email).length).toBe(1);
    const link = /(http:\/\/\S+\/documents\/sign-in\/[a-z0-9.]+)/.exec(resend.emailsTo(email)[0]?.text ?? '')?.[1] ?? '';
    expect(link).not.toBe('');
    await page.goto(link);
    await accessible(page, '/documents/sign-in/<token>');
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.waitForURL(/\/documents\/nda$/);
    await accessible(page, '/documents/nda');
    await page.screenshot({ path: screenshotPath(engine, 'reader-nda'), fullPage: true });
    expect(await page.getByLabel('Company', { exact: true }).inputValue()).toBe('Customer Example Ltd');
    await page.getByLabel('Full name').fill('Dana Reyes');
    await page.getByRole('button', { name: 'Accept the agreement' }).click();
    // the box is required: the browser keeps the form until it is ticked
    expect(page.url()).toMatch(/\/documents\/nda$/);
    await page.getByLabel(/I agree/).check();
    await page.getByRole('button', { name: 'Accept the agreement' }).click();

    await page.waitForURL(/\/documents\/library$/);
    await accessible(page, '/documents/library');
    await page.screenshot({ path: screenshotPath(engine, 'reader-library'), fullPage: true });
    expect(await page.locator('#library > li').count()).toBe(2);
    const pdf = await page.request.get(`${server.url}/documents/read/soc-2-type-ii-report.pdf`);
    expect(pdf.status()).toBe(200);
    expect(pdf.headers()['content-type']).toBe('application/pdf');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => page.getByText('You have signed out.').count()).toBe(1);
    await page.goto(`${server.url}/documents/library`);
    expect(page.url()).toMatch(/\/documents\/sign-in$/);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('a link that is not valid says so, accessibly', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`${server.url}/documents/sign-in/a1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`);
    expect(res?.status()).toBe(404);
    await accessible(page, '/documents/sign-in/<forged>');
    await context.close();
  });
});
