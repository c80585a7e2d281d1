/**
 * The console as staff meet it, in Chromium: the first owner follows the
 * CLI's one-time link, sets a password, enrols TOTP (codes computed from the
 * key the page shows), signs in again with a code, invites a responder; the
 * responder sets a password, signs in and is refused the Staff page.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';
import { totpFromKeyText } from '../helpers/staff.ts';

const OWNER = 'owner@lumenwork.example';
const RESPONDER = 'responder@lumenwork.example';
const OWNER_PASSWORD = 'lantern orchard velvet 42 tides';
const RESPONDER_PASSWORD = 'granite meadow copper 17 skies';

let browser: Browser;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext();
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  return { page, problems: await watchProblems(page) };
}

async function expectAccessible(page: Page, label: string): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, formatViolations(label, violations)).toEqual([]);
}

/** A code for the next 30-second step, so it was not used by an earlier sign-in. */
async function freshCode(keyText: string, used: Set<string>): Promise<string> {
  let code = totpFromKeyText(keyText);
  while (used.has(code)) {
    await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 250));
    code = totpFromKeyText(keyText);
  }
  used.add(code);
  return code;
}

/**
 * Pages before sign-in have no navigation; their content once fell into the navigation's 12rem column
 * (192 px of a 1280 px window). Their panel and its fields must take the width a form needs.
 */
