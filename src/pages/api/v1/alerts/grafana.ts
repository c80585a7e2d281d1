/** POST /api/v1/alerts/grafana: alerts from monitoring (src/core/alerts/payloads.ts describes the body). */
import type { APIRoute } from 'astro';
import { receiveAlertRequest } from '../../../../lib/alert-receiver.ts';

export const prerender = false;

export const POST: APIRoute = (ctx) => receiveAlertRequest(ctx, 'grafana');
