import { join } from 'node:path';
import { SaxesParser } from 'saxes';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadContent } from '../../src/core/content/load.ts';
import { type Feed, type FeedFormat, feedFormats, formatForExtension, isFeedFormat, renderFeed } from '../../src/core/feeds/feed.ts';
import { changesFeed, type FeedEntry, feedLinks, incidentFeed, isFeedName } from '../../src/core/feeds/sources.ts';
import { ROOT } from '../helpers/server.ts';

const { site } = loadContent(join(ROOT, 'content'));
const publicUrl = new URL('https://trust.lumenwork.example/');
const emptyUpdated = new Date('2025-05-20T00:00:00Z');

/** markup, both quotes, an entity-looking string and the end of a CDATA section, all of which must stay text */
const XSS = `<script>alert(1)</script> & "quoted" 'single' ]]> &amp; <img src=x onerror=alert(2)>`;

const older: FeedEntry = {
  id: 'https://trust.lumenwork.example/incidents/1',
  title: 'Search is slow',
  url: 'https://trust.lumenwork.example/incidents/1',
  summary: 'Searches took up to 10 s.',
  contentHtml: '<p>Searches took up to <strong>10 s</strong>.</p>',
  published: new Date('2025-06-01T08:00:00Z'),
  updated: new Date('2025-06-01T09:30:00Z'),
  categories: ['Search'],
};
const newer: FeedEntry = {
  id: 'urn:uuid:5b0c3c7e-3f0d-4a8e-9a51-2f7b7a1e9d10',
  title: XSS,
  url: 'https://trust.lumenwork.example/incidents/2?a=1&b=2',
  summary: `Summary: ${XSS}`,
  contentHtml: '<p>Fixed &amp; verified]]&gt;</p><p>&lt;script&gt;alert(3)&lt;/script&gt;</p>',
  published: new Date('2025-06-03T10:15:00Z'),
  updated: new Date('2025-06-03T11:00:00Z'),
  categories: ['API', 'a<b & "c"'],
};

const emptyFeed = () => incidentFeed({ site, publicUrl, entries: [], emptyUpdated });
// given oldest first: the output must still be newest first
const twoItemFeed = () => incidentFeed({ site, publicUrl, entries: [older, newer], emptyUpdated });

const RFC_822 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} (GMT|[+-]\d{4})$/;
const RFC_3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const ATOM_NS = 'http://www.w3.org/2005/Atom';
const CONTENT_NS = 'http://purl.org/rss/1.0/modules/content/';

interface XmlElement {
  /** qualified name as written, e.g. `atom:link` */
  name: string;
  /** namespace URI */
  uri: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** the decoded character data directly inside it */
  text: string;
}

/**
 * Parses with saxes, a strict XML 1.0 + namespaces parser (jsdom's): any
 * well-formedness error (a `<` in an attribute, a stray `&`, `]]>` in text,
 * a disallowed character, a second root) fails the test.
 */
function parseXml(body: string): XmlElement {
  const parser = new SaxesParser({ xmlns: true });
  const errors: string[] = [];
  const document: XmlElement = { name: '#document', uri: '', attributes: {}, children: [], text: '' };
  const open = [document];
  parser.on('error', (error) => errors.push(error.message));
  parser.on('opentag', (tag) => {
    const element: XmlElement = {
      name: tag.name,
      uri: tag.uri,
      attributes: Object.fromEntries(Object.entries(tag.attributes).map(([name, attribute]) => [name, attribute.value])),
      children: [],
      text: '',
    };
    open.at(-1)?.children.push(element);
    open.push(element);
  });
  parser.on('closetag', () => open.pop());
  parser.on('text', (text) => {
    const current = open.at(-1);
    if (current && current !== document) current.text += text;
  });
  parser.on('cdata', (text) => {
    const current = open.at(-1);
    if (current) current.text += text;
  });
  parser.write(body).close();
  expect(errors).toEqual([]);
  expect(document.children).toHaveLength(1);
  return only(document, document.children[0]?.name ?? '');
}

