/**
 * Documents on the running server, on each engine (tests/helpers/engine-server.ts): /documents lists
 * every one with its framework, period and expiry; a public one downloads with the headers of the
 * other static files; a gated (`nda`) one is reachable by no URL and its PDF is nowhere in the build;
 * a document past its expiry day is marked expired by the page as rendered now, staff see it and the
 * one expiring tomorrow on the dashboard, and hear of each once, however often the server restarts.
 * The server reads a copy of content/ (CANDOR_CONTENT_DIR) in which the ISO certificate expired
 * yesterday and the SOC 2 report expires tomorrow.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/core/content/load.ts';
import { documentFrameworkLabels } from '../../src/core/content/schema.ts';
import { ConsoleClient } from '../helpers/browser-less.ts';
import { copyContent, editText } from '../helpers/content-fixture.ts';
import { readRows, type ServerOnEngine, serverEnginesUnderTest } from '../helpers/engine-server.ts';
import { pageText, until } from '../helpers/page.ts';
import { ROOT } from '../helpers/server.ts';
import { signedInStaffOn } from '../helpers/staff.ts';

const content = loadContent(join(ROOT, 'content'));
const gated = content.documents.filter((d) => d.access === 'nda');
const published = content.documents.filter((d) => d.access === 'public');
const escapeHtml = (s: string) => s.replaceAll('&', '&amp;').replaceAll("'", '&#39;').replaceAll('"', '&quot;');
const longDate = (d: Date) =>
  new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(d);

const DAY = 86_400_000;
const todayUtc = new Date(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
const yesterday = new Date(todayUtc.getTime() - DAY);
const tomorrow = new Date(todayUtc.getTime() + DAY);

/** Every path someone might try for a document's file: its slug and file name under the usual folders, encoded and cased otherwise. */
function plausiblePaths(slug: string, file: string): string[] {
  const names = [file, `${slug}.pdf`, slug, `${slug}.PDF`, `${slug}.md`];
  const folders = [
    '/documents/',
    '/content/documents/',
    '/',
    '/_astro/',
    '/files/',
    '/downloads/',
    '/static/',
    '/public/',
    '/assets/',
    '/api/v1/documents/',
  ];
  const paths = folders.flatMap((folder) => names.map((name) => `${folder}${name}`));
  return [
    ...paths,
    `/documents/${slug}/`,
    `/documents/${slug}/download`,
    `/documents/${slug}.pdf?download=1`,
    `/documents/${encodeURIComponent(`${slug}.pdf`).replace('.', '%2E')}`,
    `/documents/%2e%2e/content/documents/${file}`,
    `/documents/..%2fcontent%2fdocuments%2f${file}`,
    `/documents//${slug}.pdf`,
    `/DOCUMENTS/${slug}.pdf`,
    `/docs/${slug}`,
  ];
}

describe('the build', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  const built = files(join(ROOT, 'dist'));

  it('holds the PDF of every public document, as it is in content/', () => {
    for (const d of published)
      expect(readFileSync(join(ROOT, 'dist/client/documents', `${d.slug}.pdf`))).toEqual(readFileSync(join(ROOT, d.pdf)));
  });

  it("holds no gated document's PDF, under any name, anywhere in dist/", () => {
    expect(gated.length).toBeGreaterThan(0);
    for (const d of gated) {
      const bytes = readFileSync(join(ROOT, d.pdf));
      const holding = built.filter((path) => readFileSync(path).includes(bytes));
      expect(holding, d.slug).toEqual([]);
      expect(built.filter((path) => path.endsWith(d.file) || path.includes(`${d.slug}.pdf`))).toEqual([]);
    }
  });
});

