import type { APIRoute } from 'astro';
import { auditExport, subscribersJson } from '../../../core/subscriptions/directory.ts';
import { textStream } from '../../../lib/stream.ts';
import { staffAudit } from '../../../lib/subscription-context.ts';

export const prerender = false;

/** Every subscriber address with its consent record, as JSON, for an admin: audited before the first byte, then read page by page as it streams. */
export const GET: APIRoute = async (ctx) => {
  const { candor } = ctx.locals;
  await auditExport(candor.database, staffAudit(ctx), candor.now(), 'json');
  const body = textStream(subscribersJson(candor.database, candor.keys));
  return new Response(body, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Disposition': `attachment; filename="candor-subscribers-${candor.now().toISOString().slice(0, 10)}.json"`,
      'Cache-Control': 'no-store',
    },
  });
};
