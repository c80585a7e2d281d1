/**
 * Wraps each table of rendered markdown in a region that scrolls sideways
 * on narrow screens. The region is focusable and labelled, so keyboard
 * users can scroll it too (WCAG 2.1.1; axe's scrollable-region-focusable).
 * Works on the HTML the markdown processor produced from trusted content/.
 */
const TABLE = /<table\b[\s\S]*?<\/table>/g;

function label(table: string): string {
  const head = /<thead\b[\s\S]*?<\/thead>/.exec(table)?.[0] ?? '';
  const headers = [...head.matchAll(/<th\b[^>]*>([\s\S]*?)<\/th>/g)]
    .map((m) => (m[1] ?? '').replace(/<[^>]+>/g, '').trim())
    .filter(Boolean);
  // the header texts are already HTML-escaped by the markdown processor
  return headers.length ? `Table: ${headers.join(', ').replaceAll('"', '&quot;')}` : 'Table';
}

export function wrapTables(html: string): string {
  return html.replace(TABLE, (table) => `<div class="table-scroll" role="region" tabindex="0" aria-label="${label(table)}">${table}</div>`);
}
