import type { APIRoute } from 'astro';
import { exportData, subscriptionFromToken } from '../../../core/subscriptions/manage.ts';
import { subscriptionContext } from '../../../lib/subscription-context.ts';

export const prerender = false;

/** The subscriber's right of access and portability: everything held, as JSON. */
export const GET: APIRoute = (ctx) => {
  const sub = subscriptionContext(ctx);
  const view = subscriptionFromToken(sub, 'manage', ctx.params.token ?? '');
  if (!view)
    return new Response('This link is not valid any more.', { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  return new Response(`${JSON.stringify(exportData(sub, view), null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Disposition': 'attachment; filename="subscription.json"',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'same-origin',
    },
  });
};
