import type { APIRoute } from 'astro';
import { exportData, openSubscriptionLink } from '../../../core/subscriptions/manage.ts';
import { subscriptionContext } from '../../../lib/subscription-context.ts';

export const prerender = false;

/** The subscriber's right of access and portability: everything held, as JSON. */
export const GET: APIRoute = (ctx) => {
  const sub = subscriptionContext(ctx);
  const link = openSubscriptionLink(sub, 'manage', ctx.params.token ?? '');
  // The token is in the URL: no answer to it is kept by a cache or sent on in a Referer, refusals included.
  const personal = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'same-origin' };
  if (!link.ok)
    return new Response(link.message ?? 'This link is not valid any more.', {
      status: link.status,
      headers: { 'Content-Type': 'text/plain; charset=utf-8', ...personal },
    });
  return new Response(`${JSON.stringify(exportData(sub, link.view), null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Disposition': 'attachment; filename="subscription.json"',
      ...personal,
    },
  });
};
