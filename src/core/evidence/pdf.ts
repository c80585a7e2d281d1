/**
 * The evidence document for people: a PDF (pdf-lib, already the documents' library, pure JavaScript)
 * with the same content as the signed JSON, one block per notice, the signature and key id printed,
 * and the signed JSON itself attached as `evidence.json`, so `candor evidence verify` checks a PDF as
 * it checks the JSON (`embeddedEvidence` reads the attachment back). The printed text is a rendering:
 * what is verified is the attachment.
 */
import {
  AFRelationship,
  decodePDFRawStream,
  PDFArray,
  PDFDict,
  PDFDocument,
  type PDFFont,
  PDFHexString,
  PDFName,
  type PDFPage,
  PDFRawStream,
  PDFString,
  rgb,
  StandardFonts,
} from 'pdf-lib';
import { stampable } from '../documents/watermark.ts';
import { describeNotice, type EvidenceDocument, type EvidenceEntry } from './document.ts';

export const ATTACHMENT_NAME = 'evidence.json';

const PAGE = { width: 595.28, height: 841.89 };
const MARGIN = 50;
const SIZE = 9;
const LINE = 12;

/** Plain text of an entry's content, for reading (the attachment holds it exactly). */
function contentText(content: unknown): string {
  if (content === null || content === undefined) return '(no content stored for this channel)';
  if (typeof content !== 'object') return String(content);
  const c = content as Record<string, unknown>;
  if (typeof c.subject === 'string' && typeof c.text === 'string') return `Subject: ${c.subject}\n${c.text}`;
  if (typeof c.body === 'string') return `${c.body}${typeof c.link === 'string' ? `\n${c.link}` : ''}`;
  if (typeof c.text === 'string') return c.text;
  return JSON.stringify(content);
}

class Writer {
  page: PDFPage;
  y = PAGE.height - MARGIN;
  private readonly doc: PDFDocument;
  private readonly font: PDFFont;
  private readonly bold: PDFFont;
  constructor(doc: PDFDocument, font: PDFFont, bold: PDFFont) {
    this.doc = doc;
    this.font = font;
    this.bold = bold;
    this.page = doc.addPage([PAGE.width, PAGE.height]);
  }
  private wrap(text: string, font: PDFFont, size: number): string[] {
    const charset = new Set(font.getCharacterSet());
    const out: string[] = [];
    for (const raw of stampable(text.replace(/\t/g, ' ').replace(/\r/g, ''), new Set([...charset, 10])).split('\n')) {
      let line = '';
      for (const word of raw.split(/(\s+)/)) {
        const next = line + word;
        if (font.widthOfTextAtSize(next, size) <= PAGE.width - 2 * MARGIN) {
          line = next;
          continue;
        }
        if (line.trim()) out.push(line.trimEnd());
        line = word.trimStart();
        // a word longer than a line (a URL, a hash): cut it
        while (font.widthOfTextAtSize(line, size) > PAGE.width - 2 * MARGIN) {
          let cut = line.length - 1;
          while (cut > 1 && font.widthOfTextAtSize(line.slice(0, cut), size) > PAGE.width - 2 * MARGIN) cut--;
          out.push(line.slice(0, cut));
          line = line.slice(cut);
        }
      }
      out.push(line.trimEnd());
    }
    return out;
  }
  text(text: string, options: { bold?: boolean; size?: number; grey?: boolean } = {}): void {
    const font = options.bold ? this.bold : this.font;
    const size = options.size ?? SIZE;
    for (const line of this.wrap(text, font, size)) {
      if (this.y < MARGIN + LINE) {
        this.page = this.doc.addPage([PAGE.width, PAGE.height]);
        this.y = PAGE.height - MARGIN;
      }
      this.page.drawText(line, { x: MARGIN, y: this.y - size, size, font, color: options.grey ? rgb(0.3, 0.3, 0.3) : rgb(0, 0, 0) });
      this.y -= Math.max(LINE, size + 3);
    }
  }
  gap(points = 6): void {
    this.y -= points;
  }
}

const when = (iso: string | null) => (iso ? `${iso.replace('T', ' ').replace('Z', '')} UTC` : 'not recorded');

