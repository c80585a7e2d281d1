import type { APIRoute } from 'astro';
import { subprocessorsDocument } from '../../../core/changes/public.ts';

export const prerender = false;

export const GET: APIRoute = async ({ locals }) => {
  const { candor } = locals;
  const body = await subprocessorsDocument(candor.database, candor.config.publicUrl, candor.now());
  return new Response(`${JSON.stringify(body, null, 2)}\n`, {
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'public, max-age=60',
      'Access-Control-Allow-Origin': '*',
    },
  });
};
