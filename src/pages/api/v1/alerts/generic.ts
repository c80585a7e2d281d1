/** POST /api/v1/alerts/generic: alerts from monitoring (src/core/alerts/payloads.ts describes the body). */
import type { APIRoute } from 'astro';
import { receiveAlertRequest } from '../../../../lib/alert-receiver.ts';

export const prerender = false;

export const POST: APIRoute = (ctx) => receiveAlertRequest(ctx, 'generic');
