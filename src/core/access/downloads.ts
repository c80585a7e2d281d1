/**
 * What a signed-in customer may read, and the reading itself: the library lists the gated documents of
 * their active grants (neither revoked nor expired); a view or download needs a reader session, an active
 * grant covering the document and the NDA in force accepted. The PDF is read from the content directory
 * at request time (gated PDFs are never in the build), stamped for this reader (src/core/documents/
 * watermark.ts), and recorded in `document_views` with the stamped text before a byte is sent. A PDF that
 * cannot be stamped is never sent, and the refusal is audited.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Database } from '../../../db/engine/types.ts';
import { activeGrantsOf, type GrantRow, insertDocumentView } from '../../stores/reader-access.ts';
import { recipientById } from '../../stores/subscribers.ts';
import { writeAudit } from '../audit/log.ts';
import type { DocumentSource, TrustContent } from '../content/load.ts';
import { stampPdf, WatermarkError, watermarkText } from '../documents/watermark.ts';
import { openRecipient } from '../notify/recipients.ts';
import { acceptanceOfCurrent, currentNda } from './nda.ts';
import type { ReaderContext, ReaderSession } from './reader-sessions.ts';

export interface LibraryEntry {
  document: DocumentSource;
  /** the latest expiry among the active grants that cover it */
  expiresAt: Date;
}

export interface Library {
  email: string;
  grants: GrantRow[];
  entries: LibraryEntry[];
  /** the NDA in force has been accepted by this reader (false when there is none to accept) */
  ndaAccepted: boolean;
}

/** The gated documents of these grants that exist in the content, with the latest expiry covering each. */
function entriesOf(content: TrustContent, grants: readonly GrantRow[]): LibraryEntry[] {
  const entries: LibraryEntry[] = [];
  for (const document of content.documents) {
    if (document.access !== 'nda') continue;
    const covering = grants.filter((g) => g.documents.includes(document.slug));
    if (covering.length === 0) continue;
    entries.push({ document, expiresAt: new Date(Math.max(...covering.map((g) => g.expiresAt.getTime()))) });
  }
  return entries;
}

async function ndaAccepted(database: Database, content: TrustContent, recipientId: number, now: Date): Promise<boolean> {
  const current = currentNda(content.ndas, now);
  if (!current) return false;
  return (await acceptanceOfCurrent(database, recipientId, current)) !== undefined;
}

export async function readerLibrary(ctx: ReaderContext, content: TrustContent, session: ReaderSession): Promise<Library> {
  const { grants, recipient } = await ctx.database.read(async (r) => ({
    grants: await activeGrantsOf(r, session.recipientId, ctx.now),
    recipient: await recipientById(r, session.recipientId),
  }));
  return {
    email: recipient ? openRecipient(ctx.keys, recipient).address : '',
    grants,
    entries: entriesOf(content, grants),
    ndaAccepted: await ndaAccepted(ctx.database, content, session.recipientId, ctx.now),
  };
}

export type ReadOutcome =
  | { kind: 'sign-in' }
  | { kind: 'no-access' }
  | { kind: 'nda' }
  | { kind: 'unservable' }
  | { kind: 'pdf'; bytes: Uint8Array; filename: string; reference: string };

/** Where a document's PDF is: its path is relative to the content directory's parent (src/core/content/load.ts). */
export function pdfPathOf(contentDir: string, document: DocumentSource): string {
  return resolve(join(contentDir, '..'), document.pdf);
}

/** A reference for the stamp and the record: short enough to read off a page, random so it cannot be guessed. */
const newReference = () => randomBytes(6).toString('hex');

/**
 * A view (inline) or download (attachment) of a gated document by the signed-in reader: the stamped PDF,
 * or why not. `session` null: not signed in.
 */
export async function readDocument(
  ctx: ReaderContext,
  content: TrustContent,
  contentDir: string,
  session: ReaderSession | null,
  slug: string,
  kind: 'view' | 'download',
): Promise<ReadOutcome> {
  if (!session) return { kind: 'sign-in' };
  const document = content.documents.find((d) => d.slug === slug && d.access === 'nda');
  const grants = await ctx.database.read((r) => activeGrantsOf(r, session.recipientId, ctx.now));
  const grant = document ? grants.find((g) => g.documents.includes(document.slug)) : undefined;
  if (!document || !grant) return { kind: 'no-access' };
  const current = currentNda(content.ndas, ctx.now);
  const acceptance = current ? await acceptanceOfCurrent(ctx.database, session.recipientId, current) : undefined;
  if (!acceptance) return { kind: 'nda' };
  const recipient = await ctx.database.read((r) => recipientById(r, session.recipientId));
  if (!recipient) return { kind: 'sign-in' };
  const email = openRecipient(ctx.keys, recipient).address;
  const reference = newReference();
  const text = watermarkText({ name: acceptance.fullName, company: acceptance.company, email, at: ctx.now, reference });

  let stamped: { bytes: Uint8Array; stamped: string };
  try {
    stamped = await stampPdf(await readFile(pdfPathOf(contentDir, document)), text);
  } catch (err) {
    const reason = err instanceof WatermarkError ? err.reason : 'missing';
    const message = err instanceof Error ? err.message : String(err);
    console.error(`[candor] gated document ${document.slug} not served: ${message}`);
    await ctx.database.transaction((tx) =>
      writeAudit(
        tx,
        {
          actor: { type: 'anonymous' },
          ip: ctx.client.ip,
          userAgent: ctx.client.userAgent,
          action: 'access.document.unservable',
          target: `document:${document.slug}`,
          summary: { recipient: session.recipientId, grant: grant.id, kind, reason },
        },
        ctx.now,
      ),
    );
    return { kind: 'unservable' };
  }
  await ctx.database.transaction((tx) =>
    insertDocumentView(tx, {
      grantId: grant.id,
      recipientId: session.recipientId,
      document: document.slug,
      kind,
      at: ctx.now,
      watermark: stamped.stamped,
      ip: ctx.client.ip,
      userAgent: ctx.client.userAgent?.slice(0, 512) ?? null,
    }),
  );
  return { kind: 'pdf', bytes: stamped.bytes, filename: `${document.slug}.pdf`, reference };
}
