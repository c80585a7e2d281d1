import type { APIContext } from 'astro';
import { verifyTwilioSignature } from '../core/notify/callbacks.ts';
import { readLimitedBody } from './request-body.ts';

type Verified = { ok: true; params: Record<string, string> } | { ok: false; response: Response };

/**
 * Reads a Twilio webhook and checks X-Twilio-Signature against the URL
 * Twilio called, which is our public URL (a proxy in front may have changed
 * the host this server sees).
 */
export async function twilioRequest(ctx: APIContext): Promise<Verified> {
  const { candor } = ctx.locals;
  const sms = candor.config.providers.sms;
  if (!sms) return { ok: false, response: new Response('Twilio is not configured.', { status: 401 }) };
  const body = await readLimitedBody(ctx.request, 64 * 1024);
  if (body === null) return { ok: false, response: new Response('Body too large.', { status: 413 }) };
  const params = Object.fromEntries(new URLSearchParams(body));
  const url = new URL(`${ctx.url.pathname.replace(/^\//, '')}${ctx.url.search}`, candor.config.publicUrl).href;
  if (!verifyTwilioSignature(sms.authToken, ctx.request.headers.get('x-twilio-signature'), url, params)) {
    return { ok: false, response: new Response('Invalid signature.', { status: 401 }) };
  }
  return { ok: true, params };
}
