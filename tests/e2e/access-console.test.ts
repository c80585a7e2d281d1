/**
 * Console → Access in Chromium: an admin opens it from the console navigation, sees a waiting request,
 * grants by state, activity per company and an NDA acceptance, and revokes a grant; every state of the
 * page passes axe, on a desktop and on a phone. On each engine (tests/helpers/engine-server.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptanceOn, customerOn, grantOn, ndaTextOn, requestOn, viewOn } from '../helpers/access-fixtures.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const DAY = 86_400_000;
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
  let liveGrant = 0;

  beforeAll(async () => {
    const port = await freePort();
    running = await engine.start({ port, env: providerEnv({ port, testKeys: true }) });
    const db = running.database;
    const now = Date.now();
    await keepOrganisationOn(db, 'Acme Bank', { domains: ['acmebank.example'] });
    const ann = await customerOn(db, 'ann@acmebank.example', TEST_KEYS);
    const bob = await customerOn(db, 'bob@initech.example', TEST_KEYS);
    await requestOn(db, {
      recipientId: bob,
      name: 'Bob Builder',
      company: 'Initech',
      documents: ['penetration-test-summary'],
      status: 'pending',
      createdAt: new Date(now - 30 * 3_600_000),
    });
    liveGrant = await grantOn(db, {
      recipientId: ann,
      name: 'Ann Example',
      company: 'Acme',
      documents: ['soc-2-type-ii-report'],
      createdAt: new Date(now - 10 * DAY),
      expiresAt: new Date(now + 80 * DAY),
    });
    await grantOn(db, {
      recipientId: bob,
      name: 'Bob Builder',
      company: 'Initech',
      documents: ['soc-2-type-ii-report'],
      createdAt: new Date(now - 80 * DAY),
      expiresAt: new Date(now + 2 * DAY),
    });
    await viewOn(db, {
      grantId: liveGrant,
      recipientId: ann,
      document: 'soc-2-type-ii-report',
      kind: 'download',
      at: new Date(now - DAY),
      ip: '198.51.100.7',
    });
    const hash = await ndaTextOn(db, 'Mutual NDA', 'The parties agree to keep it confidential.');
    await acceptanceOn(db, {
      ndaHash: hash,
      recipientId: ann,
      grantId: liveGrant,
      fullName: 'Ann Example',
      company: 'Acme',
      acceptedAt: new Date(now - 10 * DAY),
    });
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
  });

  it('an admin opens Access from the navigation and revokes a grant; every state passes axe', async () => {
    const { token } = await signedInStaffOn(running.database, 'admin');
    const { context, page, problems } = await staffPage(browser, running.server.url, token);
    await page.goto(`${running.server.url}/console`);
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Access' }).click();
    await page.waitForURL('**/console/access');
    await expect.poll(() => page.locator('#pending-table tbody tr').count()).toBe(1);
    await accessible(page, 'access');
    await page.screenshot({ path: screenshotPath(engine, 'console-access'), fullPage: true });
    // a second tab, open before the grant is revoked, keeps its (now stale) button
    const stale = await context.newPage();
    await stale.goto(`${running.server.url}/console/access`);
    await page.getByRole('button', { name: `Revoke grant #${liveGrant} of Ann Example` }).click();
    await expect
      .poll(() =>
        page
          .getByRole('status')
          .filter({ hasText: `Grant #${liveGrant} of Ann Example was revoked` })
          .count(),
      )
      .toBe(1);
    await expect.poll(() => page.locator(`tr[data-grant="${liveGrant}"][data-state="revoked"]`).count()).toBe(1);
    await accessible(page, 'access after revoking');
    // revoking it again from the stale tab: the refusal is shown, accessibly
    await stale.getByRole('button', { name: `Revoke grant #${liveGrant} of Ann Example` }).click();
    await expect.poll(() => stale.getByRole('alert').filter({ hasText: 'was already revoked' }).count()).toBe(1);
    await accessible(stale, 'access, revoked twice');
    expect(problems.filter((p) => !p.includes('400'))).toEqual([]);
    await context.close();

    const phone = await staffPage(browser, running.server.url, token, { width: 390, height: 800 });
    await phone.page.goto(`${running.server.url}/console/access`);
    await accessible(phone.page, 'access on a phone');
    await phone.page.screenshot({ path: screenshotPath(engine, 'console-access-390'), fullPage: true });
    await phone.context.close();
  }, 90_000);
});
