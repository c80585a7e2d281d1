/**
 * A feed in format-neutral terms, and its rendering as RSS 2.0, Atom 1.0 or
 * JSON Feed 1.1 (one file per format under formats/). Callers build a `Feed`
 * (see sources.ts) and never write XML or JSON themselves.
 */
import { type FeedFormat, feedFormats } from './formats/index.ts';

export type { FeedFormat } from './formats/index.ts';
export { feedFormats, formatForExtension, isFeedFormat } from './formats/index.ts';

export interface FeedItem {
  /** permanent and unique for this entry, never reused: an absolute URI (Atom requires one), e.g. its permalink or a `urn:uuid:` */
  id: string;
  /** plain text: escaped by the formats, never interpreted as markup */
  title: string;
  /** absolute URL of the entry's page */
  url: string;
  /** plain text */
  summary: string;
  /** HTML that the caller has already sanitised; the formats only escape it for their syntax */
  contentHtml: string;
  published: Date;
  updated: Date;
  /** plain-text labels (components, change types, …) */
  categories: readonly string[];
}

export interface Feed {
  /** permanent absolute URI naming the feed (Atom's feed id) */
  id: string;
  title: string;
  /** plain text */
  description: string;
  /** absolute URL of the page the feed follows */
  homePageUrl: string;
  /** absolute URL at which each format is served (the self links) */
  feedUrls: Record<FeedFormat, string>;
  /** the last time anything in the feed changed; for an empty feed a stable date, not the time of the request */
  updated: Date;
  /** who publishes it (Atom requires an author for entries that do not name one) */
  author: { name: string; url: string };
  /** a BCP 47 language tag, e.g. `en` */
  language: string;
  items: readonly FeedItem[];
}

export interface RenderedFeed {
  body: string;
  contentType: string;
}

/** Items newest first (by publication, then last update, then id so the order is stable). */
export function newestFirst(items: readonly FeedItem[]): FeedItem[] {
  return [...items].sort(
    (a, b) =>
      b.published.getTime() - a.published.getTime() ||
      b.updated.getTime() - a.updated.getTime() ||
      (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

export function renderFeed(feed: Feed, format: FeedFormat): RenderedFeed {
  for (const item of feed.items) {
    if (!URL.canParse(item.id)) throw new Error(`feed item id must be an absolute URI, got ${JSON.stringify(item.id)}`);
  }
  const definition = feedFormats[format];
  return { body: definition.render({ ...feed, items: newestFirst(feed.items) }), contentType: definition.contentType };
}
