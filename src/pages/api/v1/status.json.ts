import type { APIRoute } from 'astro';
import { statusDocument, statusSnapshot } from '../../../core/incidents/public.ts';

export const prerender = false;

export const GET: APIRoute = async ({ locals }) => {
  const { candor } = locals;
  const body = statusDocument(await statusSnapshot(candor.database, candor.content.components, candor.now()), candor.config.publicUrl);
  return new Response(`${JSON.stringify(body, null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'public, max-age=15',
      'Access-Control-Allow-Origin': '*',
    },
  });
};
