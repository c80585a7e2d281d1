/**
 * A gated document's PDF for the signed-in reader, stamped with who they are (src/core/access/downloads.ts):
 * inline to view, `?download=1` as an attachment. Only with a reader session, an active grant covering the
 * document and the NDA in force accepted; otherwise the sign-in page, the NDA, or a page that says there is
 * no access, and never the file. Rendered per request, never cached.
 */
import type { APIRoute } from 'astro';
import { readDocument } from '../../../core/access/downloads.ts';
import { errorPage } from '../../../lib/error-page.ts';
import { readerContext, readerRedirect, readerSession } from '../../../lib/reader-context.ts';

export const prerender = false;

const NO_STORE = { 'Cache-Control': 'no-store' } as const;

export const GET: APIRoute = async (ctx) => {
  const { candor } = ctx.locals;
  const kind = ctx.url.searchParams.get('download') === '1' ? 'download' : 'view';
  const slug = String(ctx.params.slug ?? '');
  const outcome = await readDocument(readerContext(ctx), candor.content, candor.contentDir, await readerSession(ctx), slug, kind);
  switch (outcome.kind) {
    case 'sign-in':
      return readerRedirect('/documents/sign-in');
    case 'nda':
      return readerRedirect('/documents/nda');
    case 'no-access':
      return errorPage(
        ctx,
        {
          status: 403,
          title: 'No access to this document',
          message:
            'You have no access to this document, or your access has ended. Your documents are listed at /documents/library; ask us again if you still need this one.',
        },
        NO_STORE,
      );
    case 'unservable':
      return errorPage(
        ctx,
        {
          status: 503,
          title: 'This document cannot be served',
          message: 'The document could not be prepared for you. We have recorded the problem; try again later or contact us.',
        },
        NO_STORE,
      );
    case 'pdf':
      return new Response(Buffer.from(outcome.bytes), {
        headers: {
          'Content-Type': 'application/pdf',
          'Content-Disposition': `${kind === 'download' ? 'attachment' : 'inline'}; filename="${outcome.filename}"`,
          'Content-Length': String(outcome.bytes.byteLength),
          ...NO_STORE,
        },
      });
  }
};

/** Not a view: without this, Astro would answer HEAD with GET, stamping and recording a view nobody got. */
export const HEAD: APIRoute = () => new Response(null, { status: 405, headers: { Allow: 'GET', ...NO_STORE } });