function entryLines(e: EvidenceEntry): string[] {
  const n = e.notice;
  return [
    `Notice: ${describeNotice(n)}: ${n.title}`,
    ...(n.kind === 'change-notice'
      ? [`Effective on: ${n.effectiveOn ?? 'not set'}; objections until: ${n.objectionDeadline ?? 'no deadline'}`]
      : []),
    `Channel: ${e.channel}; to: ${e.address ?? '(address erased)'}; state at export: ${e.status}`,
    `Published: ${when(e.publishedAt)}`,
    `Accepted by the provider: ${when(e.acceptedAt)}${e.acceptedBy === 'reconcile' ? ' (confirmed by asking the provider after a crash)' : ''}`,
    `Delivered according to the provider: ${e.deliveredAt ? when(e.deliveredAt) : 'no delivery report'}`,
    `Provider message id: ${e.providerMessageId ?? 'none'}`,
    `Audit entry: ${e.audit ? `#${e.audit.id} (${e.audit.action}), MAC ${e.audit.hash}` : 'none found'}`,
  ];
}

/** The PDF of a signed document; `json` is the document's text, attached as it is. */
export async function evidencePdf(document: EvidenceDocument, json: string): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const h = document.header;
  doc.setTitle(`Evidence of notification: ${h.scope.label}`);
  doc.setAuthor(h.issuer.organisation);
  doc.setCreator('Candor');
  doc.setProducer('Candor');
  doc.setCreationDate(new Date(h.generatedAt));
  doc.setModificationDate(new Date(h.generatedAt));
  const w = new Writer(doc, await doc.embedFont(StandardFonts.Helvetica), await doc.embedFont(StandardFonts.HelveticaBold));
  w.text('Evidence of notification', { bold: true, size: 16 });
  w.gap();
  w.text(`Issued by ${h.issuer.organisation} (${h.issuer.publicUrl})`);
  w.text(`Scope: ${h.scope.type} ${h.scope.label}`);
  w.text(
    `Period: ${h.period.from ? when(h.period.from) : 'from the first notice'} to ${h.period.to ? when(h.period.to) : 'the time of export'}`,
  );
  w.text(`Generated: ${when(h.generatedAt)}; ${h.notices} notice${h.notices === 1 ? '' : 's'}`);
  w.text(`Audit chain head at export: ${h.auditHead ? `entry #${h.auditHead.id}, MAC ${h.auditHead.hash}` : 'the log was empty'}`);
  w.text(h.contentNote, { grey: true });
  w.gap();
  w.text('Signature', { bold: true, size: 11 });
  w.text(`Ed25519, key id (SHA-256 of the public key): ${document.signature.keyId}`);
  w.text(`Signature: ${document.signature.value}`);
  w.text(
    `The signed document is attached to this PDF as ${ATTACHMENT_NAME}. To verify it: npm run candor -- evidence verify <this file> --key ${new URL('.well-known/candor-evidence-key', h.issuer.publicUrl).href}`,
    { grey: true },
  );
  for (const e of document.entries) {
    w.gap(10);
    w.text(`${e.n}. ${e.channel} to ${e.address ?? '(address erased)'}`, { bold: true, size: 11 });
    for (const line of entryLines(e)) w.text(line);
    w.text('Content as sent:', { bold: true });
    w.text(contentText(e.content), { grey: true });
  }
  await doc.attach(Buffer.from(json, 'utf8'), ATTACHMENT_NAME, {
    mimeType: 'application/json',
    description: 'The signed evidence document (candor-evidence/1)',
    creationDate: new Date(h.generatedAt),
    modificationDate: new Date(h.generatedAt),
    afRelationship: AFRelationship.Source,
  });
  return doc.save();
}

/** The text of the `evidence.json` a PDF carries, or null when it has none (or is not a readable PDF). */
export async function embeddedEvidence(bytes: Uint8Array): Promise<string | null> {
  let doc: PDFDocument;
  try {
    doc = await PDFDocument.load(bytes, { updateMetadata: false });
  } catch {
    return null;
  }
  const names = doc.catalog.lookupMaybe(PDFName.of('Names'), PDFDict);
  const embedded = names?.lookupMaybe(PDFName.of('EmbeddedFiles'), PDFDict);
  const list = embedded?.lookupMaybe(PDFName.of('Names'), PDFArray);
  if (!list) return null;
  for (let i = 0; i + 1 < list.size(); i += 2) {
    const name = list.lookup(i);
    const label = name instanceof PDFString || name instanceof PDFHexString ? name.decodeText() : '';
    if (label !== ATTACHMENT_NAME) continue;
    const spec = list.lookupMaybe(i + 1, PDFDict);
    const ef = spec?.lookupMaybe(PDFName.of('EF'), PDFDict);
    const stream = ef?.lookup(PDFName.of('F'));
    if (!(stream instanceof PDFRawStream)) return null;
    const raw = stream.dict.get(PDFName.of('Filter')) ? decodePDFRawStream(stream).decode() : stream.contents;
    return Buffer.from(raw).toString('utf8');
  }
  return null;
}
