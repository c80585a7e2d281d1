import type { APIRoute } from 'astro';
import { isRowId } from '../../core/http/row-id.ts';
import { maintenanceCalendarFor } from '../../core/incidents/public.ts';
import { errorPage, notFound, wantsHtml } from '../../lib/error-page.ts';

export const prerender = false;

/** A public maintenance window as a calendar event; 404 for anything else. */
export const GET: APIRoute = async (ctx) => {
  const { params, locals } = ctx;
  const { candor } = locals;
  const id = Number(params.id);
  const calendar = isRowId(id)
    ? await maintenanceCalendarFor(candor.database, candor.content, candor.config.publicUrl, id, candor.now())
    : null;
  if (!calendar) {
    // a person who followed the link; a calendar app gets the line of text
    if (wantsHtml(ctx.request)) return errorPage(ctx, notFound('No scheduled maintenance here: this address has no calendar event.'));
    return new Response('No scheduled maintenance here.\n', { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
  return new Response(calendar, {
    headers: {
      'Content-Type': 'text/calendar; charset=utf-8',
      'Content-Disposition': `attachment; filename="maintenance-${id}.ics"`,
      'Cache-Control': 'public, max-age=60',
    },
  });
};
