import type { APIRoute } from 'astro';
import { isRowId } from '../../../core/http/row-id.ts';
import { notificationProgress } from '../../../core/notify/progress.ts';

export const prerender = false;

/** Live counts for the console's progress bars: `?ids=1,2,3`. */
export const GET: APIRoute = async ({ url, locals }) => {
  const ids = (url.searchParams.get('ids') ?? '').split(',').map(Number).filter(isRowId).slice(0, 50);
  const progress = ids.length ? await notificationProgress(locals.candor.database, { ids }) : [];
  return Response.json(progress, { headers: { 'Cache-Control': 'no-store' } });
};
