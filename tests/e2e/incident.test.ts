/**
 * A responder in Chromium declares a major outage on two services, publishes
 * two updates and resolves it; the public status page, the incident page and
 * the feed show it, and the fake providers received the messages.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../db/client.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { startFakeSlack } from '../fakes/slack.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { addSubscribers, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, startServer, tempDir } from '../helpers/server.ts';
import { openTestDb, signedInStaff } from '../helpers/staff.ts';

const SCREENSHOTS = join(ROOT, 'test-output/screenshots');
let server: RunningServer;
let resend: Awaited<ReturnType<typeof startFakeResend>>;
let slack: Awaited<ReturnType<typeof startFakeSlack>>;
let browser: Browser;
let db: Db;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  resend = await startFakeResend();
  slack = await startFakeSlack();
  const port = await freePort();
  server = await startServer({
    port,
    dataDir: tempDir(),
    env: providerEnv({ port, resend, slack, testKeys: true }),
  });
  db = openTestDb(server.dataDir);
  addSubscribers(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `ops${i}@customer.example` });
  addSubscribers(db, TEST_KEYS, { count: 1, channel: 'slack', address: () => 'C0STATUS', secret: () => 'xoxb-customer' });
  browser = await launchChromium();
});
afterAll(async () => {
  db?.$client.close();
  await browser?.close();
  await server?.stop();
  await resend?.close();
  await slack?.close();
});

describe('an incident, start to finish, in Chromium', () => {
  it('declare on two services, two updates, resolve; public pages and feed follow', async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15_000);
    const { token } = signedInStaff(db, 'responder');
    await context.addCookies([{ name: 'candor_session', value: token, url: server.url }]);
    const page = await context.newPage();
    const problems = await watchProblems(page);

    await page.goto(`${server.url}/console/incidents/new`);
    await page.getByLabel('Title').fill('API and web app errors');
    await page.getByLabel('Severity').selectOption('major');
    await page.getByLabel('Public API').selectOption('major_outage');
    await page.getByLabel('Web application').selectOption('degraded');
    await page.getByLabel('Update').fill('We are investigating **errors** on the API and slow pages in the web app.');
    await page.getByRole('button', { name: 'Preview' }).click();
    await expect.poll(() => page.getByText('Recipients: email 2').count()).toBe(1);
    const violations = await axeViolations(page);
    expect(violations, formatViolations('composer', violations)).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-incident-preview.png'), fullPage: true });
    await page.getByRole('button', { name: 'Publish to subscribers' }).click();
    await page.waitForURL(/\/console\/incidents\/\d+\?published=3/);
    const id = /\/console\/incidents\/(\d+)/.exec(page.url())?.[1] ?? '';

    for (const [status, text] of [
      ['identified', 'A configuration change to the load balancer; reverting.'],
      ['monitoring', 'Reverted. Error rates are back to normal; we are watching.'],
      ['resolved', 'Resolved. A postmortem follows within 10 business days.'],
    ] as const) {
      await page.getByLabel('Status', { exact: true }).selectOption(status);
      await page.getByLabel('Update').fill(text);
      await page.getByRole('button', { name: 'Publish to subscribers' }).click();
      await page.waitForURL(/published=/);
    }
    await expect.poll(() => page.locator('#incident-status').textContent()).toBe('Resolved');

    await page.goto(`${server.url}/status`);
    await expect.poll(() => page.getByText('All services are operational').count()).toBe(1);
    await page.locator('#past-incidents').getByRole('link', { name: 'API and web app errors' }).click();
    await page.waitForURL(`**/incidents/${id}`);
    await expect.poll(() => page.locator('ol.timeline > li').count()).toBe(4);
    expect(await page.locator('ol.timeline strong').first().textContent()).toBe('Resolved');
    const a11y = await axeViolations(page);
    expect(a11y, formatViolations('incident page', a11y)).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, 'incident-page.png'), fullPage: true });

    const feed = (await (await fetch(`${server.url}/feeds/incidents.json`)).json()) as { items: { title: string; url: string }[] };
    expect(feed.items[0]).toMatchObject({ title: 'API and web app errors (Resolved)', url: `${server.url}/incidents/${id}` });

    await expect.poll(() => resend.emails.length, { timeout: 20_000 }).toBe(8);
    expect(resend.emails.map((e) => e.subject)).toContain('[Major outage] API and web app errors — Resolved');
    await expect.poll(() => slack.messages.length, { timeout: 20_000 }).toBe(4);
    const [root, ...replies] = slack.messages;
    expect(replies.every((m) => m.threadTs === root?.ts)).toBe(true);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
