/**
 * NDAs in content/ndas (src/core/content/load.ts, schema.ts) and what src/core/access/nda.ts makes of them:
 * the demo is valid; a bad or missing field, an empty text or two texts effective the same day are refused
 * naming the file and the field, as the build and `npm start` print it; the NDA in force is the latest
 * effective on or before today; its version is the SHA-256 of its text as UTF-8. And the watermark
 * (src/core/documents/watermark.ts): on every page, and refused for an encrypted or unreadable PDF.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PDFDocument } from 'pdf-lib';
import { describe, expect, it } from 'vitest';
import { currentNda, ndaVersion } from '../../src/core/access/nda.ts';
import { ContentError } from '../../src/core/content/errors.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { stampable, stampPdf, WatermarkError, watermarkText } from '../../src/core/documents/watermark.ts';
import { copyContent, editText } from '../helpers/content-fixture.ts';
import { contentOf } from '../helpers/pdf.ts';
import { ROOT } from '../helpers/server.ts';

function problemsOf(contentDir: string): string[] {
  try {
    loadContent(contentDir);
  } catch (err) {
    if (err instanceof ContentError) return [...err.problems];
    throw err;
  }
  return [];
}

const NDA = 'ndas/mutual-nda.md';

describe('NDA content', () => {
  it('the demo NDA is valid, in force today, and versioned by the SHA-256 of its text', () => {
    const { ndas } = loadContent(join(ROOT, 'content'));
    expect(ndas.map((n) => [n.name, n.file])).toEqual([['mutual-nda', 'content/ndas/mutual-nda.md']]);
    const current = currentNda(ndas, new Date());
    expect(current?.nda.name).toBe('mutual-nda');
    expect(current?.version).toBe(
      createHash('sha256')
        .update(Buffer.from(ndas[0]?.body ?? '', 'utf8'))
        .digest('hex'),
    );
    expect(current?.version).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a missing title, a bad effective day, an unknown field and an empty text, naming file and field', () => {
    const dir = copyContent();
    editText(dir, NDA, (t) => t.replace(/^title: .*\n/m, '').replace(/^effective: .*$/m, 'effective: soon\nsigned: yes'));
    const problems = problemsOf(dir);
    expect(problems.some((p) => p.startsWith('content/ndas/mutual-nda.md') && p.includes('title'))).toBe(true);
    expect(problems.some((p) => p.startsWith('content/ndas/mutual-nda.md') && p.includes('effective'))).toBe(true);
    expect(problems.some((p) => p.startsWith('content/ndas/mutual-nda.md') && p.includes('signed'))).toBe(true);
    const empty = copyContent();
    writeFileSync(join(empty, 'ndas/empty.md'), '---\ntitle: Empty\neffective: 2026-02-01\n---\n\n');
    expect(problemsOf(empty)).toEqual(['content/ndas/empty.md: the agreement has no text']);
    const twice = copyContent();
    writeFileSync(join(twice, 'ndas/other.md'), '---\ntitle: Other\neffective: 2026-01-01\n---\nText.\n');
    expect(problemsOf(twice)).toEqual([
      expect.stringMatching(/^content\/ndas\/other\.md: effective: the same day as content\/ndas\/mutual-nda\.md/),
    ]);
  });

  it('the NDA in force is the latest effective on or before today; none before the first', () => {
    const make = (name: string, effective: string, body: string) => ({
      name,
      file: `content/ndas/${name}.md`,
      title: name,
      effective: new Date(effective),
      body,
    });
    const ndas = [make('v1', '2026-01-01', 'one'), make('v2', '2026-06-01', 'two'), make('v3', '2027-01-01', 'three')];
    expect(currentNda(ndas, new Date('2025-12-31T23:59:59Z'))).toBeNull();
    expect(currentNda(ndas, new Date('2026-05-31T23:59:59Z'))?.nda.name).toBe('v1');
    expect(currentNda(ndas, new Date('2026-06-01T00:00:00Z'))?.nda.name).toBe('v2');
    expect(currentNda(ndas, new Date('2027-03-01T00:00:00Z'))).toMatchObject({ nda: { name: 'v3' }, version: ndaVersion('three') });
    expect(ndaVersion('Zoë')).toBe(createHash('sha256').update(Buffer.from('Zoë', 'utf8')).digest('hex'));
  });
});

describe('the watermark', () => {
  const text = watermarkText({
    name: 'Zoë Łukasz',
    company: 'Acme 株式会社',
    email: 'z@acme.example',
    at: new Date('2026-12-03T10:20:30Z'),
    reference: 'abc123',
  });

  it('says which address, when (UTC), which view, who and which company: the verified address first', () => {
    expect(text).toBe('z@acme.example · 2026-12-03 10:20 UTC · ref abc123 · Zoë Łukasz · Acme 株式会社');
    // Helvetica draws WinAnsi: ë stays, Ł loses nothing it can keep, what it cannot draw becomes ?
    expect(stampable(text, new Set([...'Zoë ukasz·Acme@.0123456789-:UTCrefabcxmpl?'].map((c) => c.codePointAt(0) ?? 0)))).toBe(
      'z@acme.example · 2026-12-03 10:20 UTC · ref abc123 · Zoë ?ukasz · Acme ????',
    );
  });

  it('cuts a typed name and company to 60 characters, so they cannot push the address off the page', async () => {
    const long = watermarkText({
      name: 'W'.repeat(200),
      company: 'M'.repeat(200),
      email: 'z@acme.example',
      at: new Date(0),
      reference: 'r1',
    });
    expect(long.startsWith('z@acme.example · 1970-01-01 00:00 UTC · ref r1 · ')).toBe(true);
    expect(long).toContain(` · ${'W'.repeat(59)}… · ${'M'.repeat(59)}…`);
    expect(long).not.toContain('W'.repeat(60));
    // on an A4 page the footer is drawn at 5 pt at least
    const doc = await PDFDocument.create();
    doc.addPage([595, 842]);
    const { bytes } = await stampPdf(await doc.save(), long);
    const sizes = [...(await contentOf(bytes)).matchAll(/ ([\d.]+) Tf/g)].map((m) => Number(m[1]));
    expect(sizes.length).toBe(2);
    for (const size of sizes) expect(size).toBeGreaterThanOrEqual(5);
  });

  it('stamps every page and refuses an encrypted or unreadable PDF', async () => {
    const doc = await PDFDocument.create();
    for (let i = 0; i < 4; i++) doc.addPage([300 + i * 100, 400]);
    const { bytes, stamped } = await stampPdf(await doc.save(), 'Dana · Acme · d@acme.example · ref 1');
    expect(stamped).toBe('Dana · Acme · d@acme.example · ref 1');
    expect((await PDFDocument.load(bytes)).getPageCount()).toBe(4);
    const locked = await PDFDocument.create();
    locked.addPage();
    locked.context.trailerInfo.Encrypt = locked.context.register(locked.context.obj({ Filter: 'Standard', V: 1, R: 2, P: -4 }));
    await expect(stampPdf(await locked.save({ useObjectStreams: false }), 'x')).rejects.toMatchObject({ reason: 'encrypted' });
    await expect(stampPdf(new TextEncoder().encode('%PDF-1.7\ngarbage\n%%EOF\n'), 'x')).rejects.toBeInstanceOf(WatermarkError);
    await expect(stampPdf(new Uint8Array(0), 'x')).rejects.toBeInstanceOf(WatermarkError);
  });
});
