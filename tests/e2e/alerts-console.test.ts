/**
 * Console → Alerts in Chromium: an Alertmanager alert (sent over HTTP with a token made by
 * createApiToken) waits on the dashboard and in the alerts list; a responder opens the draft, edits its
 * title and publishes it; after the resolved notice the draft page proposes resolving the incident, and
 * the responder does. Each page is axe-clean; screenshots in test-output/screenshots.
 * On each engine (tests/helpers/engine-server.ts).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { createApiToken } from '../../src/core/api/tokens.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer, tempDir } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const SCREENSHOTS = join(ROOT, 'test-output/screenshots');

function payload(status: 'firing' | 'resolved') {
  const alert = {
    status,
    labels: { alertname: 'ProbeFailure', component: 'public-api', severity: 'critical' },
    annotations: { summary: 'BlackBox probe failing: https://api.lumenwork.example' },
    startsAt: '2026-12-03T09:00:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus.internal:9090/graph',
    fingerprint: '1a30ba71cca2921f',
  };
  return {
    version: '4',
    groupKey: '{}:{alertname="ProbeFailure"}',
    status,
    receiver: 'candor',
    groupLabels: { alertname: 'ProbeFailure' },
    commonLabels: alert.labels,
    commonAnnotations: alert.annotations,
    externalURL: 'http://alertmanager.internal:9093',
    alerts: [alert],
  };
}

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let browser: Browser;
  let db: Database;
  let token = '';
  let staffToken = '';
  const shot = (name: string) => join(SCREENSHOTS, engine.name === 'sqlite' ? `${name}.png` : `${name}-${engine.name}.png`);
  const send = (status: 'firing' | 'resolved') =>
    fetch(`${server.url}/api/v1/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(payload(status)),
    });

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    resend = await startFakeResend();
    const port = await freePort();
    running = await engine.start({ port, dataDir: tempDir(), env: providerEnv({ port, resend, testKeys: true }) });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 1, channel: 'email', component: 'public-api', address: () => 'api@customer.example' });
    const staff = await signedInStaffOn(db, 'responder');
    staffToken = staff.token;
    const made = await createApiToken(
      db,
      { id: staff.staffId, email: staff.email, role: 'responder' },
      { ip: null, userAgent: null },
      { name: 'Alertmanager', scopes: ['alerts.ingest'], days: 30 },
      new Date(),
    );
    if (!made.ok) throw new Error(made.message);
    token = made.token;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await running?.stop();
    await resend?.close();
  });

  it('a responder publishes an alert draft and resolves it when the alert resolves', async () => {
    expect((await send('firing')).status).toBe(202);
    const { context, page, problems } = await staffPage(browser, server.url, staffToken);
    await page.goto(`${server.url}/console`);
    const onDashboard = page.locator('#waiting-alert-drafts li');
    await expect.poll(() => onDashboard.count()).toBe(1);
    expect(await onDashboard.textContent()).toContain('Problems with Public API');
    await page.getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.waitForURL(/\/console\/alerts$/);
    expect(await page.locator('#waiting-drafts li').textContent()).toContain('still firing');
    let violations = await axeViolations(page);
    expect(violations, formatViolations('/console/alerts', violations)).toEqual([]);
    await page.screenshot({ path: shot('alerts-list'), fullPage: true });
    await page.locator('#waiting-drafts a').first().click();
    await page.waitForURL(/\/console\/alerts\/\d+$/);
    expect(await page.locator('#preview-recipients').textContent()).toBe('Recipients: email 1 · sms 0 · slack 0 · webhook 0');
    violations = await axeViolations(page);
    expect(violations, formatViolations('/console/alerts/[id]', violations)).toEqual([]);
    await page.screenshot({ path: shot('alert-draft'), fullPage: true });

    await page.getByLabel('Title').fill('Public API unreachable');
    await page.getByRole('button', { name: 'Publish', exact: true }).click();
    await expect.poll(() => page.locator('.notice').first().textContent()).toContain('Published as incident #');
    await expect.poll(() => resend.emails.filter((e) => e.subject.startsWith('[Major outage] Public API unreachable')).length).toBe(1);

    expect((await send('resolved')).status).toBe(202);
    await page.reload();
    const proposal = page.locator('#resolve-proposal');
    expect(await proposal.getByRole('heading').textContent()).toBe('The alert resolved: resolve the incident?');
    violations = await axeViolations(page);
    expect(violations, formatViolations('/console/alerts/[id] (proposal)', violations)).toEqual([]);
    await page.screenshot({ path: shot('alert-draft-resolve'), fullPage: true });
    await proposal.getByLabel('Resolved update').fill('The Public API is reachable again.');
    await page.getByRole('button', { name: 'Resolve incident' }).click();
    await expect.poll(() => page.locator('.notice').first().textContent()).toContain('Resolved: the update went to incident #');
    await expect.poll(() => resend.emails.filter((e) => e.subject === '[Major outage] Public API unreachable — Resolved').length).toBe(1);
    expect(await page.locator('#draft-state').textContent()).toBe('Published, incident resolved');
    expect(problems).toEqual([]);
    await context.close();
  });
});
