/** JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/). JSON.stringify does all the escaping. */
import type { Feed } from '../feed.ts';
import { rfc3339 } from './dates.ts';

export const JSON_FEED_VERSION = 'https://jsonfeed.org/version/1.1';

export const jsonFeed = {
  contentType: 'application/feed+json; charset=utf-8',
  extension: 'json',
  label: 'JSON Feed',
  render(feed: Feed): string {
    const document = {
      version: JSON_FEED_VERSION,
      title: feed.title,
      home_page_url: feed.homePageUrl,
      feed_url: feed.feedUrls.json,
      description: feed.description,
      language: feed.language,
      authors: [{ name: feed.author.name, url: feed.author.url }],
      items: feed.items.map((item) => ({
        id: item.id,
        url: item.url,
        title: item.title,
        summary: item.summary,
        content_html: item.contentHtml,
        date_published: rfc3339(item.published),
        date_modified: rfc3339(item.updated),
        tags: [...item.categories],
      })),
    };
    return `${JSON.stringify(document, null, 2)}\n`;
  },
};
