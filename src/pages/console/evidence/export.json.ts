import type { APIRoute } from 'astro';
import { evidenceDownload } from '../../../lib/evidence-export.ts';

export const prerender = false;

/** The signed evidence of notification as JSON, for staff who may export it; audited (evidence.exported). */
export const GET: APIRoute = async (ctx) => {
  const made = await evidenceDownload(ctx, 'json');
  if (!made.ok) return made.response;
  return new Response(made.json, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Disposition': `attachment; filename="${made.filename}"`,
      'Cache-Control': 'no-store',
    },
  });
};
