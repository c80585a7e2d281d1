import type { APIRoute } from 'astro';
import { activityCsv, auditActivityExport } from '../../../core/access/activity.ts';
import { textStream } from '../../../lib/stream.ts';
import { staffAudit } from '../../../lib/subscription-context.ts';

export const prerender = false;

/** Every access request, decision, grant, revocation, expiry, view and download, one row each: audited before the first byte, then read page by page as it streams. */
export const GET: APIRoute = async (ctx) => {
  const { candor } = ctx.locals;
  const now = candor.now();
  await auditActivityExport(candor.database, staffAudit(ctx), now);
  const body = textStream(activityCsv(candor.database, candor.keys, now));
  return new Response(body, {
    headers: {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="candor-access-${now.toISOString().slice(0, 10)}.csv"`,
      'Cache-Control': 'no-store',
    },
  });
};
