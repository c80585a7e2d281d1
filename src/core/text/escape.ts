/** Escaping text for XML, HTML and Slack output: feeds, TwiML, emails, Slack messages. */

/** Characters XML 1.0 does not allow at all (C0 controls but tab, LF, CR; U+FFFE/U+FFFF; lone surrogates). */
const NOT_XML_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * Text or attribute value, escaped so that a parser gives back exactly `value`
 * (less characters XML cannot carry). Markup in it stays text: `<script>`
 * becomes `&lt;script&gt;`. CDATA is not used, so `]]>` needs no special case.
 */
export function escapeXml(value: string): string {
  return (
    value
      .replace(NOT_XML_CHARACTER, '')
      .replaceAll('&', '&amp;')
      .replaceAll('<', '&lt;')
      .replaceAll('>', '&gt;')
      .replaceAll('"', '&quot;')
      // a parser would turn a literal CR into LF
      .replaceAll('\r', '&#13;')
  );
}

/** Plain text as HTML, for elements that readers interpret as HTML (RSS `description`). */
export function escapeHtml(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

export const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>';

/** Slack reads `&`, `<` and `>` as control characters (mentions, links): user text must never carry them raw. */
export function escapeSlack(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
