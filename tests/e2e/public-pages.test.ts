/**
 * The public trust center as a reader meets it: the built site served by
 * the real server, driven in Chromium. Expected values come from content/
 * through the project's loader, so the test follows the content rather than
 * a copy of it.
 * On each engine (tests/helpers/engine-server.ts): SQLite, and PostgreSQL
 * under row-level security when CANDOR_TEST_POSTGRES_URL is set; the pages
 * are the same on both, and PostgreSQL's screenshots are suffixed -postgres.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadContent, type TrustContent } from '../../src/core/content/load.ts';
import type { Subprocessor } from '../../src/core/content/schema.ts';
import { axeViolations, formatViolations } from '../helpers/axe.ts';
import { launchChromium, watchProblems } from '../helpers/browser.ts';
import { type ServerOnEngine, screenshotPath, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';

const content: TrustContent = loadContent(join(ROOT, 'content'));
const NO_MATCH_QUERY = 'zqxjvwkplumb';

let browser: Browser;
/** The server of the engine whose pass is running (the passes run one after the other). */
let running: ServerOnEngine;
let server: RunningServer;

beforeAll(async () => {
  mkdirSync(join(ROOT, 'test-output/screenshots'), { recursive: true });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

interface Opened {
  context: BrowserContext;
  page: Page;
  problems: string[];
}
let opened: Opened[] = [];

async function openPage(options: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext(options);
  // Below the vitest timeout, so a stuck wait fails with Playwright's message.
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = await watchProblems(page);
  opened.push({ context, page, problems });
  return page;
}

/** A page with scripts disabled, as a reader who blocks them sees it (nothing runs, so there is nothing to watch). */
async function visitWithoutScripts(path: string, options: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext({ ...options, javaScriptEnabled: false });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  opened.push({ context, page, problems: [] });
  const response = await page.goto(`${server.url}${path}`);
  expect(response?.status(), `GET ${path}`).toBe(200);
  return page;
}

async function visit(path: string, options: BrowserContextOptions = {}): Promise<Page> {
  const page = await openPage(options);
  const response = await page.goto(`${server.url}${path}`);
  expect(response?.status(), `GET ${path}`).toBe(200);
  return page;
}

/** A screenshot named for the engine of the running pass (screenshotPath). */
async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: screenshotPath({ name: running.engine }, name), fullPage });
}

/** Ids of the subprocessor table's rows (sorted: the order is the page's choice) and its caption. */
async function subprocessorTable(page: Page): Promise<{ ids: string[]; caption: string }> {
  const ids = await page.locator('#subprocessors tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id') ?? ''));
  const caption = (await page.locator('#subprocessors caption').textContent())?.trim() ?? '';
  return { ids: ids.sort(), caption };
}

function idsWhere(match: (s: Subprocessor) => boolean): string[] {
  return content.subprocessors
    .filter(match)
    .map((s) => s.id)
    .sort();
}

/** The category shared by the most subprocessors but not by all, so filtering visibly narrows the table. */
function narrowingValue(key: 'category'): string {
  const counts = new Map<string, number>();
  for (const s of content.subprocessors) counts.set(s[key], (counts.get(s[key]) ?? 0) + 1);
  const candidates = [...counts].filter(([, n]) => n < content.subprocessors.length).sort((a, b) => b[1] - a[1]);
  const best = candidates[0];
  if (!best) throw new Error(`every subprocessor has the same ${key}; the filter cannot be exercised`);
  return best[0];
}

async function submitFilter(page: Page): Promise<void> {
  await Promise.all([page.waitForURL(/\/subprocessors\?/), page.getByRole('button', { name: 'Filter' }).click()]);
}

async function searchFor(page: Page, query: string): Promise<void> {
  // The form falls back to a full page load until the module script has attached its handler.
  await page.locator('html[data-search-ready="true"]').waitFor({ state: 'attached' });
  await page.getByRole('searchbox', { name: 'Search the documents' }).fill(query);
  await page.getByRole('button', { name: 'Search' }).click();
}

