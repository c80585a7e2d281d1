/**
 * Stamps a gated document's PDF for one reader (pdf-lib): every page gets the watermark text twice, once
 * across the page (large, light, diagonal) and once as a footer (small, readable). A PDF that cannot be
 * loaded (encrypted, corrupt) or stamped is refused: the caller gets an error and sends nothing of the
 * original. The standard Helvetica font encodes WinAnsi only: a character it cannot draw is transliterated
 * when it has an accent-free form, else drawn as `?`; `stampable` says which text ends up on the pages, so
 * the record of the view holds exactly that.
 */
import { degrees, PDFDocument, type PDFPage, rgb, StandardFonts } from 'pdf-lib';

/** The most of a typed name or company stamped, in characters. */
const TYPED_MAX = 60;

export class WatermarkError extends Error {
  readonly reason: 'encrypted' | 'unreadable' | 'empty';
  constructor(reason: 'encrypted' | 'unreadable' | 'empty', message: string) {
    super(message);
    this.name = 'WatermarkError';
    this.reason = reason;
  }
}

/**
 * The watermark line: "<email> · <UTC time> · ref <reference> · <name> · <company>". What was verified (the
 * email) and what finds the record (the reference) come first, so they stay on the page whatever the reader
 * typed; the typed name and company are cut to 60 characters each.
 */
export function watermarkText(input: { name: string; company: string; email: string; at: Date; reference: string }): string {
  const time = `${input.at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const typed = (s: string) => {
    const one = s.replace(/\s+/g, ' ').trim();
    return [...one].length > TYPED_MAX ? `${[...one].slice(0, TYPED_MAX - 1).join('')}…` : one;
  };
  return [input.email.trim(), time, `ref ${input.reference}`, typed(input.name), typed(input.company)].join(' · ');
}

/** What the font can draw of `text`: accents dropped where that helps, anything else `?`. */
export function stampable(text: string, charset: ReadonlySet<number>): string {
  let out = '';
  for (const ch of text) {
    if (charset.has(ch.codePointAt(0) ?? 0)) {
      out += ch;
      continue;
    }
    const plain = ch.normalize('NFKD').replace(/\p{M}/gu, '');
    out += plain !== '' && [...plain].every((c) => charset.has(c.codePointAt(0) ?? 0)) ? plain : '?';
  }
  return out;
}

/**
 * The PDF with `text` on every page, and the text as stamped (see `stampable`); throws WatermarkError
 * when the PDF cannot be read, has no pages or cannot be stamped.
 */
export async function stampPdf(original: Uint8Array, text: string): Promise<{ bytes: Uint8Array; stamped: string }> {
  let doc: PDFDocument;
  let pages: PDFPage[];
  try {
    doc = await PDFDocument.load(original, { updateMetadata: false, throwOnInvalidObject: true });
    // A file with no usable page tree loads and then fails here.
    pages = doc.getPages();
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    if (name === 'EncryptedPDFError' || (err instanceof Error && /encrypt/i.test(err.message)))
      throw new WatermarkError('encrypted', 'the PDF is encrypted');
    throw new WatermarkError('unreadable', `the PDF cannot be read (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  if (pages.length === 0) throw new WatermarkError('empty', 'the PDF has no pages');
  try {
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const line = stampable(text, new Set(font.getCharacterSet()));
    for (const page of pages) {
      // The page's own box: its origin is not always (0, 0).
      const { x: left, y: bottom, width, height } = page.getMediaBox();
      // Footer: small, dark, on one line (shrunk to fit the page's width, down to 5 pt).
      // Never below 5 pt: a longer line runs off the right edge, and its start (email, time, reference) stays.
      const footerSize = Math.max(5, Math.min(8, (width - 36) / Math.max(1, font.widthOfTextAtSize(line, 1))));
      page.drawText(line, { x: left + 18, y: bottom + 12, size: footerSize, font, color: rgb(0.25, 0.25, 0.25) });
      // Across the page: large and light, along the diagonal.
      const diagonal = Math.hypot(width, height);
      const angle = Math.atan2(height, width);
      const size = Math.max(6, Math.min(36, (diagonal * 0.85) / Math.max(1, font.widthOfTextAtSize(line, 1))));
      const textWidth = font.widthOfTextAtSize(line, size);
      // Centred when it fits; else from near the corner, so the start of the line is on the page.
      const start = Math.max(diagonal * 0.04, (diagonal - textWidth) / 2);
      page.drawText(line, {
        x: left + Math.cos(angle) * start + Math.sin(angle) * (size / 3),
        y: bottom + Math.sin(angle) * start - Math.cos(angle) * (size / 3),
        size,
        font,
        color: rgb(0.55, 0.55, 0.55),
        opacity: 0.3,
        rotate: degrees((angle * 180) / Math.PI),
      });
    }
    return { bytes: await doc.save({ updateFieldAppearances: false }), stamped: line };
  } catch (err) {
    throw new WatermarkError(
      'unreadable',
      `the PDF cannot be stamped (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
    );
  }
}
