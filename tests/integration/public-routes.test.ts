/**
 * The public pages, feeds, API documents and headers of the running server, on each engine
 * (tests/helpers/engine-server.ts): SQLite, and PostgreSQL when CANDOR_TEST_POSTGRES_URL is set.
 */
import { join } from 'node:path';
import { SaxesParser } from 'saxes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadContent } from '../../src/core/content/load.ts';
import { parsePublicKey } from '../../src/core/evidence/key.ts';
import { trustDocumentSchema } from '../../src/core/trust/trust-document.ts';
import { type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { ROOT, type RunningServer } from '../helpers/server.ts';

const content = loadContent(join(ROOT, 'content'));

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let server: RunningServer;

  beforeAll(async () => {
    running = await engine.start({ env: { CANDOR_PUBLIC_URL: 'https://trust.lumenwork.example' } });
    server = running.server;
  });
  afterAll(async () => {
    await running?.stop();
  });

  const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, { redirect: 'manual', ...init });
  const text = async (path: string) => {
    const res = await get(path);
    expect(res.status, path).toBe(200);
    return res.text();
  };
  const escapeHtml = (s: string) => s.replaceAll('&', '&amp;').replaceAll("'", '&#39;').replaceAll('"', '&quot;');

  describe('public pages', () => {
    it('/ shows the organisation, every section and doc, the badges and the subscribe call to action', async () => {
      const html = await text('/');
      expect(html).toContain(`<h1 id="hero-title">${content.site.organisation.name} Trust Center</h1>`);
      for (const section of content.site.sections) expect(html).toContain(section.title);
      for (const doc of content.docs) expect(html).toContain(`href="/docs/${doc.slug}"`);
      for (const badge of content.site.compliance) expect(html).toContain(escapeHtml(badge.name));
      expect(html).toContain('href="/subscribe"');
      expect(html).toMatch(/Last updated <time datetime="\d{4}-\d{2}-\d{2}">/);
    });

    it('/docs lists every doc with its summary', async () => {
      const html = await text('/docs');
      for (const doc of content.docs) {
        expect(html).toContain(`href="/docs/${doc.slug}"`);
        expect(html).toContain(escapeHtml(doc.summary));
      }
    });

    it.each(content.docs.map((d) => [d.slug, d] as const))(
      '/docs/%s renders with a table of contents and its update date',
      async (slug, doc) => {
        const html = await text(`/docs/${slug}`);
        expect(html).toContain(`<h1>${escapeHtml(doc.title)}</h1>`);
        expect(html).toContain(`datetime="${doc.updated.toISOString().slice(0, 10)}"`);
        const headings = [...doc.body.matchAll(/^## (.+)$/gm)].length;
        if (headings > 0) {
          expect(html).toContain('On this page');
          const tocLinks = html.match(/<nav class="toc"[\s\S]*?<\/nav>/)?.[0].match(/href="#/g) ?? [];
          expect(tocLinks.length).toBeGreaterThanOrEqual(headings);
        }
      },
    );

    it('an unknown doc is a 404 page that leaks nothing', async () => {
      const res = await get('/docs/../../etc/passwd');
      expect(res.status).toBe(404);
      const res2 = await get('/docs/no-such-page');
      expect(res2.status).toBe(404);
      const html = await res2.text();
      expect(html).toContain('Page not found');
      expect(html).not.toMatch(/at .+\.(ts|js|mjs):\d+|node_modules|\/work\//);
    });

    it('/subprocessors lists every subprocessor with all its columns', async () => {
      const html = await text('/subprocessors');
      expect(html).toContain(`Showing ${content.subprocessors.length} of ${content.subprocessors.length} subprocessors`);
      for (const s of content.subprocessors) {
        expect(html).toContain(`data-id="${s.id}"`);
        expect(html).toContain(escapeHtml(s.entity));
        expect(html).toContain(escapeHtml(s.dpaUrl));
      }
      expect(html).toContain('href="/changes"');
    });

    it('/subprocessors filters by purpose and by location without JavaScript', async () => {
      const ai = content.subprocessors.filter((s) => s.category === 'ai');
      const html = await text('/subprocessors?category=ai');
      expect(html).toContain(`Showing ${ai.length} of ${content.subprocessors.length} subprocessors`);
      expect(html.match(/<tr data-id=/g)?.length).toBe(ai.length);
      // a country by name: the entries that name it, and those working worldwide (their location cell says so)
      const germany = await text('/subprocessors?location=Germany');
      const rows = [...germany.matchAll(/<tr data-id="([^"]+)"[\s\S]*?<\/tr>/g)];
      expect(rows.map((r) => r[1]).sort()).toEqual(
        content.subprocessors
          .filter((s) => s.countries.includes('DE') || s.regions.includes('worldwide'))
          .map((s) => s.id)
          .sort(),
      );
      for (const [row] of rows) expect(row).toMatch(/<td[^>]*>[^<]*(Germany|Worldwide)[^<]*<\/td>/);
      expect(germany).toMatch(/<option value="DE" selected>Germany<\/option>/);
    });

    it('/subprocessors explains an unknown filter value instead of failing', async () => {
      const html = await text('/subprocessors?category=%3Cscript%3Ealert(1)%3C%2Fscript%3E');
      expect(html).toContain('There is no purpose called &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
      expect(html).not.toContain('<script>alert(1)</script>');
      expect(html).toContain(`Showing ${content.subprocessors.length} of`);
    });

    it('/changes says since when the lists are tracked', async () => {
      const html = await text('/changes');
      expect(html).toContain('No change has been published yet.');
      expect(html).toMatch(/published since <time datetime="\d{4}-\d{2}-\d{2}">/);
    });

    it('/search, /subscribe and /api are served', async () => {
      expect(await text('/search')).toContain('id="search-form"');
      expect(await text('/subscribe')).toContain('Subscribe to updates');
      expect(await text('/api')).toContain('/api/v1/trust.schema.json');
    });

    it('robots.txt keeps crawlers out of the console and personal links; the icon is served', async () => {
      const robots = await text('/robots.txt');
      expect(robots).toContain('Disallow: /console');
      expect(robots).toContain('Disallow: /unsubscribe/');
      const icon = await get('/favicon.svg');
      expect(icon.status).toBe(200);
      expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    });

    it('/status is served from a compressed snapshot, the same bytes until something changes', async () => {
      const first = await get('/status', { headers: { 'accept-encoding': 'br' } });
      expect(first.status).toBe(200);
      expect(first.headers.get('content-encoding')).toBe('br');
      expect(first.headers.get('vary')).toContain('Accept-Encoding');
      expect(first.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      const html = await first.text();
      expect(html).toContain('All services are operational');
      const plain = await get('/status', { headers: { 'accept-encoding': 'identity' } });
      expect(plain.headers.get('content-encoding')).toBeNull();
      expect(await plain.text()).toBe(html);
    });

    it('a status page from memory answers as its render did: status, headers, body', async () => {
      // Pages no other test asks for: the first request renders through Astro, the next come from memory.
      for (const path of ['/api/v1/status.json', '/incidents/987654321']) {
        const rendered = await get(path, { headers: { 'accept-encoding': 'br, gzip' } });
        const renderedBody = await rendered.text();
        const remembered = await get(path, { headers: { 'accept-encoding': 'br, gzip' } });
        expect(remembered.status, path).toBe(rendered.status);
        const withoutDate = (res: Response) => [...res.headers].filter(([name]) => name !== 'date');
        expect(withoutDate(remembered), path).toEqual(withoutDate(rendered));
        expect(remembered.headers.get('strict-transport-security'), path).toContain('max-age=');
        expect(await remembered.text(), path).toBe(renderedBody);
      }
    });

    it('the search index is built from the docs', async () => {
      const res = await get('/pagefind/pagefind.js');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/javascript/);
    });
  });

  describe('security.txt', () => {
    it('follows RFC 9116 with the fields from site.yaml', async () => {
      const res = await get('/.well-known/security.txt');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      const fields = new Map(
        (await res.text())
          .trim()
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()] as const),
      );
      expect(fields.get('Contact')).toBe(`mailto:${content.site.contacts.security.email}`);
      const expires = new Date(fields.get('Expires') ?? '');
      expect(expires.getTime()).toBeGreaterThan(Date.now());
      expect(fields.get('Expires')).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      expect(fields.get('Preferred-Languages')).toBe('en');
      expect(fields.get('Canonical')).toBe('https://trust.lumenwork.example/.well-known/security.txt');
      expect(fields.get('Policy')).toBe(`https://trust.lumenwork.example/docs/${content.site.securityTxt.policy}`);
    });
  });

  describe('/.well-known/candor-evidence-key', () => {
    it('publishes the Ed25519 key that verifies evidence documents, with its key id', async () => {
      const res = await get('/.well-known/candor-evidence-key');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      const text = await res.text();
      const key = parsePublicKey(text);
      expect(key?.publicKey.asymmetricKeyType).toBe('ed25519');
      // the id printed and sent is the SHA-256 of the key served, not of some other key
      expect(text).toContain(`# key id: ${key?.keyId}`);
      expect(res.headers.get('x-candor-key-id')).toBe(key?.keyId);
      // the same key on every request (derived from the secret, not generated per process)
      expect(await (await get('/.well-known/candor-evidence-key')).text()).toBe(text);
    });
  });

  describe('/api/v1/trust.json', () => {
    it('matches its published schema and holds the content', async () => {
      const res = await get('/api/v1/trust.json');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      const doc = trustDocumentSchema.parse(await res.json());
      expect(doc.version).toBe('1.0');
      expect(doc.organisation.name).toBe(content.site.organisation.name);
      expect(doc.documents.map((d) => d.slug).sort()).toEqual(content.docs.map((d) => d.slug).sort());
      expect(doc.documents.find((d) => d.slug === 'encryption')?.url).toBe('https://trust.lumenwork.example/docs/encryption');
      expect(doc.subprocessors).toHaveLength(content.subprocessors.length);
      expect(doc.certifications.map((c) => c.name)).toEqual(content.site.compliance.map((c) => c.name));
      expect(doc.policies.breachNotification).toEqual({ detectHours: 1, assessHours: 6, notifyHours: 72 });
    });

    it('publishes a JSON Schema for it', async () => {
      const res = await get('/api/v1/trust.schema.json');
      expect(res.status).toBe(200);
      const schema = (await res.json()) as { type: string; required: string[] };
      expect(schema.type).toBe('object');
      expect(schema.required).toEqual(expect.arrayContaining(['version', 'organisation', 'documents', 'subprocessors', 'certifications']));
    });
  });

  describe('security headers', () => {
    const paths = [
      '/',
      '/docs/encryption',
      '/subprocessors',
      '/changes',
      '/api/v1/trust.json',
      '/.well-known/security.txt',
      '/.well-known/candor-evidence-key',
      '/no-such-page',
    ];

    it.each(paths)('%s carries them', async (path) => {
      const res = await get(path);
      const h = res.headers;
      expect(h.get('x-content-type-options')).toBe('nosniff');
      expect(h.get('referrer-policy')).toBe('strict-origin-when-cross-origin');
      expect(h.get('permissions-policy')).toContain('camera=()');
      expect(h.get('content-security-policy')).toContain("frame-ancestors 'none'");
      // the public URL is https, so browsers are told to stay on https
      expect(h.get('strict-transport-security')).toMatch(/^max-age=\d{8,}/);
      expect(h.get('x-powered-by')).toBeNull();
    });

    it('static assets carry them too', async () => {
      const html = await text('/');
      const css = html.match(/href="(\/_astro\/[^"]+\.css)"/)?.[1];
      expect(css).toBeDefined();
      const res = await get(css ?? '');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('cache-control')).toContain('immutable');
    });

    it('pages forbid inline scripts: the CSP lists only self and hashes for scripts', async () => {
      for (const path of ['/', '/subprocessors']) {
        const res = await get(path);
        const html = await res.text();
        const policies = [
          res.headers.get('content-security-policy') ?? '',
          ...(html.match(/http-equiv="content-security-policy" content="([^"]+)"/)?.slice(1) ?? []),
        ];
        const scriptSrc = policies.join(';').match(/script-src([^;]*)/)?.[1] ?? '';
        expect(scriptSrc).toContain("'self'");
        const sources = scriptSrc.trim().split(/\s+/);
        expect(sources).not.toContain("'unsafe-inline'");
        expect(sources).not.toContain("'unsafe-eval'");
        expect(sources.every((s) => ["'self'", "'wasm-unsafe-eval'"].includes(s) || s.startsWith("'sha256-"))).toBe(true);
      }
    });

    it('static pages are served compressed with an ETag that revalidates', async () => {
      const res = await get('/docs/encryption', { headers: { 'accept-encoding': 'br' } });
      expect(res.headers.get('content-encoding')).toBe('br');
      const etag = res.headers.get('etag') ?? '';
      expect(etag).toMatch(/^".+"$/);
      const again = await get('/docs/encryption', { headers: { 'if-none-match': etag } });
      expect(again.status).toBe(304);
    });
  });

  describe('feeds', () => {
    const PUBLIC = 'https://trust.lumenwork.example';
    const feeds = [
      ['/feeds/incidents.xml', 'application/rss+xml; charset=utf-8'],
      ['/feeds/incidents.atom', 'application/atom+xml; charset=utf-8'],
      ['/feeds/incidents.json', 'application/feed+json; charset=utf-8'],
      ['/feeds/changes.xml', 'application/rss+xml; charset=utf-8'],
      ['/feeds/changes.atom', 'application/atom+xml; charset=utf-8'],
      ['/feeds/changes.json', 'application/feed+json; charset=utf-8'],
    ] as const;
    interface Element {
      name: string;
      attributes: Record<string, string>;
      text: string;
    }
    /** every element in document order, after a strict parse (saxes) that fails on any well-formedness error */
    const parseXml = (body: string): Element[] => {
      const parser = new SaxesParser({ xmlns: true });
      const errors: string[] = [];
      const elements: Element[] = [];
      const open: Element[] = [];
      parser.on('error', (error) => errors.push(error.message));
      parser.on('opentag', (tag) => {
        const element = {
          name: tag.name,
          attributes: Object.fromEntries(Object.entries(tag.attributes).map(([k, a]) => [k, a.value])),
          text: '',
        };
        elements.push(element);
        open.push(element);
      });
      parser.on('closetag', () => open.pop());
      parser.on('text', (t) => {
        const current = open.at(-1);
        if (current) current.text += t;
      });
      parser.write(body).close();
      expect(errors).toEqual([]);
      return elements;
    };
    const jsonFeed = z.object({
      version: z.literal('https://jsonfeed.org/version/1.1'),
      title: z.string().min(1),
      feed_url: z.string(),
      items: z.array(z.unknown()),
    });

    it.each(feeds)('%s is served as %s, parses, and links itself absolutely on the public URL', async (path, type) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cache-control')).toBe('public, max-age=60');
      const body = await res.text();
      const self = `${PUBLIC}${path}`;
      if (path.endsWith('.json')) {
        const feed = jsonFeed.parse(JSON.parse(body));
        expect(feed.feed_url).toBe(self);
        expect(feed.items).toEqual([]);
        return;
      }
      const elements = parseXml(body);
      const names = elements.map((e) => e.name);
      const selfLinks = elements.filter((e) => e.attributes.rel === 'self').map((e) => e.attributes.href);
      expect(selfLinks).toEqual([self]);
      if (path.endsWith('.xml')) {
        expect(names.slice(0, 2)).toEqual(['rss', 'channel']);
        expect(names).toEqual(expect.arrayContaining(['title', 'link', 'description', 'atom:link']));
        expect(names).not.toContain('item');
        expect(elements.find((e) => e.name === 'link')?.text).toMatch(new RegExp(`^${PUBLIC}/`));
      } else {
        expect(names[0]).toBe('feed');
        expect(names).toEqual(expect.arrayContaining(['id', 'title', 'updated', 'author']));
        expect(names).not.toContain('entry');
        expect(elements.find((e) => e.name === 'updated')?.text).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      }
    });

    it('an unknown feed or format is a 404', async () => {
      expect((await get('/feeds/nope.xml')).status).toBe(404);
      expect((await get('/feeds/incidents.rss')).status).toBe(404);
      expect((await get('/feeds/changes.xml.json')).status).toBe(404);
    });

    it('pages announce every feed with <link rel="alternate">, and /changes links its own', async () => {
      const html = await text('/');
      const labels: Record<string, string> = {
        'application/rss+xml': 'RSS',
        'application/atom+xml': 'Atom',
        'application/feed+json': 'JSON Feed',
      };
      for (const [path, type] of feeds) {
        const mediaType = type.split(';')[0] ?? '';
        const name = path.includes('incidents') ? 'incidents' : 'changes';
        expect(html).toContain(
          `<link rel="alternate" type="${mediaType}" title="${content.site.organisation.name} ${name} (${labels[mediaType]})" href="${path}">`,
        );
      }
      const changes = await text('/changes');
      expect(changes).toMatch(
        /Follow changes:\s*<a href="\/feeds\/changes\.xml"[^>]*>RSS<\/a> · <a href="\/feeds\/changes\.atom"[^>]*>Atom<\/a> · <a href="\/feeds\/changes\.json"[^>]*>JSON Feed<\/a>/,
      );
    });
  });
});