async function pageWidth(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

/** Whether the element's top edge is within the visible part of the page. */
async function isScrolledIntoView(page: Page, selector: string): Promise<boolean> {
  return page.locator(selector).evaluate((el) => {
    const { top } = el.getBoundingClientRect();
    return top >= -1 && top < window.innerHeight;
  });
}

describe.each(serverEnginesUnderTest())('public trust center in Chromium, on $name', (engine) => {
  beforeAll(async () => {
    running = await engine.start();
    server = running.server;
    // The server imports an on-demand route's module on its first request; loading it now keeps
    // the run independent of a build that replaces dist/ meanwhile (another `npm test`, `npm start`).
    expect((await fetch(`${server.url}/subprocessors`)).status).toBe(200);
  });

  afterAll(async () => {
    await running?.stop();
  });

  afterEach(async () => {
    const done = opened;
    opened = [];
    await Promise.all(done.map((o) => o.context.close()));
    expect(
      done.flatMap((o) => o.problems),
      'console errors, uncaught exceptions or CSP violations',
    ).toEqual([]);
  });

  it('home page names the organisation, shows its compliance and links every document', async () => {
    const page = await visit('/');
    const { site } = content;
    await expect(page.title()).resolves.toBe(`${site.organisation.name} Trust Center`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`${site.organisation.name} Trust Center`);

    const badges = page.locator('.badges > li');
    expect(await badges.count()).toBe(site.compliance.length);
    for (const item of site.compliance) {
      const badge = badges.filter({ has: page.getByRole('link', { name: item.name, exact: true }) });
      await expect(badge.getByRole('link').getAttribute('href')).resolves.toBe(`/docs/${item.doc}`);
      expect(await badge.locator('.status').textContent()).not.toBe('');
    }

    for (const section of site.sections) {
      const card = page.locator('.card').filter({ has: page.getByRole('heading', { name: section.title, exact: true }) });
      const hrefs = await card
        .getByRole('listitem')
        .getByRole('link')
        .evaluateAll((links) => links.map((a) => a.getAttribute('href')));
      expect(hrefs, `links of section ${section.id}`).toEqual(section.docs.map((slug) => `/docs/${slug}`));
    }
    const linked = new Set(site.sections.flatMap((s) => s.docs));
    for (const slug of linked) {
      const response = await page.request.get(`${server.url}/docs/${slug}`);
      expect(response.status(), `/docs/${slug}`).toBe(200);
    }

    const subscribe = page.locator('.cta').getByRole('link', { name: 'Subscribe to updates' });
    await expect(subscribe.getAttribute('href')).resolves.toBe('/subscribe');
    await expect(subscribe.isVisible()).resolves.toBe(true);
    await screenshot(page, 'home-light');
  });

  it('Tab first reaches the skip link, which moves focus to the main content', async () => {
    const page = await visit('/');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const box = el?.getBoundingClientRect();
      return { text: el?.textContent?.trim(), href: el?.getAttribute('href'), visible: box !== undefined && box.left >= 0 && box.top >= 0 };
    });
    expect(focused).toEqual({ text: 'Skip to content', href: '#main', visible: true });
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
  });

  it('a document page has its title, last-updated date and a table of contents that jumps to headings', async () => {
    const doc = content.docs.find((d) => d.slug === 'encryption');
    if (!doc) throw new Error('content/docs/encryption.md is missing');
    const page = await visit('/docs/encryption');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(doc.title);
    expect(await page.title()).toContain(doc.title);
    const updated = page.locator('.meta', { hasText: 'Last updated' }).locator('time');
    await expect(updated.getAttribute('datetime')).resolves.toBe(doc.updated.toISOString().slice(0, 10));

    const tocLinks = page.getByRole('navigation', { name: 'On this page' }).getByRole('link');
    const entries = await tocLinks.evaluateAll((links) =>
      links.map((a) => ({ href: a.getAttribute('href') ?? '', text: a.textContent ?? '' })),
    );
    expect(entries.length).toBeGreaterThan(1);
    // From the last entry back, so every jump scrolls against the previous position.
    for (const entry of [...entries].reverse()) {
      await page.getByRole('navigation', { name: 'On this page' }).getByRole('link', { name: entry.text, exact: true }).click();
      await page.waitForURL(`**/docs/encryption${entry.href}`);
      const heading = page.locator(`:is(h2, h3)${entry.href}`);
      expect(await heading.textContent(), entry.href).toBe(entry.text);
      expect(await isScrolledIntoView(page, `:is(h2, h3)${entry.href}`), `${entry.href} in view`).toBe(true);
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'doc');
  });

  it('the documents page shows a card per document: a lock and a link to ask for access on gated ones, a download on public ones', async () => {
    const page = await visit('/documents', { viewport: { width: 1280, height: 900 } });
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Documents');
    const cards = page.locator('#documents > li');
    await expect(cards.count()).resolves.toBe(content.documents.length);
    for (const d of content.documents) {
      const card = page.locator(`#documents > li[data-slug="${d.slug}"]`);
      await expect(card.getByRole('heading', { level: 2 }).textContent()).resolves.toBe(d.title);
      if (d.access === 'nda') {
        await expect(card.locator('.access-nda svg').count()).resolves.toBe(1);
        await expect(card.getByText('Available under NDA').isVisible()).resolves.toBe(true);
        await expect(card.getByRole('link', { name: `Ask for access to ${d.title}` }).getAttribute('href')).resolves.toBe(
          `/documents/request?document=${d.slug}`,
        );
        await expect(card.getByRole('link', { name: 'Download PDF' }).count()).resolves.toBe(0);
      } else {
        const link = card.getByRole('link', { name: 'Download PDF' });
        await expect(link.getAttribute('href')).resolves.toBe(`/documents/${d.slug}.pdf`);
        const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
        expect(download.suggestedFilename()).toBe(`${d.slug}.pdf`);
      }
    }
    await screenshot(page, 'documents');
  });

  it('the subprocessor filter narrows the table by purpose, then by location, then clears', async () => {
    const page = await visit('/subprocessors');
    const total = content.subprocessors.length;
    expect(await subprocessorTable(page)).toEqual({ ids: idsWhere(() => true), caption: `Showing ${total} of ${total} subprocessors` });

    const category = narrowingValue('category');
    await screenshot(page, 'subprocessors-desktop');
    await page.getByLabel('Purpose').selectOption(category);
    await submitFilter(page);
    const byCategory = idsWhere((s) => s.category === category);
    expect(await subprocessorTable(page)).toEqual({ ids: byCategory, caption: `Showing ${byCategory.length} of ${total} subprocessors` });
    await expect(page.getByLabel('Purpose').inputValue()).resolves.toBe(category);
    await screenshot(page, 'subprocessors-filtered');

    // A country finds every entry that processes data there, alone or with other countries, and those working worldwide.
    await page.getByLabel('Purpose').selectOption('');
    await page.getByLabel('Location').selectOption({ label: 'Germany' });
    await submitFilter(page);
    expect(new URL(page.url()).searchParams.get('location')).toBe('DE');
    const inGermany = idsWhere((s) => s.countries.includes('DE') || s.regions.includes('worldwide'));
    expect(inGermany.length).toBeGreaterThan(1);
    expect(await subprocessorTable(page)).toEqual({ ids: inGermany, caption: `Showing ${inGermany.length} of ${total} subprocessors` });
    const cells = await page.locator('#subprocessors tbody tr td.location').allTextContents();
    for (const cell of cells) expect(cell).toMatch(/Germany|Worldwide/);
    expect((await page.locator('#worldwide-note').textContent())?.trim()).toMatch(/data worldwide, so it is listed for Germany too\.$/);
    await screenshot(page, 'subprocessors-germany');

    // The region: every entry in a member country of the EU/EEA.
    await page.getByLabel('Location').selectOption({ label: 'EU/EEA' });
    await submitFilter(page);
    const eea = [
      'AT',
      'BE',
      'BG',
      'HR',
      'CY',
      'CZ',
      'DK',
      'EE',
      'FI',
      'FR',
      'DE',
      'GR',
      'HU',
      'IE',
      'IT',
      'LV',
      'LT',
      'LU',
      'MT',
      'NL',
    ].concat(['PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE', 'IS', 'LI', 'NO']);
    const inEea = idsWhere((s) => s.countries.some((c) => eea.includes(c)) || s.regions.length > 0);
    expect(await subprocessorTable(page)).toEqual({ ids: inEea, caption: `Showing ${inEea.length} of ${total} subprocessors` });

    await Promise.all([page.waitForURL(/\/subprocessors$/), page.getByRole('link', { name: 'Clear filter' }).click()]);
    expect((await subprocessorTable(page)).caption).toBe(`Showing ${total} of ${total} subprocessors`);
    await expect(page.getByLabel('Location').inputValue()).resolves.toBe('');
    expect(await page.getByRole('link', { name: 'Clear filter' }).count()).toBe(0);
  });

  it('search finds a document in the Pagefind index and says when nothing matches', async () => {
    const page = await visit('/search');
    await searchFor(page, 'encryption');
    const results = page.locator('#search-results > li');
    await results.first().waitFor();
    const hrefs = await results.getByRole('link').evaluateAll((links) => links.map((a) => a.getAttribute('href') ?? ''));
    expect(
      hrefs.some((h) => /^\/docs\/encryption\/?$/.test(h)),
      `result links: ${hrefs.join(', ')}`,
    ).toBe(true);
    expect(await page.locator('#search-status').textContent()).toMatch(/^\d+ documents? match “encryption”\.$/);
    expect(new URL(page.url()).searchParams.get('q')).toBe('encryption');
    await screenshot(page, 'search');

    await searchFor(page, NO_MATCH_QUERY);
    await page.locator('#search-status', { hasText: `Nothing matches “${NO_MATCH_QUERY}”.` }).waitFor();
    expect(await results.count()).toBe(0);

    await searchFor(page, 'encryption');
    const first = results.getByRole('link', { name: 'Encryption', exact: true });
    await Promise.all([page.waitForURL(/\/docs\/encryption\/?$/), first.click()]);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Encryption');
  });

  it('search finds subprocessors by name and by purpose, and leads to their row on /subprocessors', async () => {
    const stripe = content.subprocessors.find((s) => s.id === 'stripe');
    const twilio = content.subprocessors.find((s) => s.id === 'twilio');
    if (!stripe || !twilio) throw new Error('the demo content has Stripe and Twilio');
    const page = await visit('/search');
    const found = page.locator('#subprocessor-results > li');

    // by name
    await searchFor(page, stripe.name);
    await found.first().waitFor();
    expect(await found.getByRole('link').evaluateAll((links) => links.map((a) => a.getAttribute('href')))).toEqual([
      '/subprocessors#sp-stripe',
    ]);
    expect(await found.first().textContent()).toContain(stripe.entity);
    await expect(page.getByRole('heading', { name: 'Subprocessors', level: 2 }).isVisible()).resolves.toBe(true);

    // by purpose: words of the purpose, not of the name
    await searchFor(page, 'invoicing');
    await page.locator('#subprocessor-results > li a[href="/subprocessors#sp-stripe"]').waitFor();
    await searchFor(page, 'one-time codes');
    await page.locator('#subprocessor-results > li a[href="/subprocessors#sp-twilio"]').waitFor();
    expect(await found.locator('mark').first().textContent()).toMatch(/^one-time$/i);
    // the status is written when the docs' search has answered too, which may come after the subprocessors
    await expect.poll(() => page.locator('#search-status').textContent()).toMatch(/1 subprocessor/);
    await screenshot(page, 'search-subprocessors');

    // the result opens the list at that subprocessor
    await Promise.all([page.waitForURL(/\/subprocessors#sp-twilio$/), found.getByRole('link', { name: twilio.name }).click()]);
    const row = page.locator('#sp-twilio');
    expect(await row.getAttribute('data-id')).toBe('twilio');
    expect(await isScrolledIntoView(page, '#sp-twilio')).toBe(true);
  });

  it('search results with subprocessors have no accessibility violations', async () => {
    const page = await visit('/search?q=payments');
    await page.locator('#subprocessor-results > li').first().waitFor();
    const violations = await axeViolations(page);
    expect(violations, formatViolations('/search?q=payments', violations)).toEqual([]);
  });

  describe('the header navigation', () => {
    const NAV = ['Overview', 'Documentation', 'Documents', 'Status', 'Subprocessors', 'Changes', 'Search', 'Subscribe'];

    /** How many lines the header's visible text takes: distinct top edges of its visible links and buttons. */
    async function headerLines(page: Page): Promise<number> {
      return page.locator('header.site-header').evaluate((header) => {
        const tops = new Set<number>();
        for (const el of Array.from(header.querySelectorAll('a, summary'))) {
          const box = el.getBoundingClientRect();
          if (el.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true }) && box.width > 0)
            tops.add(Math.round(box.top / 8));
        }
        return tops.size;
      });
    }

    /** The main navigation's links a reader can see, by name. */
    async function visibleNavLinks(page: Page): Promise<string[]> {
      const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
      const names: string[] = [];
      for (const link of await links.all()) if (await link.isVisible()) names.push((await link.textContent())?.trim() ?? '');
      return names;
    }

    it.each([360, 390, 414])('at %i px it takes at most two lines, and a menu without JavaScript opens every section', async (width) => {
      const page = await visitWithoutScripts('/subprocessors', { viewport: { width, height: 800 } });
      expect(await headerLines(page), `lines of the header at ${width} px`).toBeLessThanOrEqual(2);
      expect(await pageWidth(page)).toBeLessThanOrEqual(width);
      // a <summary>: a disclosure button for assistive technology, which Playwright's roles do not map
      const menu = page.locator('header summary', { hasText: 'Menu' });
      await expect(menu.isVisible()).resolves.toBe(true);
      await menu.click();
      expect(await visibleNavLinks(page)).toEqual(NAV);
      await expect(
        page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Subprocessors' }).getAttribute('aria-current'),
      ).resolves.toBe('page');
      if (width === 390) await screenshot(page, 'mobile-menu-open', false);
      await Promise.all([
        page.waitForURL(/\/changes$/),
        page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Changes' }).click(),
      ]);
      expect(await headerLines(page)).toBeLessThanOrEqual(2);
    });

    it.each(['light', 'dark'] as const)('the open menu has no accessibility violations (%s)', async (colorScheme) => {
      const page = await visit('/changes', { viewport: { width: 390, height: 800 }, colorScheme });
      await page.locator('header summary', { hasText: 'Menu' }).click();
      const violations = await axeViolations(page);
      expect(violations, formatViolations(`/changes with the menu open (390 px, ${colorScheme})`, violations)).toEqual([]);
      if (colorScheme === 'dark') await screenshot(page, 'mobile-menu-open-dark', false);
    });

    it('opens from the keyboard', async () => {
      const page = await visit('/', { viewport: { width: 390, height: 800 } });
      await page.keyboard.press('Tab'); // skip link
      await page.keyboard.press('Tab'); // brand
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Menu');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Overview');
    });

    it('is one line of links on a desktop screen, with no menu button', async () => {
      const page = await visit('/subprocessors', { viewport: { width: 1280, height: 800 } });
      expect(await visibleNavLinks(page)).toEqual(NAV);
      expect(await headerLines(page)).toBe(1);
      await expect(page.locator('header summary', { hasText: 'Menu' }).isVisible()).resolves.toBe(false);
    });
  });

  describe('on a 390 × 844 phone screen', () => {
    const phone: BrowserContextOptions = { viewport: { width: 390, height: 844 } };

    it.each(['/', '/docs', '/documents', '/subprocessors', '/search?q=payments', '/api'])('%s does not scroll sideways', async (path) => {
      const page = await visit(path, phone);
      if (path.startsWith('/search')) await page.locator('#subprocessor-results > li').first().waitFor();
      expect(await pageWidth(page)).toBeLessThanOrEqual(390);
      if (path === '/') await screenshot(page, 'mobile-home');
      if (path === '/documents') await screenshot(page, 'mobile-documents');
      if (path.startsWith('/search')) await screenshot(page, 'mobile-search');
      if (path === '/api') {
        await screenshot(page, 'mobile-api', false);
        const violations = await axeViolations(page);
        expect(violations, formatViolations('/api (390 px)', violations)).toEqual([]);
      }
    });

    // Docs with tables wider than a phone: each table scrolls inside its own focusable region.
    it.each(['/docs/encryption', '/docs/access-control', '/docs/data-retention', '/docs/hosting-and-providers'])(
      '%s does not scroll sideways, and its tables are keyboard-scrollable',
      async (path) => {
        const page = await visit(path, phone);
        expect(await pageWidth(page)).toBeLessThanOrEqual(390);
        const violations = await axeViolations(page);
        expect(violations, formatViolations(`${path} (390 px)`, violations)).toEqual([]);
      },
    );

    it('/subprocessors shows each subprocessor as a card, no sideways scrolling, and stays a table for assistive technology', async () => {
      const page = await visit('/subprocessors', phone);
      const region = await page.locator('.table-wrap').evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
      expect(region.scroll).toBeLessThanOrEqual(region.client);
      // each field is labelled on screen, as the column header names it
      const labels = await page
        .locator('#subprocessors tbody tr')
        .first()
        .locator('td')
        .evaluateAll((cells) => cells.map((td) => getComputedStyle(td, '::before').content));
      expect(labels.map((l) => /"([^"]+)"/.exec(l)?.[1])).toEqual([
        'Purpose',
        'Data categories',
        'Location',
        'Transfer mechanism',
        'Since',
      ]);
      // what Chromium gives screen readers: still one table, a row per subprocessor with its row header
      const cdp = await page.context().newCDPSession(page);
      const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as { nodes: { role?: { value?: string } }[] };
      const count = (role: string) => nodes.filter((n) => n.role?.value === role).length;
      const total = content.subprocessors.length;
      expect({ table: count('table'), row: count('row'), rowheader: count('rowheader'), columnheader: count('columnheader') }).toEqual({
        table: 1,
        row: total + 1,
        rowheader: total,
        columnheader: 6,
      });
      await screenshot(page, 'subprocessors-phone');
    });

    it('a code block too wide for the screen leaves no region a keyboard cannot scroll', async () => {
      const page = await visit('/docs/tenant-isolation', phone);
      expect(await page.locator('.prose pre').count()).toBeGreaterThan(0);
      const violations = await axeViolations(page);
      expect(violations, formatViolations('/docs/tenant-isolation (390 px)', violations)).toEqual([]);
    });
  });

  describe.each(['light', 'dark'] as const)('accessibility (axe-core), %s colour scheme', (colorScheme) => {
    it.each([
      '/',
      '/docs',
      '/docs/encryption',
      '/documents',
      '/documents/request?document=soc-2-type-ii-report',
      '/documents/sign-in',
      '/subprocessors',
      '/subprocessors?location=DE',
      '/search?q=encryption',
      '/api',
    ])('%s has no violations', async (path) => {
      const page = await visit(path, { colorScheme });
      if (path.startsWith('/search')) await page.locator('#search-results > li').first().waitFor();
      const violations = await axeViolations(page);
      expect(violations, formatViolations(`${path} (${colorScheme})`, violations)).toEqual([]);
      if (path === '/' && colorScheme === 'dark') await screenshot(page, 'home-dark');
      if (path === '/api' && colorScheme === 'light') await screenshot(page, 'api', false);
      if (path === '/subprocessors' && colorScheme === 'dark') await screenshot(page, 'subprocessors-dark', false);
      if (path === '/documents' && colorScheme === 'dark') await screenshot(page, 'documents-dark');
    });
  });
});
