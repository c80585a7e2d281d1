/**
 * Issue 14, the layout of /status in Chromium, on a fresh installation: the
 * state column lines up across the groups of services, and a phone shows the
 * last 30 days, wide enough to point at, instead of 90 slivers. Found by
 * what a reader sees (the state words, the days), not by class names.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openServiceGroups } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import type { RunningServer } from '../helpers/server.ts';

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

/** The box of the text itself (not of its cell) of every element whose text is exactly "Operational", and whether it is shown. */
const operationalTexts = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll('main *')]
      .filter((el) => el.children.length === 0 && el.textContent?.trim() === 'Operational')
      .map((el) => {
        const range = document.createRange();
        range.selectNodeContents(el);
        const box = range.getBoundingClientRect();
        return { left: Math.round(box.left), right: Math.round(box.right), visible: el.checkVisibility() };
      }),
  );

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;

  beforeAll(async () => {
    running = await engine.start();
    server = running.server;
  });
  afterAll(async () => {
    await running?.stop();
  });

  describe('/status layout', () => {
    it('the state column lines up across groups', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${server.url}/status`);
      // on a fresh installation every group is operational, so folded, its own state on its summary
      expect((await operationalTexts(page)).filter((b) => b.visible)).toHaveLength(3);
      await page.screenshot({ path: screenshotPath(engine, 'status-groups-folded'), fullPage: true });
      await openServiceGroups(page);
      const boxes = await operationalTexts(page);
      // 11 services and their 3 groups
      expect(boxes.filter((b) => b.visible)).toHaveLength(14);
      expect(new Set(boxes.map((b) => b.left)).size).toBe(1);
      expect(new Set(boxes.map((b) => b.right)).size).toBe(1);
      await page.close();
    });

    it('a phone shows the last 30 days, each wide enough to point at', async () => {
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
      await page.goto(`${server.url}/status`);
      await openServiceGroups(page);
      const days = await page.evaluate(() => {
        const service = document.querySelector('[data-component="web-app"]')?.closest('li, tr')?.parentElement ?? document;
        const cells = [...service.querySelectorAll('[data-date]')].filter((el) => el.getBoundingClientRect().width > 0);
        const start = service.querySelector('[data-component="web-app"]');
        // the days of the web app: those after its row and before the next service's
        const next = service.querySelector('[data-component="help-center"]');
        return cells
          .filter((el) =>
            start ? start.compareDocumentPosition(el) & (Node.DOCUMENT_POSITION_FOLLOWING | Node.DOCUMENT_POSITION_CONTAINED_BY) : true,
          )
          .filter((el) => !next || next.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING)
          .map((el) => ({ date: el.getAttribute('data-date'), width: el.getBoundingClientRect().width }));
      });
      expect(days).toHaveLength(30);
      expect(days.at(-1)?.date).toBe(new Date().toISOString().slice(0, 10));
      expect(Math.min(...days.map((d) => d.width))).toBeGreaterThanOrEqual(7);
      await page.close();
    });
  });
});
