/**
 * In Chromium, on each engine: a visitor asks for a gated document from its card on /documents, confirms
 * with the button behind the emailed link, and an admin approves it from the request's console page; an
 * admin adds a rule. Every page on the way is axe-clean (light scheme) and shows no console problems.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT } from '../helpers/server.ts';
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
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let db: Database;
  let url: string;

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

  it('ask, confirm, approve; and a rule added', async () => {
    const { token } = await signedInStaffOn(db, 'admin');
    const visitor = await browser.newContext();
    visitor.setDefaultTimeout(15_000);
    const page = await visitor.newPage();
    const problems = await watchProblems(page);
    await page.goto(`${url}/documents`);
    await page.getByRole('link', { name: 'Ask for access to SOC 2 Type II report' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Ask for documents');
    await expect.poll(() => page.getByLabel('SOC 2 Type II report').isChecked()).toBe(true);
    await page.getByLabel('Name', { exact: true }).fill('Dana Reviewer');
    await page.getByLabel('Work email').fill('dana@acme.example');
    await page.getByLabel('Company', { exact: true }).fill('Acme Corp');
    await page.getByLabel('Reason').fill('Vendor security review');
    await page.getByRole('button', { name: 'Ask for access' }).click();
    await expect.poll(() => page.locator('#request-answer').count()).toBe(1);
    const answered = await axeViolations(page);
    expect(answered, formatViolations('request answer', answered)).toEqual([]);

    await expect.poll(() => resend.emailsTo('dana@acme.example').length, { timeout: 20_000 }).toBe(1);
    const link = /https?:\/\/\S+\/documents\/verify\/[\w.-]+/.exec(resend.emailsTo('dana@acme.example')[0]?.text ?? '')?.[0] ?? '';
    expect(link).not.toBe('');
    await page.goto(link);
    await expect.poll(() => page.locator('#request-summary').count()).toBe(1);
    const verify = await axeViolations(page);
    expect(verify, formatViolations('verify page', verify)).toEqual([]);
    await page.screenshot({ path: screenshotPath(engine, 'access-verify'), fullPage: true });
    await page.getByRole('button', { name: 'Confirm my request' }).click();
    await expect.poll(() => page.locator('#verify-answer').textContent()).toContain('We will email you the answer');

    await expect.poll(() => resend.emails.some((e) => e.subject.startsWith('Access request from')), { timeout: 20_000 }).toBe(true);
    const staffEmail = resend.emails.find((e) => e.subject.startsWith('Access request from'));
    const detailUrl = /https?:\/\/\S+\/console\/access\/requests\/\d+/.exec(staffEmail?.text ?? '')?.[0] ?? '';
    expect(detailUrl).not.toBe('');

    const staff = await browser.newContext();
    staff.setDefaultTimeout(15_000);
    await staff.addCookies([{ name: 'candor_session', value: token, url }]);
    const console_ = await staff.newPage();
    const staffProblems = await watchProblems(console_);
    await console_.goto(detailUrl);
    await expect.poll(() => console_.locator('#request-status').textContent()).toContain('Pending');
    const detail = await axeViolations(console_);
    expect(detail, formatViolations('request detail', detail)).toEqual([]);
    await console_.screenshot({ path: screenshotPath(engine, 'console-access-request'), fullPage: true });
    await console_.getByRole('button', { name: 'Approve and email a sign-in link' }).click();
    await expect.poll(() => console_.locator('#request-status').textContent()).toBe('Approved');

    await console_.goto(`${url}/console/access/rules`);
    await console_.getByLabel('Pattern').fill('*.acme.example');
    await console_.getByLabel('Approve', { exact: true }).check();
    await console_.getByRole('button', { name: 'Save rule' }).click();
    await expect.poll(() => console_.locator('#access-rules').textContent()).toContain('*.acme.example');
    const rules = await axeViolations(console_);
    expect(rules, formatViolations('rules', rules)).toEqual([]);
    await console_.screenshot({ path: screenshotPath(engine, 'console-access-rules'), fullPage: true });
    expect(problems).toEqual([]);
    expect(staffProblems).toEqual([]);
    await visitor.close();
    await staff.close();
  }, 120_000);
});
