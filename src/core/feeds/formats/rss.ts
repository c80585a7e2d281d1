/** RSS 2.0 (https://www.rssboard.org/rss-specification), with an atom:link self link and content:encoded. */

import { escapeHtml, escapeXml, XML_DECLARATION } from '../../text/escape.ts';
import type { Feed, FeedItem } from '../feed.ts';
import { rfc822 } from './dates.ts';

function item(entry: FeedItem): string {
  const lines = [
    '<item>',
    `  <title>${escapeXml(entry.title)}</title>`,
    `  <link>${escapeXml(entry.url)}</link>`,
    `  <guid isPermaLink="${entry.id === entry.url}">${escapeXml(entry.id)}</guid>`,
    `  <pubDate>${rfc822(entry.published)}</pubDate>`,
    // readers render description as HTML: the plain-text summary is escaped as HTML, then as XML
    `  <description>${escapeXml(escapeHtml(entry.summary))}</description>`,
    `  <content:encoded>${escapeXml(entry.contentHtml)}</content:encoded>`,
    ...entry.categories.map((category) => `  <category>${escapeXml(category)}</category>`),
    '</item>',
  ];
  return lines.map((line) => `    ${line}`).join('\n');
}

export const rss = {
  contentType: 'application/rss+xml; charset=utf-8',
  extension: 'xml',
  label: 'RSS',
  render(feed: Feed): string {
    return [
      XML_DECLARATION,
      '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
      '  <channel>',
      `    <title>${escapeXml(feed.title)}</title>`,
      `    <link>${escapeXml(feed.homePageUrl)}</link>`,
      `    <description>${escapeXml(feed.description)}</description>`,
      `    <language>${escapeXml(feed.language)}</language>`,
      `    <lastBuildDate>${rfc822(feed.updated)}</lastBuildDate>`,
      `    <atom:link href="${escapeXml(feed.feedUrls.rss)}" rel="self" type="application/rss+xml"/>`,
      ...feed.items.map(item),
      '  </channel>',
      '</rss>',
      '',
    ].join('\n');
  },
};
