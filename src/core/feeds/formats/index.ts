/** The registry of feed formats: one file per format, one entry here each. */
import type { Feed } from '../feed.ts';
import { atom } from './atom.ts';
import { jsonFeed } from './json-feed.ts';
import { rss } from './rss.ts';

export interface FeedFormatDefinition {
  /** the Content-Type it is served with */
  contentType: string;
  /** the file extension in its URL (`/feeds/incidents.xml`) */
  extension: string;
  /** the name readers know it by, for link titles */
  label: string;
  /** renders a feed whose items are already newest first */
  render: (feed: Feed) => string;
}

export const feedFormats = { rss, atom, json: jsonFeed } as const satisfies Record<string, FeedFormatDefinition>;

export type FeedFormat = keyof typeof feedFormats;

export const feedFormatNames = Object.keys(feedFormats) as FeedFormat[];

export function isFeedFormat(value: string): value is FeedFormat {
  return Object.hasOwn(feedFormats, value);
}

export function formatForExtension(extension: string): FeedFormat | undefined {
  return feedFormatNames.find((format) => feedFormats[format].extension === extension);
}
