/**
 * In Chromium: staff publish a subprocessor notice from Announcements; a
 * subscriber opens the objection link from the email they received and
 * files an objection; staff see it in the console and take it up.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { copyContent, editYaml } from '../helpers/content-fixture.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
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
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let db: Database;

  beforeAll(async () => {
    resend = await startFakeResend();
    const port = await freePort();
    // the baseline is the demo content; then a subprocessor is added to content/
    running = await engine.start({ port, env: providerEnv({ port, resend, testKeys: true }) });
    const contentDir = copyContent();
    editYaml<Record<string, unknown>[]>(contentDir, 'subprocessors.yaml', (rows) => [
      ...rows,
      {
        id: 'datadog',
        name: 'Datadog',
        entity: 'Datadog, Inc.',
        category: 'analytics',
        purpose: 'Application performance monitoring and error tracking.',
        dataCategories: ['Technical logs', 'IP addresses'],
        countries: ['US'],
        transferMechanism: 'EU-U.S. Data Privacy Framework',
        dpaUrl: 'https://www.datadoghq.com/legal/dpa/',
        website: 'https://www.datadoghq.com',
        since: '2027-01-01',
      },
    ]);
    server = await running.restart({ CANDOR_CONTENT_DIR: contentDir });
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      topic: 'subprocessors',
      address: () => 'privacy@customer.example',
    });
  });
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  describe('a subprocessor notice and an objection, in Chromium', () => {
    it('staff publish; the subscriber objects from the email link; staff see and take it up', async () => {
      const staff = await browser.newContext();
      staff.setDefaultTimeout(15_000);
      const { token } = await signedInStaffOn(db, 'responder');
      await staff.addCookies([{ name: 'candor_session', value: token, url: server.url }]);
      const console_ = await staff.newPage();
      const problems = await watchProblems(console_);
      await console_.goto(`${server.url}/console/announcements`);
      await expect.poll(() => console_.getByRole('heading', { name: 'New subprocessor: Datadog' }).count()).toBe(1);
      const a11y = await axeViolations(console_);
      expect(a11y, formatViolations('announcements', a11y)).toEqual([]);
      await console_.screenshot({ path: screenshotPath(engine, 'announcements-notice-draft'), fullPage: true });
      // edited and published with one click: the edit goes out (it used to be dropped unless saved first)
      await console_.getByLabel('Introduction').fill('We will use **Datadog** to find errors faster.');
      await console_.getByRole('button', { name: 'Publish now' }).click();
      await expect.poll(() => console_.getByText('Published: 1 deliveries queued.').count()).toBe(1);

      await expect.poll(() => resend.emails.length, { timeout: 20_000 }).toBe(1);
      const email = resend.emails[0];
      expect(email?.subject).toMatch(/^\[Subprocessor notice\] New subprocessor: Datadog \(effective /);
      expect(email?.text).toContain('We will use Datadog to find errors faster.');
      const link = /https?:\/\/[^\s]+\/objections\/[\w.-]+/.exec(email?.text ?? '')?.[0] ?? '';
      expect(link).not.toBe('');

      const customer = await browser.newContext();
      customer.setDefaultTimeout(15_000);
      const page = await customer.newPage();
      const customerProblems = await watchProblems(page);
      await page.goto(link);
      await expect.poll(() => page.getByRole('heading', { name: 'New subprocessor: Datadog' }).count()).toBe(1);
      const form = await axeViolations(page);
      expect(form, formatViolations('objection form', form)).toEqual([]);
      await page.getByLabel('Why do you object?').fill('Our security policy does not allow IP addresses to leave the EU.');
      await page.getByLabel('Your name').fill('Sam Example');
      await page.getByLabel('Organisation').fill('Customer GmbH');
      await page.screenshot({ path: screenshotPath(engine, 'objection-form'), fullPage: true });
      await page.getByRole('button', { name: 'Send my objection' }).click();
      await expect.poll(() => page.getByText(/We recorded your objection as O-\d+/).count()).toBe(1);
      await expect
        .poll(() => resend.emails.some((e) => e.subject.startsWith('We received your objection')), { timeout: 20_000 })
        .toBe(true);

      await console_.goto(`${server.url}/console/objections`);
      await console_.getByRole('link', { name: /^O-\d+$/ }).click();
      await expect.poll(() => console_.getByText('Our security policy does not allow IP addresses to leave the EU.').count()).toBe(1);
      await console_.getByLabel('Status').selectOption('in_discussion');
      await console_.getByLabel('Note').fill('Offered EU-only log shipping.');
      await console_.getByRole('button', { name: 'Save' }).click();
      await expect.poll(() => console_.locator('#objection-status').textContent()).toBe('In discussion');
      const detail = await axeViolations(console_);
      expect(detail, formatViolations('objection detail', detail)).toEqual([]);
      await console_.screenshot({ path: screenshotPath(engine, 'console-objection'), fullPage: true });
      expect(problems).toEqual([]);
      expect(customerProblems).toEqual([]);
      await staff.close();
      await customer.close();
    }, 120_000);
  });
});