describe.each(serverEnginesUnderTest())('on $name', (engine) => {
  let running: ServerOnEngine;
  let url: string;

  beforeAll(async () => {
    const contentDir = copyContent();
    editText(contentDir, 'documents/iso-27001-certificate.md', (t) =>
      t.replace(/^expires: .*$/m, `expires: ${yesterday.toISOString().slice(0, 10)}`),
    );
    editText(contentDir, 'documents/soc-2-type-ii-report.md', (t) =>
      t.replace(/^expires: .*$/m, `expires: ${tomorrow.toISOString().slice(0, 10)}`),
    );
    running = await engine.start({ env: { CANDOR_CONTENT_DIR: contentDir } });
    url = running.server.url;
  });
  afterAll(async () => {
    await running?.stop();
  });

  const get = (path: string) => fetch(`${url}${path}`, { redirect: 'manual' });
  const card = (html: string, slug: string) => html.match(new RegExp(`<li[^>]*data-slug="${slug}"[\\s\\S]*?</li>`))?.[0] ?? '';

  it('/documents lists every document with its framework, period, expiry and how to get it', async () => {
    const res = await get('/documents');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    for (const d of content.documents) {
      const item = card(html, d.slug);
      expect(item, d.slug).toContain(escapeHtml(d.title));
      expect(item).toContain(escapeHtml(d.description));
      expect(item).toContain(documentFrameworkLabels[d.framework]);
      expect(item).toContain(`<time datetime="${d.period.from.toISOString().slice(0, 10)}">${longDate(d.period.from)}</time>`);
      expect(item).toContain(`<time datetime="${d.period.to.toISOString().slice(0, 10)}">${longDate(d.period.to)}</time>`);
      if (d.access === 'public') {
        expect(item).toContain(`href="/documents/${d.slug}.pdf"`);
        expect(item).toContain('Public');
      } else {
        expect(item).not.toContain('.pdf');
        expect(item).toContain('Under NDA');
        expect(item).toContain('Available under NDA');
        // the request form, with the document preselected (src/pages/documents/request.astro)
        expect(item).toContain(`href="/documents/request?document=${d.slug}"`);
      }
    }
    // Linked from the navigation and the home page.
    expect(html).toContain('<a href="/documents" aria-current="page">Documents</a>');
    expect(await (await get('/')).text()).toContain('href="/documents"');
  });

  it('marks a document expired from its expiry day on, as the page is rendered, and no other', async () => {
    const html = await (await get('/documents')).text();
    const iso = card(html, 'iso-27001-certificate');
    expect(iso).toContain('data-expired="yes"');
    expect(iso).toContain(`Expired on <time datetime="${yesterday.toISOString().slice(0, 10)}">${longDate(yesterday)}</time>`);
    const soc2 = card(html, 'soc-2-type-ii-report');
    expect(soc2).toContain('data-expired="no"');
    expect(soc2).not.toContain('Expired');
    expect(soc2).toContain(`<dt>Expires</dt>`);
    expect(html.match(/Expired on/g)).toHaveLength(1);
  });

  it('serves a public PDF as a download, with the headers of the other static files', async () => {
    const page = await get('/docs/encryption');
    for (const d of published) {
      const res = await get(`/documents/${d.slug}.pdf`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/pdf');
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${d.slug}.pdf"`);
      expect(res.headers.get('cache-control')).toBe('public, max-age=300');
      expect(res.headers.get('etag')).toMatch(/^"[\w-]{27}"$/);
      for (const header of [
        'content-security-policy',
        'x-content-type-options',
        'x-frame-options',
        'referrer-policy',
        'cross-origin-resource-policy',
      ]) {
        expect(res.headers.get(header), header).toBe(page.headers.get(header));
      }
      expect(Buffer.from(await res.arrayBuffer())).toEqual(readFileSync(join(ROOT, d.pdf)));
      const again = await fetch(`${url}/documents/${d.slug}.pdf`, { headers: { 'If-None-Match': res.headers.get('etag') ?? '' } });
      expect(again.status).toBe(304);
    }
  });

  it('answers 404, without the file, at every plausible path of a gated document', async () => {
    for (const d of gated) {
      for (const path of plausiblePaths(d.slug, d.file)) {
        const res = await get(path);
        expect(res.status, path).toBe(404);
        expect(res.headers.get('content-type') ?? '', path).not.toContain('pdf');
        expect(await res.text(), path).not.toContain('%PDF-');
      }
    }
  });

  const warnings = () =>
    readRows(running.database, (q) =>
      q.db
        .select({ title: q.t.notifications.title })
        .from(q.t.notifications)
        .where(and(eq(q.t.notifications.trustCenterId, q.trustCenter), eq(q.t.notifications.kind, 'staff-document-expiry')))
        .orderBy(q.t.notifications.id),
    );

  it('warns staff on the dashboard and once by message of the expired and the expiring document, across a restart', async () => {
    const viewer = new ConsoleClient(url);
    viewer.setCookie('candor_session', (await signedInStaffOn(running.database, 'viewer')).token);
    const page = await viewer.get('/console');
    expect(page.status).toBe(200);
    const panel = page.html.match(/<ul id="documents-expiring">[\s\S]*?<\/ul>/)?.[0] ?? '';
    expect(pageText(panel)).toContain(`ISO/IEC 27001 certificate (public): expired on ${yesterday.toISOString().slice(0, 10)}`);
    expect(pageText(panel)).toContain(`SOC 2 Type II report (under NDA): expires on ${tomorrow.toISOString().slice(0, 10)} (in 1 day)`);
    expect(panel).not.toContain('data-processing-agreement');
    expect(panel).not.toContain('penetration-test-summary');
    expect(pageText(page.html)).not.toContain('Nothing needs a person right now');

    // The server planned both at start and sent them; a restart plans again and sends nothing more.
    await until(async () => (await warnings()).length === 2, 'two document warnings');
    await running.restart();
    url = running.server.url;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await warnings()).map((w) => w.title).sort()).toEqual([
      'Document expired: ISO/IEC 27001 certificate',
      'Document expires soon: SOC 2 Type II report',
    ]);
  });
});