const all = (parent: XmlElement, name: string) => parent.children.filter((c) => c.name === name);
/** the single child element of that name */
function only(parent: XmlElement, name: string): XmlElement {
  const found = all(parent, name);
  expect(
    found.map((c) => c.name),
    `exactly one <${name}> in <${parent.name}>`,
  ).toEqual([name]);
  const [element] = found;
  if (!element) throw new Error(`no <${name}> in <${parent.name}>`);
  return element;
}
const textOf = (parent: XmlElement, name: string) => only(parent, name).text;

const jsonFeedSchema = z.object({
  version: z.literal('https://jsonfeed.org/version/1.1'),
  title: z.string().min(1),
  home_page_url: z.url(),
  feed_url: z.url(),
  description: z.string(),
  language: z.string(),
  authors: z.array(z.object({ name: z.string(), url: z.url() })).min(1),
  items: z.array(
    z.object({
      id: z.string(),
      url: z.url(),
      title: z.string(),
      summary: z.string(),
      content_html: z.string(),
      date_published: z.string().regex(RFC_3339),
      date_modified: z.string().regex(RFC_3339),
      tags: z.array(z.string()),
    }),
  ),
});

const render = (feed: Feed, format: FeedFormat) => renderFeed(feed, format).body;
/** the RSS <channel>, after checking the <rss> around it */
function rssOf(feed: Feed): XmlElement {
  const rss = parseXml(render(feed, 'rss'));
  expect(rss.name).toBe('rss');
  expect(rss.attributes.version).toBe('2.0');
  const channel = only(rss, 'channel');
  for (const required of ['title', 'link', 'description']) expect(textOf(channel, required)).not.toBe('');
  expect(textOf(channel, 'lastBuildDate')).toMatch(RFC_822);
  const self = only(channel, 'atom:link');
  expect(self.uri).toBe(ATOM_NS);
  expect(self.attributes).toMatchObject({ rel: 'self', type: 'application/rss+xml' });
  for (const item of all(channel, 'item')) {
    for (const required of ['title', 'link', 'guid', 'pubDate', 'description']) only(item, required);
    expect(only(item, 'content:encoded').uri).toBe(CONTENT_NS);
    expect(textOf(item, 'pubDate')).toMatch(RFC_822);
  }
  return channel;
}
/** the Atom <feed>, after checking what RFC 4287 requires of it and its entries */
function atomOf(feed: Feed): XmlElement {
  const root = parseXml(render(feed, 'atom'));
  expect(root.name).toBe('feed');
  expect(root.uri).toBe(ATOM_NS);
  expect(URL.canParse(textOf(root, 'id'))).toBe(true);
  expect(textOf(root, 'title')).not.toBe('');
  expect(textOf(root, 'updated')).toMatch(RFC_3339);
  expect(textOf(only(root, 'author'), 'name')).not.toBe('');
  expect(all(root, 'link').filter((l) => l.attributes.rel === 'self')).toHaveLength(1);
  for (const entry of all(root, 'entry')) {
    expect(URL.canParse(textOf(entry, 'id'))).toBe(true);
    for (const date of ['published', 'updated']) expect(textOf(entry, date)).toMatch(RFC_3339);
    expect(only(entry, 'title').attributes.type).toBe('text');
    expect(only(entry, 'summary').attributes.type).toBe('text');
    expect(only(entry, 'content').attributes.type).toBe('html');
  }
  return root;
}
const jsonOf = (feed: Feed) => jsonFeedSchema.parse(JSON.parse(render(feed, 'json')));
const decodeHtml = (html: string) =>
  html.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&amp;', '&');

