/**
 * What a served PDF says, for tests that check a watermark: the text drawn on each page with a standard
 * font (as src/core/documents/watermark.ts draws it), read back from the page's content streams with pdf-lib.
 */
import { decodePDFRawStream, PDFArray, PDFDocument, PDFName, type PDFPage, PDFRawStream, type PDFRef } from 'pdf-lib';

/** A page's content streams, decoded, as text (operators and operands; WinAnsi bytes as latin1). */
function operatorsOf(doc: PDFDocument, page: PDFPage): string {
  const contents = page.node.Contents();
  const streams = contents instanceof PDFArray ? (contents.asArray() as PDFRef[]).map((r) => doc.context.lookup(r)) : [contents];
  let out = '';
  for (const stream of streams) {
    if (!(stream instanceof PDFRawStream)) continue;
    const raw = stream.dict.get(PDFName.of('Filter')) ? decodePDFRawStream(stream).decode() : stream.contents;
    out += Buffer.from(raw).toString('latin1');
  }
  return out;
}

/** The text drawn on each page with a standard font, as the strings of its content streams (WinAnsi bytes). */
export async function pageTexts(bytes: Uint8Array): Promise<string[]> {
  const doc = await PDFDocument.load(bytes);
  return doc.getPages().map((page) => {
    const ops = operatorsOf(doc, page);
    let text = '';
    for (const m of ops.matchAll(/<([0-9A-Fa-f]+)>\s*Tj/g)) text += `${Buffer.from(m[1] ?? '', 'hex').toString('latin1')}\n`;
    for (const m of ops.matchAll(/\(((?:[^()\\]|\\.)*)\)\s*Tj/g)) text += `${m[1]}\n`;
    return text;
  });
}

/** The watermark as WinAnsi text (· is 0xB7 there, as in latin1). */
export const winAnsi = (s: string) => Buffer.from(s, 'latin1').toString('latin1');

/** The first page's content streams, decoded, as text (operators and operands). */
export async function contentOf(bytes: Uint8Array): Promise<string> {
  const doc = await PDFDocument.load(bytes);
  const page = doc.getPages()[0];
  return page ? operatorsOf(doc, page) : '';
}
