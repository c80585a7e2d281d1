import type { APIRoute } from 'astro';
import { subscribersCsv } from '../../../core/subscriptions/directory.ts';
import { auditStaffAction } from '../../../lib/staff-audit.ts';
import { textStream } from '../../../lib/stream.ts';

export const prerender = false;

/** Every subscriber address in clear, for an admin: audited before the first byte. */
export const GET: APIRoute = (ctx) => {
  const { candor } = ctx.locals;
  const count = (candor.db.$client.prepare('SELECT count(*) AS n FROM recipients WHERE subscriber_id IS NOT NULL').get() as { n: number })
    .n;
  auditStaffAction(ctx, 'subscribers.exported', 'subscribers', { format: 'csv', rows: count });
  const rows = subscribersCsv(candor.db, candor.keys);
  const body = textStream(rows);
  return new Response(body, {
    headers: {
      'Content-Type': 'text/csv; charset=utf-8',
      'Content-Disposition': `attachment; filename="candor-subscribers-${candor.now().toISOString().slice(0, 10)}.csv"`,
      'Cache-Control': 'no-store',
    },
  });
};
