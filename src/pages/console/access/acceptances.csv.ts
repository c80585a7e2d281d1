import type { APIRoute } from 'astro';
import { acceptancesCsv, auditAcceptanceExport } from '../../../core/access/activity.ts';
import { textStream } from '../../../lib/stream.ts';
import { staffAudit } from '../../../lib/subscription-context.ts';

export const prerender = false;

/** The NDA acceptance record (name typed, company, email, time, IP, browser, NDA version): audited before the first byte, then streamed page by page. */
export const GET: APIRoute = async (ctx) => {
  const { candor } = ctx.locals;
  const now = candor.now();
  await auditAcceptanceExport(candor.database, staffAudit(ctx), now);
  const body = textStream(acceptancesCsv(candor.database, candor.keys));
  return new Response(body, {
    headers: {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="candor-nda-acceptances-${now.toISOString().slice(0, 10)}.csv"`,
      'Cache-Control': 'no-store',
    },
  });
};
