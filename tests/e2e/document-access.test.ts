/**
 * Issue 16's whole story, in Chromium, on each engine: an admin keeps a rule that approves a partner's
 * domain; a visitor from that domain asks for the SOC 2 report, confirms behind the emailed link, is
 * approved by the rule, signs in from the emailed sign-in link, accepts the NDA and downloads the report,
 * whose every page carries their name, company and email (read back from the downloaded PDF). A second
 * visitor, from a domain no rule names, goes to review and is refused by an admin. Staff see both in
 * Console → Access and in the audit log.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage, watchProblems } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { pageTexts, winAnsi } from '../helpers/pdf.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, tempDir } from '../helpers/server.ts';
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
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let db: Database;
  let url: string;
  const alice = `alice-${engine.name}@partner.example`;
  const bob = `bob-${engine.name}@unknown-vendor.example`;

  beforeAll(async () => {
    resend = await startFakeResend();
    const port = await freePort();
    running = await engine.start({ port, env: providerEnv({ port, resend, testKeys: true }) });
    db = running.database;
    url = running.server.url;
  });
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  /** The first link in the newest email to `to` whose path starts with `path`. */
  async function emailedLink(to: string, path: string, count: number): Promise<string> {
    await expect.poll(() => resend.emailsTo(to).length, { timeout: 20_000 }).toBe(count);
    const text = resend.emailsTo(to)[count - 1]?.text ?? '';
    const link = new RegExp(`https?://\\S+${path}[\\w.-]+`).exec(text)?.[0] ?? '';
    expect(link, text).not.toBe('');
    return link;
  }

  /** A visitor asks for the SOC 2 report from its card and confirms behind the emailed link: the page's answer. */
  async function askAndConfirm(page: Page, who: { name: string; email: string; company: string }): Promise<string> {
    await page.goto(`${url}/documents`);
    await page.getByRole('link', { name: 'Ask for access to SOC 2 Type II report' }).click();
    await page.getByLabel('Name', { exact: true }).fill(who.name);
    await page.getByLabel('Work email').fill(who.email);
    await page.getByLabel('Company', { exact: true }).fill(who.company);
    await page.getByLabel('Reason').fill('Vendor security review before renewal');
    await page.getByRole('button', { name: 'Ask for access' }).click();
    await expect.poll(() => page.locator('#request-answer').count()).toBe(1);
    await page.goto(await emailedLink(who.email, '/documents/verify/', 1));
    await page.getByRole('button', { name: 'Confirm my request' }).click();
    await expect.poll(() => page.locator('#verify-answer').count()).toBe(1);
    return (await page.locator('#verify-answer').textContent()) ?? '';
  }

  it('a partner is approved by a rule, accepts the NDA and downloads a watermarked report; an unknown vendor is refused in review; staff see both', async () => {
    const admin = await staffPage(browser, url, (await signedInStaffOn(db, 'admin')).token);
    const consolePage = admin.page;
    await consolePage.goto(`${url}/console/access/rules`);
    await consolePage.getByLabel('Pattern').fill('partner.example');
    await consolePage.getByLabel('Approve', { exact: true }).check();
    await consolePage.getByRole('button', { name: 'Save rule' }).click();
    await expect.poll(() => consolePage.locator('#access-rules').textContent()).toContain('partner.example');

    // Alice: approved by the rule
    const visitor = await browser.newContext({ acceptDownloads: true });
    visitor.setDefaultTimeout(15_000);
    const page = await visitor.newPage();
    const problems = await watchProblems(page);
    const answer = await askAndConfirm(page, { name: 'Alice Archer', email: alice, company: 'Partner Bank' });
    expect(answer).toBe('Your request is approved: we emailed you a sign-in link.');
    await page.goto(await emailedLink(alice, '/documents/sign-in/', 2));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/documents\/nda$/);
    await page.getByLabel('Full name').fill('Alice Archer');
    await page.getByLabel(/I agree/).check();
    await page.getByRole('button', { name: 'Accept the agreement' }).click();
    await page.waitForURL(/\/documents\/library$/);
    await accessible(page, 'library');
    await page.screenshot({ path: screenshotPath(engine, 'access-story-library'), fullPage: true });
    // a copy of what was accepted reaches her
    await expect.poll(() => resend.emailsTo(alice).length, { timeout: 20_000 }).toBe(3);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).first().click()]);
    const saved = join(tempDir('candor-download-'), 'report.pdf');
    await download.saveAs(saved);
    const pages = await pageTexts(readFileSync(saved));
    expect(pages.length).toBeGreaterThan(0);
    for (const [i, text] of pages.entries()) {
      for (const part of ['Alice Archer', 'Partner Bank', alice]) expect(text, `page ${i + 1}`).toContain(winAnsi(part));
    }

    // Bob: no rule names his domain, so he waits for review, and an admin refuses
    const second = await browser.newContext();
    second.setDefaultTimeout(15_000);
    const bobPage = await second.newPage();
    const bobProblems = await watchProblems(bobPage);
    expect(await askAndConfirm(bobPage, { name: 'Bob Brown', email: bob, company: 'Unknown Vendor' })).toBe(
      'Thank you: your email address is confirmed. We will email you the answer.',
    );
    await consolePage.goto(`${url}/console/access`);
    await expect.poll(() => consolePage.locator('#pending-table').textContent()).toContain(bob);
    await consolePage
      .locator('#pending-table')
      .getByRole('link', { name: /^Review #/ })
      .click();
    await consolePage.getByLabel('Message to the requester').fill('We share these reports with customers under contract only.');
    await consolePage.getByRole('button', { name: 'Refuse and email this message' }).click();
    await expect.poll(() => consolePage.locator('#request-status').textContent()).toContain('Refused');
    await expect.poll(() => resend.emailsTo(bob).length, { timeout: 20_000 }).toBe(2);
    expect(resend.emailsTo(bob)[1]?.text).toContain('We share these reports with customers under contract only.');
    expect(resend.emailsTo(bob)[1]?.text).not.toContain('unknown-vendor.example');

    // Console → Access shows both: Alice's grant and her download, Bob's refusal
    await consolePage.goto(`${url}/console/access`);
    const decided = (await consolePage.locator('#decided-table').textContent()) ?? '';
    expect(decided).toContain(alice);
    expect(decided).toContain(bob);
    expect(decided).toMatch(/rule partner\.example/);
    expect(await consolePage.locator('#grants').locator('..').textContent()).toContain('Alice Archer');
    const activity = (await consolePage.locator('#recent-views-table').textContent()) ?? '';
    expect(activity).toContain('Alice Archer');
    expect(activity).toContain('download');
    expect(await consolePage.locator('#acceptances-table').textContent()).toContain('Alice Archer');
    await accessible(consolePage, 'Console → Access');
    await consolePage.screenshot({ path: screenshotPath(engine, 'access-story-console'), fullPage: true });

    // …and in the audit log
    await consolePage.goto(`${url}/console/audit`);
    const audit = (await consolePage.locator('main').textContent()) ?? '';
    for (const action of ['access.request.approved', 'access.request.refused', 'access.nda.accepted', 'access.rule.saved'])
      expect(audit, action).toContain(action);
    expect(problems).toEqual([]);
    expect(bobProblems).toEqual([]);
    expect(admin.problems).toEqual([]);
    await visitor.close();
    await second.close();
    await admin.context.close();
  }, 180_000);
});
