import type { APIRoute } from 'astro';
import { z } from 'zod';
import { trustDocumentSchema } from '../../../core/trust/trust-document.ts';

export const prerender = true;

export const GET: APIRoute = () =>
  new Response(`${JSON.stringify(z.toJSONSchema(trustDocumentSchema, { target: 'draft-2020-12' }), null, 2)}\n`, {
    headers: { 'Content-Type': 'application/schema+json' },
  });
