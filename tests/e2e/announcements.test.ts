/**
 * In Chromium: a responder writes a free-form announcement (a new data
 * region), previews it per channel, publishes it, and a subscriber of the
 * change topics receives it; /changes shows it. The composer with its
 * preview is screenshotted and checked with axe.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { longDate } from '../../src/core/changes/messages.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const EFFECTIVE = new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10);
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
    running = await engine.start({ port, env: providerEnv({ port, resend, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, {
      count: 1,
      channel: 'email',
      topic: 'subprocessors',
      address: () => 'privacy@customer.example',
    });
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'sms', topic: 'docs', address: () => '+447911100002' });
  });
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  describe('a free-form announcement, in Chromium', () => {
    it('staff write, preview and publish it; a subscriber receives it; /changes shows it', async () => {
      const { token } = await signedInStaffOn(db, 'responder');
      const { context, page, problems } = await staffPage(browser, server.url, token, { width: 1100, height: 900 });
      await page.goto(`${server.url}/console/announcements`);
      await page.getByRole('link', { name: 'Write an announcement' }).click();
      await expect.poll(() => page.getByRole('heading', { name: 'Write an announcement' }).count()).toBe(1);
      const empty = await axeViolations(page);
      expect(empty, formatViolations('announcement composer', empty)).toEqual([]);

      await page.getByLabel('Title').fill('A new EU data region in Frankfurt');
      await page
        .getByLabel('Announcement', { exact: false })
        .fill(
          'From **1 May** new workspaces can be hosted in Frankfurt.\n\nExisting workspaces can [move on request](mailto:support@lumenwork.example).',
        );
      await page.getByLabel('Effective date (optional)').fill(EFFECTIVE);
      await page.getByRole('button', { name: 'Preview' }).click();
      await expect.poll(() => page.getByRole('heading', { name: 'Preview' }).count()).toBe(1);
      await expect
        .poll(() => page.getByText('It would reach: Email 1 · SMS 1 · Slack 0 · Webhook 0 · Microsoft Teams 0 · Discord 0.').count())
        .toBe(1);
      // the preview of every channel comes before the buttons that send it
      const previewTop = await page.locator('#preview-title').evaluate((h) => h.getBoundingClientRect().top);
      const publishTop = await page.getByRole('button', { name: 'Publish now' }).evaluate((b) => b.getBoundingClientRect().top);
      expect(previewTop).toBeLessThan(publishTop);
      // what was typed is still in the form after the preview
      expect(await page.getByLabel('Title').inputValue()).toBe('A new EU data region in Frankfurt');
      const previewed = await axeViolations(page);
      expect(previewed, formatViolations('announcement preview', previewed)).toEqual([]);
      await page.screenshot({ path: screenshotPath(engine, 'announcement-composer'), fullPage: true });

      await page.getByRole('button', { name: 'Publish now' }).click();
      await expect.poll(() => page.getByText('The announcement is published: 2 deliveries queued.').count()).toBe(1);
      const list = await axeViolations(page);
      expect(list, formatViolations('announcements after publishing', list)).toEqual([]);
      await expect.poll(() => resend.emails.length, { timeout: 20_000 }).toBe(1);
      expect(resend.emails[0]?.subject).toBe(`[Announcement] A new EU data region in Frankfurt (effective ${longDate(EFFECTIVE)})`);

      await page.goto(`${server.url}/changes`);
      await expect.poll(() => page.getByRole('heading', { name: 'A new EU data region in Frankfurt' }).count()).toBe(1);
      const changes = await axeViolations(page);
      expect(changes, formatViolations('/changes', changes)).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    }, 120_000);
  });
});
