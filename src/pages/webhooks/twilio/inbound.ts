import type { APIRoute } from 'astro';
import { applyInboundSms, twiml } from '../../../core/notify/callbacks.ts';
import { twilioRequest } from '../../../lib/twilio-request.ts';

export const prerender = false;

/** Replies to our SMS: STOP and friends suppress the number, START lifts it, HELP is answered. */
export const POST: APIRoute = async (ctx) => {
  const verified = await twilioRequest(ctx);
  if (!verified.ok) return verified.response;
  const { candor } = ctx.locals;
  const { reply } = applyInboundSms(candor.db, candor.keys, verified.params, candor.content.site.organisation.name, candor.now());
  return new Response(twiml(reply), { headers: { 'Content-Type': 'text/xml; charset=utf-8' } });
};