describe('renderFeed', () => {
  it('serves each format with its content type', () => {
    expect(renderFeed(emptyFeed(), 'rss').contentType).toBe('application/rss+xml; charset=utf-8');
    expect(renderFeed(emptyFeed(), 'atom').contentType).toBe('application/atom+xml; charset=utf-8');
    expect(renderFeed(emptyFeed(), 'json').contentType).toBe('application/feed+json; charset=utf-8');
  });

  describe('RSS 2.0', () => {
    it('an empty feed is valid: channel title, link and description, no item', () => {
      const channel = rssOf(emptyFeed());
      expect(textOf(channel, 'title')).toBe('Lumenwork incidents');
      expect(textOf(channel, 'link')).toBe('https://trust.lumenwork.example/status');
      expect(textOf(channel, 'description')).toContain('Lumenwork');
      expect(only(channel, 'atom:link').attributes.href).toBe('https://trust.lumenwork.example/feeds/incidents.xml');
      expect(new Date(textOf(channel, 'lastBuildDate'))).toEqual(emptyUpdated);
      expect(all(channel, 'item')).toEqual([]);
    });

    it('two items: newest first, text escaped, HTML content escaped once, RFC 822 dates', () => {
      expect(render(twoItemFeed(), 'rss')).not.toMatch(/<script|<img|]]>|CDATA/i);
      const channel = rssOf(twoItemFeed());
      const items = all(channel, 'item');
      expect(items.map((i) => textOf(i, 'guid'))).toEqual([newer.id, older.id]);
      const [first, second] = items;
      if (!first || !second) throw new Error('two items expected');
      expect(textOf(first, 'title')).toBe(XSS);
      expect(textOf(first, 'link')).toBe(newer.url);
      expect(only(first, 'guid').attributes.isPermaLink).toBe('false');
      expect(only(second, 'guid').attributes.isPermaLink).toBe('true');
      // readers render description as HTML: the plain-text summary must arrive as escaped HTML
      const description = textOf(first, 'description');
      expect(description).not.toMatch(/<script|<img/);
      expect(decodeHtml(description)).toBe(newer.summary);
      expect(textOf(first, 'content:encoded')).toBe(newer.contentHtml);
      expect(all(first, 'category').map((c) => c.text)).toEqual(['API', 'a<b & "c"']);
      expect(textOf(first, 'pubDate')).toBe('Tue, 03 Jun 2025 10:15:00 GMT');
      expect(textOf(second, 'pubDate')).toBe('Sun, 01 Jun 2025 08:00:00 GMT');
      expect(new Date(textOf(channel, 'lastBuildDate'))).toEqual(newer.updated);
    });
  });

  describe('Atom 1.0', () => {
    it('an empty feed is valid: id, title, updated, author and self link, no entry', () => {
      const feed = atomOf(emptyFeed());
      expect(textOf(feed, 'id')).toBe('https://trust.lumenwork.example/feeds/incidents.atom');
      expect(textOf(feed, 'title')).toBe('Lumenwork incidents');
      expect(textOf(feed, 'updated')).toBe('2025-05-20T00:00:00Z');
      expect(textOf(only(feed, 'author'), 'name')).toBe('Lumenwork');
      expect(all(feed, 'link').map((l) => l.attributes)).toContainEqual({
        rel: 'self',
        type: 'application/atom+xml',
        href: 'https://trust.lumenwork.example/feeds/incidents.atom',
      });
      expect(all(feed, 'entry')).toEqual([]);
    });

    it('two entries: newest first, titles as text, content as escaped HTML, RFC 3339 dates', () => {
      expect(render(twoItemFeed(), 'atom')).not.toMatch(/<script|<img|]]>|CDATA/i);
      const entries = all(atomOf(twoItemFeed()), 'entry');
      expect(entries.map((e) => textOf(e, 'id'))).toEqual([newer.id, older.id]);
      const [first, second] = entries;
      if (!first || !second) throw new Error('two entries expected');
      expect(textOf(first, 'title')).toBe(XSS);
      expect(textOf(first, 'summary')).toBe(newer.summary);
      expect(textOf(first, 'content')).toBe(newer.contentHtml);
      expect(only(first, 'link').attributes.href).toBe(newer.url);
      expect(all(first, 'category').map((c) => c.attributes.term)).toEqual(['API', 'a<b & "c"']);
      expect(textOf(first, 'published')).toBe('2025-06-03T10:15:00Z');
      expect(textOf(first, 'updated')).toBe('2025-06-03T11:00:00Z');
      expect(new Date(textOf(second, 'published'))).toEqual(older.published);
    });
  });

  describe('JSON Feed 1.1', () => {
    it('an empty feed is valid: version, title, items', () => {
      const feed = jsonOf(emptyFeed());
      expect(feed.title).toBe('Lumenwork incidents');
      expect(feed.feed_url).toBe('https://trust.lumenwork.example/feeds/incidents.json');
      expect(feed.items).toEqual([]);
    });

    it('two items: newest first, titles as plain strings, RFC 3339 dates', () => {
      const feed = jsonOf(twoItemFeed());
      expect(feed.items.map((i) => i.id)).toEqual([newer.id, older.id]);
      const [first] = feed.items;
      expect(first?.title).toBe(XSS);
      expect(first?.summary).toBe(newer.summary);
      expect(first?.content_html).toBe(newer.contentHtml);
      expect(first?.tags).toEqual(['API', 'a<b & "c"']);
      expect(first?.date_published).toBe('2025-06-03T10:15:00Z');
      expect(first?.date_modified).toBe('2025-06-03T11:00:00Z');
    });
  });

  it('drops characters XML cannot carry instead of writing a document no parser accepts', () => {
    const feed = incidentFeed({ site, publicUrl, entries: [{ ...older, title: 'bell\u0007 nul\u0000 lone\uD800 ok' }], emptyUpdated });
    expect(textOf(only(rssOf(feed), 'item'), 'title')).toBe('bell nul lone ok');
    expect(textOf(only(atomOf(feed), 'entry'), 'title')).toBe('bell nul lone ok');
  });

  it('refuses an item whose id is not an absolute URI (Atom requires one)', () => {
    const feed = incidentFeed({ site, publicUrl, entries: [{ ...older, id: '42' }], emptyUpdated });
    expect(() => renderFeed(feed, 'json')).toThrow(/absolute URI/);
  });
});