async function expectFullPanel(page: Page, label: string): Promise<void> {
  const viewport = page.viewportSize()?.width ?? 0;
  const main = await page.locator('main').boundingBox();
  const field = await page.locator('main input:not([type=hidden]):not([hidden]), main .codes').first().boundingBox();
  const wanted = Math.min(viewport - 40, 480);
  expect(main?.width ?? 0, `${label}: the panel is ${main?.width} px wide in a ${viewport} px window`).toBeGreaterThanOrEqual(wanted);
  expect(field?.width ?? 0, `${label}: its first field is ${field?.width} px wide`).toBeGreaterThanOrEqual(Math.min(wanted - 80, 380));
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  const shot = (name: string) => screenshotPath(engine, name);

  beforeAll(async () => {
    running = await engine.start();
    server = running.server;
  });
  afterAll(async () => {
    await running?.stop();
  });

  describe('staff console in Chromium', () => {
    it('the sign-in page uses the width of the window, on a desktop and on a phone', async () => {
      for (const width of [1280, 390]) {
        const context = await browser.newContext({ viewport: { width, height: 800 } });
        const page = await context.newPage();
        await page.goto(`${server.url}/console/sign-in`);
        await expectFullPanel(page, `sign-in at ${width} px`);
        await expectAccessible(page, `sign-in at ${width} px`);
        await page.screenshot({ path: shot(`console-sign-in-${width}`), fullPage: true });
        await context.close();
      }
    });

    it('owner enrols TOTP and invites a responder, who is refused the Staff page', async () => {
      const created = spawnSync(process.execPath, [join(ROOT, 'src/cli.ts'), 'admin', 'create', '--email', OWNER, '--role', 'owner'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, ...running.env, CANDOR_DATA_DIR: server.dataDir, CANDOR_PUBLIC_URL: server.url },
      });
      expect(created.status, created.stderr).toBe(0);
      const ownerLink = created.stdout.trim().split('\n').at(-1) ?? '';

      // The owner sets a password from the one-time link…
      const owner = await newPage();
      await owner.page.goto(ownerLink);
      await expectAccessible(owner.page, 'set password');
      await expectFullPanel(owner.page, 'set password');
      await owner.page.screenshot({ path: shot('console-set-password'), fullPage: true });
      await owner.page.getByLabel('New password').fill(OWNER_PASSWORD);
      await owner.page.getByLabel('Repeat it').fill(OWNER_PASSWORD);
      await owner.page.getByRole('button', { name: 'Set password' }).click();

      // …is sent to enrol an authenticator, and cannot go anywhere else first.
      await owner.page.waitForURL('**/console/mfa/enrol');
      await owner.page.goto(`${server.url}/console/staff`);
      await owner.page.waitForURL('**/console/mfa/enrol');
      await expect.poll(() => owner.page.locator('.qr svg').count()).toBe(1);
      await expectAccessible(owner.page, 'enrol');
      await owner.page.screenshot({ path: shot('console-enrol'), fullPage: true });
      const keyText = (await owner.page.locator('#totp-key').textContent()) ?? '';
      const used = new Set<string>();
      await owner.page.getByLabel('Code from the app').fill(await freshCode(keyText, used));
      await owner.page.getByRole('button', { name: 'Confirm' }).click();
      await expect.poll(() => owner.page.getByRole('list', { name: 'Recovery codes' }).locator('li').count()).toBe(10);
      await expectFullPanel(owner.page, 'recovery codes');
      // every code on one line: as tall as the shortest, and nothing cut off at its right
      const codes = await owner.page
        .getByRole('list', { name: 'Recovery codes' })
        .locator('li')
        .evaluateAll((items) =>
          items.map((li) => ({ height: li.getBoundingClientRect().height, overflow: li.scrollWidth > li.clientWidth })),
        );
      const line = Math.min(...codes.map((c) => c.height));
      for (const code of codes) expect(code, 'a recovery code broke over two lines').toEqual({ height: line, overflow: false });
      await owner.page.screenshot({ path: shot('console-recovery-codes'), fullPage: true });
      await owner.page.getByRole('link', { name: 'Continue to the console' }).click();
      await owner.page.waitForURL(`${server.url}/console`);

      // Signs out, and back in with password and a TOTP code.
      await owner.page.getByRole('button', { name: 'Sign out' }).click();
      await expect.poll(() => owner.page.getByText('You have signed out.').count()).toBe(1);
      await owner.page.getByLabel('Email').fill(OWNER);
      await owner.page.getByLabel('Password').fill(OWNER_PASSWORD);
      await owner.page.getByRole('button', { name: 'Sign in' }).click();
      await owner.page.waitForURL('**/console/mfa**');
      await owner.page.getByLabel('Code').fill(await freshCode(keyText, used));
      await owner.page.getByRole('button', { name: 'Verify' }).click();
      await owner.page.waitForURL(`${server.url}/console`);
      await expectAccessible(owner.page, 'dashboard');
      await owner.page.screenshot({ path: shot('console-dashboard'), fullPage: true });

      // Invites a responder; the link is shown to the owner to pass on.
      await owner.page.getByRole('link', { name: 'Staff' }).click();
      await owner.page.waitForURL('**/console/staff');
      await owner.page.getByLabel('Email').fill(RESPONDER);
      await owner.page.getByLabel('Role', { exact: true }).selectOption('responder');
      await owner.page.getByRole('button', { name: 'Create invitation link' }).click();
      const inviteLink = ((await owner.page.locator('#invite-link').textContent()) ?? '').trim();
      expect(inviteLink).toContain('/console/link/');
      await expectAccessible(owner.page, 'staff');
      await owner.page.screenshot({ path: shot('console-staff'), fullPage: true });

      // The responder sets a password (no second factor required for the role) and reaches the console…
      const responder = await newPage();
      await responder.page.goto(inviteLink);
      await responder.page.getByLabel('New password').fill(RESPONDER_PASSWORD);
      await responder.page.getByLabel('Repeat it').fill(RESPONDER_PASSWORD);
      await responder.page.getByRole('button', { name: 'Set password' }).click();
      await responder.page.waitForURL(`${server.url}/console`);
      await expect
        .poll(() => responder.page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Staff' }).count())
        .toBe(0);

      // …and is refused the Staff page.
      const refused = await responder.page.goto(`${server.url}/console/staff`);
      expect(refused?.status()).toBe(403);
      expect(await responder.page.getByRole('heading', { level: 1 }).textContent()).toBe('Not allowed');

      // The owner sees it all in the audit log.
      await owner.page.goto(`${server.url}/console/audit`);
      const actions = await owner.page.locator('#audit tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
      expect(actions).toEqual(
        expect.arrayContaining(['staff.invited', 'auth.link.used', 'auth.mfa.enrolled', 'auth.mfa.verified', 'auth.sign_out']),
      );
      // an entry's details read the same on both engines: keys in order (PostgreSQL's jsonb reorders them as stored)
      const invited = owner.page.locator('#audit tbody tr[data-action="staff.invited"] td code').last();
      expect(await invited.textContent()).toBe(`{"email":"${RESPONDER}","reissued":false,"role":"responder"}`);
      await expectAccessible(owner.page, 'audit log');
      await owner.page.screenshot({ path: shot('console-audit'), fullPage: true });

      expect(owner.problems).toEqual([]);
      expect(responder.problems.filter((p) => !p.includes('403'))).toEqual([]);
    }, 120_000);
  });
});
