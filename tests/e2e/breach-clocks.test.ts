/**
 * The breach clocks and whom each notice reached, in Chromium: a targeted
 * notice that reached no one and a notice of which an email bounced are
 * said in words (not by colour alone) on the incident page and the
 * dashboard, and both pages pass axe.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { inArray } from 'drizzle-orm';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../db/engine/types.ts';
import { startFakeResend } from '../fakes/resend.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, staffPage } from '../helpers/browser.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { readRows, type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { addSubscribersTo, TEST_KEYS } from '../helpers/notify.ts';
import { keepOrganisationOn } from '../helpers/organisations.ts';
import { pageText, until } from '../helpers/page.ts';
import { providerEnv } from '../helpers/provider-env.ts';
import { freePort, ROOT, type RunningServer } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const WEBHOOK_SECRET = `whsec_${Buffer.from('breach-clock-e2e-webhook-secret!').toString('base64')}`;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

const breach = (title: string) => ({
  title,
  kind: 'breach',
  severity: 'critical',
  status: 'identified',
  'component:web-app': 'operational',
  body: 'We found unauthorised access to data exports.',
  breachAwareAt: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
  breachNature: 'A leaked support credential.',
  breachSubjects: 'not yet known',
  breachRecords: 'not yet known',
  breachConsequences: 'not yet known',
  breachMeasures: 'Credential revoked.',
});

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;
  let resend: Awaited<ReturnType<typeof startFakeResend>>;
  let db: Database;

  beforeAll(async () => {
    resend = await startFakeResend();
    const port = await freePort();
    running = await engine.start({
      port,
      env: { ...providerEnv({ port, resend, testKeys: true }), RESEND_WEBHOOK_SECRET: WEBHOOK_SECRET },
    });
    server = running.server;
    db = running.database;
    await addSubscribersTo(db, TEST_KEYS, { count: 2, channel: 'email', address: (i) => `dpo${i}@customer.example` });
  });
  afterAll(async () => {
    await running?.stop();
    await resend?.close();
  });

  describe('breach clocks in Chromium', () => {
    it('say in words which notices reached no one or not everyone, on the incident page and the dashboard', async () => {
      const { token } = await signedInStaffOn(db, 'responder');
      const client = new ConsoleClient(server.url);
      client.setCookie('candor_session', token);
      const quiet = await keepOrganisationOn(db, 'Quiet GmbH', { domains: ['quiet.example'] });
      const nobody = await client.post('/console/incidents/new?_action=publishIncident', {
        ...breach('Export of a quiet customer'),
        [`organisation:${quiet}`]: 'yes',
        confirmNoRecipients: 'yes',
      });
      expect(nobody.status).toBe(303);
      const bounced = await client.post('/console/incidents/new?_action=publishIncident', breach('Exports of every workspace'));
      expect(bounced.status).toBe(303);
      const id = /\/console\/incidents\/(\d+)/.exec(bounced.location ?? '')?.[1] ?? '';
      await until(() => resend.emails.length === 2, 'the two emails');
      // The bounce must come after the dispatcher recorded both sends (it records after the provider answers): a
      // bounce for a message not yet recorded finds nothing to fail, and the clock would rightly say "met".
      await until(
        async () =>
          (
            await readRows(db, (q) =>
              q.db
                .select({ id: q.t.deliveries.id })
                .from(q.t.deliveries)
                .where(inArray(q.t.deliveries.status, ['sent', 'delivered'])),
            )
          ).length === 2,
        'both sends recorded',
      );
      const email = resend.emails.find((e) => e.to.includes('dpo1@customer.example'));
      if (!email) throw new Error('no email to dpo1');
      const bounce = await resend.postWebhook(`${server.url}/webhooks/resend`, WEBHOOK_SECRET, { type: 'email.bounced', email });
      expect(bounce.status).toBe(200);

      const { context, page, problems } = await staffPage(browser, server.url, token);

      await page.goto(`${server.url}/console/incidents/${id}`);
      const notify = page.locator('#breach-clocks tr', { hasText: 'Notify customers within 72 h' });
      await expect
        .poll(async () => pageText(await notify.locator('td').nth(2).innerHTML()).trim())
        .toMatch(/^not met: not everyone was reached/);
      const notice = page.locator('#breach-notices tbody tr').first();
      expect(pageText(await notice.innerHTML())).toMatch(/Not everyone reached · 1 of 2; 1 failed/);
      expect(await notice.getByRole('link', { name: '1 failed' }).getAttribute('href')).toMatch(
        /^\/console\/deliveries\/\d+\?status=failed$/,
      );
      const a11y = await axeViolations(page);
      expect(a11y, formatViolations('breach incident page', a11y)).toEqual([]);
      await page.screenshot({ path: screenshotPath(engine, 'console-breach-clocks'), fullPage: true });

      await page.goto(`${server.url}/console`);
      const clocks = page.locator('#breach-clocks');
      expect(pageText(await clocks.innerHTML())).toMatch(
        /Export of a quiet customer ?: Notify customers within 72 h not met: the notices reached no one/,
      );
      expect(pageText(await clocks.innerHTML())).toMatch(
        /Exports of every workspace ?: Notify customers within 72 h not met: not everyone was reached/,
      );
      const dashboardA11y = await axeViolations(page);
      expect(dashboardA11y, formatViolations('dashboard', dashboardA11y)).toEqual([]);
      await page.screenshot({ path: screenshotPath(engine, 'console-dashboard-breach-clocks'), fullPage: true });
      expect(problems).toEqual([]);
      await context.close();
    });
  });
});
