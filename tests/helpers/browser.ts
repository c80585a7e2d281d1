/**
 * Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by
 * playwright-core (never a downloaded browser), and a watcher that records
 * what a reader would never see but must not happen: console errors,
 * uncaught exceptions and Content Security Policy violations.
 */
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

// No network beyond the test server: the machine may be offline and background
// fetches would only add noise to the console.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

const CSP_BINDING = 'candorReportCspViolation';

/**
 * Starts recording problems on a page before its first navigation; returns
 * the live list. The violation listener is installed as an init script,
 * which the page's own CSP does not apply to.
 */
export async function watchProblems(page: Page): Promise<string[]> {
  const problems: string[] = [];
  const where = () => page.url();
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' || text.includes('Content Security Policy')) {
      problems.push(`console ${message.type()} on ${where()}: ${text}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`uncaught ${error.name} on ${where()}: ${error.message}`));
  await page.exposeBinding(CSP_BINDING, (_source, report: string) => {
    problems.push(`CSP violation on ${where()}: ${report}`);
  });
  await page.addInitScript((binding: string) => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = (globalThis as unknown as Record<string, (text: string) => void>)[binding];
      report?.(`${event.effectiveDirective} blocked ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`);
    });
  }, CSP_BINDING);
  return problems;
}

/**
 * A page in a context of its own signed in as staff (the session cookie of `token`, made by
 * signedInStaffOn), with problems watched; close it with `context.close()`.
 */
export async function staffPage(
  browser: Browser,
  serverUrl: string,
  token: string,
  viewport?: { width: number; height: number },
): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext(viewport ? { viewport } : {});
  context.setDefaultTimeout(15_000);
  await context.addCookies([{ name: 'candor_session', value: token, url: serverUrl }]);
  const page = await context.newPage();
  return { context, page, problems: await watchProblems(page) };
}

/** Opens every folded group of services on /status (an all-operational group starts folded), as a reader does: by clicking its summary. */
export async function openServiceGroups(page: Page): Promise<void> {
  const folded = page.locator('details.service-group:not([open]) > summary');
  while ((await folded.count()) > 0) await folded.first().click();
}
