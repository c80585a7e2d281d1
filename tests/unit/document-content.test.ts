/**
 * Documents in content/documents (src/core/content/load.ts, schema.ts): the demo set is valid, and a
 * missing or bad field, or a missing or fake PDF, is refused with a message naming the file and the
 * field, as the build and `npm start` print it.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContentError } from '../../src/core/content/errors.ts';
import { loadContent } from '../../src/core/content/load.ts';
import { copyContent, editText } from '../helpers/content-fixture.ts';
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

const SOC2 = 'documents/soc-2-type-ii-report.md';
const ISO = 'documents/iso-27001-certificate.md';
const PEN = 'documents/penetration-test-summary.md';
const DPA = 'documents/data-processing-agreement.md';

describe('the demo documents', () => {
  it('are valid: public and gated, each with its PDF', () => {
    const { documents } = loadContent(join(ROOT, 'content'));
    expect(documents.map((d) => [d.slug, d.framework, d.access])).toEqual([
      ['data-processing-agreement', 'dpa', 'public'],
      ['iso-27001-certificate', 'iso-27001', 'public'],
      ['penetration-test-summary', 'pen-test', 'nda'],
      ['soc-2-type-ii-report', 'soc-2', 'nda'],
    ]);
    for (const d of documents) {
      expect(d.pdf).toBe(`content/documents/${d.file}`);
      expect(d.bytes).toBeGreaterThan(1000);
    }
    const soc2 = documents.find((d) => d.slug === 'soc-2-type-ii-report');
    expect(soc2?.period).toEqual({ from: new Date('2025-07-01T00:00:00Z'), to: new Date('2026-06-30T00:00:00Z') });
    expect(soc2?.expires).toEqual(new Date('2027-09-30T00:00:00Z'));
  });
});

describe('document validation names the document and the field', () => {
  it('refuses a missing title, an unknown framework or access level, and a bad date', () => {
    const dir = copyContent();
    editText(dir, SOC2, (t) => t.replace(/^title: .*\n/m, '').replace('framework: soc-2', 'framework: soc2'));
    editText(dir, ISO, (t) => t.replace('access: public', 'access: private').replace('expires: 2028-03-14', 'expires: 2028-02-30x'));
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(`content/${SOC2}: title: Invalid input: expected string, received undefined`);
    expect(problems).toContainEqual(
      expect.stringMatching(/^content\/documents\/soc-2-type-ii-report\.md: framework: must be one of soc-2, soc-3, .*, other$/),
    );
    expect(problems).toContainEqual(`content/${ISO}: access: must be one of public, nda`);
    expect(problems).toContainEqual(`content/${ISO}: expires: must be a date (YYYY-MM-DD)`);
  });

  it('refuses a period without an end, or ending before it starts, and a category it does not know', () => {
    const dir = copyContent();
    editText(dir, PEN, (t) => t.replace('  to: 2026-09-26\n', ''));
    editText(dir, DPA, (t) => t.replace('  to: 2026-12-31', '  to: 2025-12-31').replace('category: agreement', 'category: contract'));
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(`content/${PEN}: period.to: must be a date (YYYY-MM-DD)`);
    expect(problems).toContainEqual(`content/${DPA}: period.to: must not be before from`);
    expect(problems).toContainEqual(
      expect.stringMatching(/^content\/documents\/data-processing-agreement\.md: category: must be one of audit-report, /),
    );
  });

  it('refuses a missing PDF, a file that is not a PDF, and a file name that is not one', () => {
    const dir = copyContent();
    rmSync(join(dir, 'documents/soc-2-type-ii-report.pdf'));
    writeFileSync(join(dir, 'documents/iso-27001-certificate.pdf'), '<html>not a pdf</html>');
    editText(dir, PEN, (t) => t.replace('file: penetration-test-summary.pdf', 'file: ../site.yaml'));
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(`content/${SOC2}: file: content/documents/soc-2-type-ii-report.pdf does not exist`);
    expect(problems).toContainEqual(
      `content/${ISO}: file: content/documents/iso-27001-certificate.pdf is not a PDF (it does not start with %PDF-)`,
    );
    expect(problems).toContainEqual(`content/${PEN}: file: must be the file name of a PDF beside this file: lower-case, ending .pdf`);
  });

  it('refuses a field it does not know and text after the front matter', () => {
    const dir = copyContent();
    editText(dir, SOC2, (t) => t.replace('access: nda', 'access: nda\naudience: customers'));
    editText(dir, ISO, (t) => `${t}\nSome text that would be lost.\n`);
    const problems = problemsOf(dir);
    expect(problems).toContainEqual(
      expect.stringMatching(/^content\/documents\/soc-2-type-ii-report\.md: \(top level\): Unrecognized key: "audience"/),
    );
    expect(problems).toContainEqual(`content/${ISO}: a document holds front matter only (put its text in description)`);
  });

  it('accepts a trust center without a documents folder', () => {
    const dir = copyContent();
    rmSync(join(dir, 'documents'), { recursive: true });
    expect(loadContent(dir).documents).toEqual([]);
  });
});
