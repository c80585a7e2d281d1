import type { APIRoute } from 'astro';
import { changeFeedEntries } from '../../core/changes/public.ts';
import { formatForExtension, renderFeed } from '../../core/feeds/feed.ts';
import { feedBuilders, isFeedName } from '../../core/feeds/sources.ts';
import { incidentFeedEntries } from '../../core/incidents/public.ts';
import { errorPage, notFound, wantsHtml } from '../../lib/error-page.ts';
import { getDocs, getSite, lastUpdated } from '../../lib/trust-content.ts';

// /feeds/incidents.xml|atom|json and /feeds/changes.xml|atom|json. Per request: the
// links are absolute on the public URL, and the entries come from the database.
export const prerender = false;

export const GET: APIRoute = async (ctx) => {
  const { params, locals } = ctx;
  const name = params.name ?? '';
  const format = formatForExtension(params.format ?? '');
  if (!isFeedName(name) || !format) {
    if (wantsHtml(ctx.request))
      return errorPage(ctx, notFound('There is no feed at this address. The feeds are listed on the subscribe page.'));
    return new Response('Not found\n', { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
  const feed = feedBuilders[name]({
    site: await getSite(),
    publicUrl: locals.candor.config.publicUrl,
    entries:
      name === 'incidents'
        ? await incidentFeedEntries(locals.candor.database, locals.candor.content.components, locals.candor.config.publicUrl)
        : await changeFeedEntries(locals.candor.database, locals.candor.config.publicUrl),
    emptyUpdated: lastUpdated(await getDocs()),
  });
  const { body, contentType } = renderFeed(feed, format);
  return new Response(body, {
    headers: { 'Content-Type': contentType, 'Cache-Control': 'public, max-age=60', 'Access-Control-Allow-Origin': '*' },
  });
};
