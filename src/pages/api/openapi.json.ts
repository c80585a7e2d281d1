/** GET /api/openapi.json: the staff API's OpenAPI 3.1 document, generated from the operation registry (src/lib/api/openapi.ts). */
import type { APIRoute } from 'astro';
import { openApiDocument } from '../../lib/api/openapi.ts';

export const prerender = false;

export const GET: APIRoute = ({ locals }) =>
  new Response(`${JSON.stringify(openApiDocument(locals.candor.config.publicUrl, '1'), null, 2)}\n`, {
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'public, max-age=300' },
  });