describe('the format registry', () => {
  it('maps URL extensions to formats and nothing else', () => {
    expect(formatForExtension('xml')).toBe('rss');
    expect(formatForExtension('atom')).toBe('atom');
    expect(formatForExtension('json')).toBe('json');
    expect(formatForExtension('rss')).toBeUndefined();
    expect(formatForExtension('toString')).toBeUndefined();
    expect(isFeedFormat('atom')).toBe(true);
    expect(isFeedFormat('constructor')).toBe(false);
    expect(Object.keys(feedFormats).sort()).toEqual(['atom', 'json', 'rss']);
  });
});

describe('feed sources', () => {
  it('incidents and changes have their own titles and absolute URLs on the public URL', () => {
    const changes = changesFeed({ site, publicUrl, entries: [], emptyUpdated });
    expect(changes.title).toBe('Lumenwork changes');
    expect(changes.homePageUrl).toBe('https://trust.lumenwork.example/changes');
    expect(incidentFeed({ site, publicUrl, entries: [], emptyUpdated }).homePageUrl).toBe('https://trust.lumenwork.example/status');
    expect(changes.feedUrls).toEqual({
      rss: 'https://trust.lumenwork.example/feeds/changes.xml',
      atom: 'https://trust.lumenwork.example/feeds/changes.atom',
      json: 'https://trust.lumenwork.example/feeds/changes.json',
    });
    expect(changes.updated).toEqual(emptyUpdated);
    expect(incidentFeed({ site, publicUrl, entries: [], emptyUpdated }).title).toBe('Lumenwork incidents');
  });

  it('stays under a public URL with a path prefix', () => {
    const feed = changesFeed({ site, publicUrl: new URL('https://example.com/trust/'), entries: [], emptyUpdated });
    expect(feed.feedUrls.atom).toBe('https://example.com/trust/feeds/changes.atom');
    expect(feed.homePageUrl).toBe('https://example.com/trust/changes');
  });

  it('is last updated when its newest entry was, and lists entries newest first', () => {
    const feed = twoItemFeed();
    expect(feed.updated).toEqual(newer.updated);
    expect(feed.items.map((i) => i.id)).toEqual([newer.id, older.id]);
  });

  it('lists six alternate links with readable titles', () => {
    const links = feedLinks(site);
    expect(links).toHaveLength(6);
    expect(links).toContainEqual({
      name: 'incidents',
      format: 'rss',
      href: '/feeds/incidents.xml',
      type: 'application/rss+xml',
      title: 'Lumenwork incidents (RSS)',
      label: 'RSS',
    });
    expect(links.map((l) => l.href)).toEqual([
      '/feeds/incidents.xml',
      '/feeds/incidents.atom',
      '/feeds/incidents.json',
      '/feeds/changes.xml',
      '/feeds/changes.atom',
      '/feeds/changes.json',
    ]);
    expect(links.map((l) => l.type)).toContain('application/feed+json');
    expect(isFeedName('changes')).toBe(true);
    expect(isFeedName('nope')).toBe(false);
  });
});
