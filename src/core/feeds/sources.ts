/**
 * The public feeds: incidents (issue 7 supplies the entries) and change
 * notices (issue 8). Each builds a format-neutral `Feed` from the content and
 * the entries it is given; until those issues land the pages pass none, and
 * the feeds are valid and empty.
 */
import type { Site } from '../content/schema.ts';
import { type Feed, type FeedFormat, type FeedItem, newestFirst } from './feed.ts';
import { feedFormatNames, feedFormats } from './formats/index.ts';

/** What an incident or a change notice contributes to a feed. */
export interface FeedEntry {
  /** permanent, unique absolute URI (e.g. the entry's permalink) */
  id: string;
  /** plain text */
  title: string;
  /** absolute URL of its public page */
  url: string;
  /** plain text */
  summary: string;
  /** sanitised HTML */
  contentHtml: string;
  published: Date;
  updated: Date;
  categories: readonly string[];
}

export interface FeedSource {
  site: Site;
  /** CANDOR_PUBLIC_URL, ending in '/' */
  publicUrl: URL;
  entries: readonly FeedEntry[];
  /** when the feed has no entries, the date it reports as last updated (a stable one, such as the content's) */
  emptyUpdated: Date;
}

export const feedNames = ['incidents', 'changes'] as const;
export type FeedName = (typeof feedNames)[number];

export function isFeedName(value: string): value is FeedName {
  return (feedNames as readonly string[]).includes(value);
}

/** The feed's path relative to the public URL, e.g. `feeds/incidents.xml`. */
export function feedPath(name: FeedName, format: FeedFormat): string {
  return `feeds/${name}.${feedFormats[format].extension}`;
}

/** Title of a feed, e.g. "Lumenwork incidents". */
export function feedTitle(site: Site, name: FeedName): string {
  return `${site.organisation.name} ${name}`;
}

export interface FeedLink {
  name: FeedName;
  format: FeedFormat;
  /** root-relative, for pages (which may be prerendered, without the public URL) */
  href: string;
  type: string;
  /** e.g. "Lumenwork incidents (RSS)" */
  title: string;
  /** e.g. "RSS" */
  label: string;
}

/** Every feed in every format, for `<link rel="alternate">` tags and visible links. */
export function feedLinks(site: Site, names: readonly FeedName[] = feedNames): FeedLink[] {
  return names.flatMap((name) =>
    feedFormatNames.map((format) => {
      const { contentType, label } = feedFormats[format];
      return {
        name,
        format,
        href: `/${feedPath(name, format)}`,
        type: contentType.split(';')[0] ?? contentType,
        title: `${feedTitle(site, name)} (${label})`,
        label,
      };
    }),
  );
}

function toItem(entry: FeedEntry): FeedItem {
  return { ...entry, categories: [...entry.categories] };
}

function build(name: FeedName, source: FeedSource, description: string, homePath: string): Feed {
  const { site, publicUrl, entries, emptyUpdated } = source;
  const url = (path: string) => new URL(path, publicUrl).href;
  const feedUrls = Object.fromEntries(feedFormatNames.map((format) => [format, url(feedPath(name, format))])) as Record<FeedFormat, string>;
  const updated = entries.length === 0 ? emptyUpdated : new Date(Math.max(...entries.map((e) => e.updated.getTime())));
  return {
    id: feedUrls.atom,
    title: feedTitle(site, name),
    description,
    homePageUrl: url(homePath),
    feedUrls,
    updated,
    author: { name: site.organisation.name, url: site.organisation.url },
    // the pages are written in English (<html lang="en">)
    language: 'en',
    items: newestFirst(entries.map(toItem)),
  };
}

/** Incidents and scheduled maintenance, newest first. */
export function incidentFeed(source: FeedSource): Feed {
  const org = source.site.organisation.name;
  return build('incidents', source, `Incidents and scheduled maintenance affecting ${org}'s services.`, 'status');
}

/** Subprocessor and security-document change notices and announcements, newest first. */
export function changesFeed(source: FeedSource): Feed {
  const org = source.site.organisation.name;
  return build('changes', source, `Changes to ${org}'s subprocessors and security documentation, and announcements.`, 'changes');
}

export const feedBuilders: Record<FeedName, (source: FeedSource) => Feed> = {
  incidents: incidentFeed,
  changes: changesFeed,
};
