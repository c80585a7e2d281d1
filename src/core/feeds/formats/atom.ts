/** Atom 1.0 (RFC 4287). Every text construct is type="text" or escaped HTML, so no markup is ever live. */

import { escapeXml, XML_DECLARATION } from '../../text/escape.ts';
import type { Feed, FeedItem } from '../feed.ts';
import { rfc3339 } from './dates.ts';

function entry(item: FeedItem): string {
  const lines = [
    '<entry>',
    `  <id>${escapeXml(item.id)}</id>`,
    `  <title type="text">${escapeXml(item.title)}</title>`,
    `  <link rel="alternate" type="text/html" href="${escapeXml(item.url)}"/>`,
    `  <published>${rfc3339(item.published)}</published>`,
    `  <updated>${rfc3339(item.updated)}</updated>`,
    `  <summary type="text">${escapeXml(item.summary)}</summary>`,
    `  <content type="html">${escapeXml(item.contentHtml)}</content>`,
    ...item.categories.map((category) => `  <category term="${escapeXml(category)}"/>`),
    '</entry>',
  ];
  return lines.map((line) => `  ${line}`).join('\n');
}

export const atom = {
  contentType: 'application/atom+xml; charset=utf-8',
  extension: 'atom',
  label: 'Atom',
  render(feed: Feed): string {
    return [
      XML_DECLARATION,
      `<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="${escapeXml(feed.language)}">`,
      `  <id>${escapeXml(feed.id)}</id>`,
      `  <title type="text">${escapeXml(feed.title)}</title>`,
      `  <subtitle type="text">${escapeXml(feed.description)}</subtitle>`,
      `  <updated>${rfc3339(feed.updated)}</updated>`,
      `  <author><name>${escapeXml(feed.author.name)}</name><uri>${escapeXml(feed.author.url)}</uri></author>`,
      `  <link rel="self" type="application/atom+xml" href="${escapeXml(feed.feedUrls.atom)}"/>`,
      `  <link rel="alternate" type="text/html" href="${escapeXml(feed.homePageUrl)}"/>`,
      ...feed.items.map(entry),
      '</feed>',
      '',
    ].join('\n');
  },
};
