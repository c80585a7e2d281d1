import type { APIRoute } from 'astro';
import { evidencePdf } from '../../../core/evidence/pdf.ts';
import { evidenceDownload } from '../../../lib/evidence-export.ts';

export const prerender = false;

/** The signed evidence of notification as a PDF for people, the signed JSON attached; audited (evidence.exported). */
export const GET: APIRoute = async (ctx) => {
  const made = await evidenceDownload(ctx, 'pdf');
  if (!made.ok) return made.response;
  return new Response(Buffer.from(await evidencePdf(made.document, made.json)), {
    headers: {
      'Content-Type': 'application/pdf',
      'Content-Disposition': `attachment; filename="${made.filename}"`,
      'Cache-Control': 'no-store',
    },
  });
};
