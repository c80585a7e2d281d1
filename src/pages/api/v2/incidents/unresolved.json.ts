import type { APIRoute } from 'astro';
import { statuspageResponse } from '../../../../lib/statuspage-response.ts';

export const prerender = false;

export const GET: APIRoute = (ctx) => statuspageResponse(ctx, 'incidents/unresolved.json');
