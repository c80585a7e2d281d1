import type { APIRoute } from 'astro';
import { applyOnce, applyResendEvent, verifyResendWebhook } from '../../core/notify/callbacks.ts';
import { readLimitedBody } from '../../lib/request-body.ts';

export const prerender = false;

/** Resend's delivery events, after their Svix signature verifies on the raw body. */
export const POST: APIRoute = async ({ request, locals }) => {
  const { candor } = locals;
  const secret = candor.config.providers.email?.webhookSecret;
  if (!secret) return new Response('Resend webhooks are not configured (RESEND_WEBHOOK_SECRET).', { status: 401 });
  const body = await readLimitedBody(request, 256 * 1024);
  if (body === null) return new Response('Body too large.', { status: 413 });
  const event = verifyResendWebhook(secret, body, request.headers);
  if (event === null) return new Response('Invalid signature.', { status: 401 });
  const now = candor.now();
  const messageId = request.headers.get('svix-id') ?? request.headers.get('webhook-id');
  const result = await applyOnce(candor.database, 'resend', messageId, now, (tx) => applyResendEvent(tx, candor.keys, event, now));
  // too early: Svix retries a non-2xx answer later, when the send it reports on is recorded
  if (result.status === 'early') return Response.json(result, { status: 503, headers: { 'Retry-After': '30' } });
  return Response.json(result, { status: result.status === 'refused' ? 400 : 200 });
};
