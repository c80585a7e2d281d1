import type { APIRoute } from 'astro';
import { exportData, openSubscriptionLink } from '../../../core/subscriptions/manage.ts';
import { errorPage, notFound, PERSONAL, tooMany, wantsHtml } from '../../../lib/error-page.ts';
import { subscriptionContext } from '../../../lib/subscription-context.ts';

export const prerender = false;

/** The subscriber's right of access and portability: everything held, as JSON. */
export const GET: APIRoute = async (ctx) => {
  const sub = subscriptionContext(ctx);
  const link = await openSubscriptionLink(sub, 'manage', ctx.params.token ?? '');
  // The token is in the URL: no answer to it is kept by a cache or sent on in a Referer, refusals included.
  const personal = PERSONAL;
  if (!link.ok) {
    const message = link.message ?? 'This link is not valid any more: the subscription may have been removed.';
    // the download link followed in a browser; a script gets the line of text
    if (wantsHtml(ctx.request)) return errorPage(ctx, link.status === 429 ? tooMany(message) : notFound(message), personal);
    return new Response(message, { status: link.status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...personal } });
  }
  return new Response(`${JSON.stringify(await exportData(sub, link.view), null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Disposition': 'attachment; filename="subscription.json"',
      ...personal,
    },
  });
};
