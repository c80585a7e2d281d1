/**
 * Runs axe-core inside a page. The source is evaluated through the DevTools
 * protocol rather than added as a <script>: the pages' CSP (rightly) refuses
 * inline scripts, and loosening it for the check would test another page.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(join(dirname(require.resolve('axe-core')), 'axe.min.js'), 'utf8');

export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  targets: string[];
}

export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(() => 'axe' in globalThis);
  if (!loaded) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    const { axe } = globalThis as unknown as { axe: typeof import('axe-core') };
    const results = await axe.run(document, { runOnly: tags, resultTypes: ['violations'] });
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      helpUrl: v.helpUrl,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  }, AXE_TAGS);
}

/** One block per rule, so a failing assertion says what to fix and where. */
export function formatViolations(where: string, violations: readonly AxeViolation[]): string {
  if (violations.length === 0) return `${where}: no accessibility violations`;
  const blocks = violations.map((v) => {
    const targets = v.targets.slice(0, 10).map((t) => `    - ${t}`);
    if (v.targets.length > 10) targets.push(`    … and ${v.targets.length - 10} more`);
    return [`  ${v.id} (${v.impact ?? 'no impact'}): ${v.help}`, `    ${v.helpUrl}`, ...targets].join('\n');
  });
  return `${where}: ${violations.length} accessibility violation(s)\n${blocks.join('\n')}`;
}
