/**
 * What a served PDF says, for tests that check a watermark: the text drawn on each page with a standard
 * font (as src/core/documents/watermark.ts draws it), read back from the page's content streams with pdf-lib.
 */
import { decodePDFRawStream, PDFArray, PDFDocument, PDFName, PDFRawStream, type PDFRef } from 'pdf-lib';

/** The text drawn on each page with a standard font, as the hex strings of its content streams (WinAnsi bytes). */
export async function pageTexts(bytes: Uint8Array): Promise<string[]> {
  const doc = await PDFDocument.load(bytes);
  return doc.getPages().map((page) => {
    const contents = page.node.Contents();
    const refs: PDFRef[] = contents instanceof PDFArray ? (contents.asArray() as PDFRef[]) : [];
    const streams = contents instanceof PDFArray ? refs.map((r) => doc.context.lookup(r)) : [contents];
    let text = '';
    for (const stream of streams) {
      if (!(stream instanceof PDFRawStream)) continue;
      const raw = stream.dict.get(PDFName.of('Filter')) ? decodePDFRawStream(stream).decode() : stream.contents;
      const ops = Buffer.from(raw).toString('latin1');
      for (const m of ops.matchAll(/<([0-9A-Fa-f]+)>\s*Tj/g)) text += `${Buffer.from(m[1] ?? '', 'hex').toString('latin1')}\n`;
      for (const m of ops.matchAll(/\(((?:[^()\\]|\\.)*)\)\s*Tj/g)) text += `${m[1]}\n`;
    }
    return text;
  });
}
/** The watermark as WinAnsi text (· is 0xB7 there, as in latin1). */
export const winAnsi = (s: string) => Buffer.from(s, 'latin1').toString('latin1');
