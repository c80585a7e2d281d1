/**
 * Writes the demo trust center's PDFs into content/documents (run with
 * `node scripts/make-demo-documents.ts`; the output is committed). Each is a
 * short, plainly fictional stand-in for the real report, certificate or
 * agreement a company would put there. Built with pdf-lib, the library the
 * later watermarking step uses, without timestamps so a re-run writes the
 * same bytes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PDFDocument, type PDFFont, rgb, StandardFonts } from 'pdf-lib';

interface DemoPdf {
  file: string;
  title: string;
  subtitle: string;
  paragraphs: string[];
}

const ORGANISATION = 'Lumenwork, Inc.';
const NOTICE = 'Demonstration document: Lumenwork is a fictional company and nothing in this file was audited or certified.';

const demos: DemoPdf[] = [
  {
    file: 'soc-2-type-ii-report.pdf',
    title: 'SOC 2 Type II Report',
    subtitle: 'Security, Availability and Confidentiality · 1 July 2025 to 30 June 2026',
    paragraphs: [
      "Independent service auditor's report on the description of Lumenwork's knowledge-base and community platform and on the suitability of the design and operating effectiveness of its controls relevant to Security, Availability and Confidentiality.",
      'Section 1 holds the opinion, section 2 management’s assertion, section 3 the description of the system (infrastructure, software, people, procedures and data), and section 4 the criteria, the controls, the tests performed and their results.',
      'No exceptions were noted in the operating effectiveness of the controls tested. Complementary user entity controls are listed in section 3.9.',
    ],
  },
  {
    file: 'iso-27001-certificate.pdf',
    title: 'Certificate of Registration · ISO/IEC 27001:2022',
    subtitle: 'Information security management system · valid 14 March 2025 to 13 March 2028',
    paragraphs: [
      'This certifies that the information security management system of Lumenwork, Inc., 1420 Harbor Light Avenue, Portland, Oregon, has been assessed and found to conform to ISO/IEC 27001:2022.',
      'Scope: the development, operation and support of the Lumenwork hosted knowledge-base and community platform, including its AI assistant, from the Portland and Dublin offices and the cloud regions in the United States and the European Union, per the Statement of Applicability version 4.',
      'Certificate number LW-ISMS-0427 (fictional). Continued validity depends on annual surveillance audits.',
    ],
  },
  {
    file: 'penetration-test-summary.pdf',
    title: 'Penetration Test: Executive Summary',
    subtitle: 'External web application and API test · 8 to 26 September 2026',
    paragraphs: [
      'An independent testing firm assessed the Lumenwork web application, public API, single sign-on flows and tenant isolation over three weeks, with authenticated access to two test workspaces.',
      'Findings: no critical, one high (a stored cross-site scripting path in a legacy article import, fixed within 4 days), three medium and six low. Every high and medium finding was fixed and verified by a retest on 9 October 2026.',
      'The full report, with reproduction steps, is shared with customers under NDA.',
    ],
  },
  {
    file: 'data-processing-agreement.pdf',
    title: 'Data Processing Agreement',
    subtitle: 'Version 2026-01 · in force from 1 January 2026',
    paragraphs: [
      'This agreement forms part of the Lumenwork Terms of Service and governs the processing of personal data by Lumenwork on behalf of its customers, under Article 28 of the GDPR, the UK GDPR and the CCPA.',
      'Annexes: I, the parties, categories of data and data subjects; II, technical and organisational measures; III, the list of subprocessors (kept current at the trust center); IV, the Standard Contractual Clauses (module two) and the UK addendum.',
      'Customers accept it by using the service; a countersigned copy is available from the privacy team on request.',
    ],
  },
];

/** Lines of at most `width` points in `font` at `size`. */
function wrap(text: string, font: PDFFont, size: number, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    const candidate = line ? `${line} ${word}` : word;
    if (line && font.widthOfTextAtSize(candidate, size) > width) {
      lines.push(line);
      line = word;
    } else line = candidate;
  }
  if (line) lines.push(line);
  return lines;
}

async function render(demo: DemoPdf): Promise<Uint8Array> {
  const pdf = await PDFDocument.create({ updateMetadata: false });
  pdf.setTitle(demo.title, { showInWindowTitleBar: true });
  pdf.setAuthor(ORGANISATION);
  pdf.setSubject(demo.subtitle);
  pdf.setProducer('Candor demo content (pdf-lib)');
  const regular = await pdf.embedFont(StandardFonts.Helvetica);
  const bold = await pdf.embedFont(StandardFonts.HelveticaBold);
  const page = pdf.addPage([595, 842]);
  const margin = 64;
  const width = 595 - 2 * margin;
  let y = 842 - margin;
  const write = (text: string, font: PDFFont, size: number, color = rgb(0.1, 0.12, 0.16), gap = 6) => {
    for (const line of wrap(text, font, size, width)) {
      y -= size + 4;
      page.drawText(line, { x: margin, y, size, font, color });
    }
    y -= gap;
  };
  write(ORGANISATION, bold, 11, rgb(0.2, 0.35, 0.6), 14);
  write(demo.title, bold, 20, undefined, 4);
  write(demo.subtitle, regular, 11, rgb(0.35, 0.38, 0.42), 22);
  for (const paragraph of demo.paragraphs) write(paragraph, regular, 11, undefined, 12);
  y = margin + 20;
  write(NOTICE, regular, 9, rgb(0.6, 0.1, 0.1));
  return pdf.save({ useObjectStreams: false });
}

const folder = join(import.meta.dirname, '..', 'content', 'documents');
for (const demo of demos) {
  writeFileSync(join(folder, demo.file), await render(demo));
  console.log(`wrote content/documents/${demo.file}`);
}
