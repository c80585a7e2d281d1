import type { APIRoute } from 'astro';
import { applyInboundSms, applyOnce, TWILIO_REFUSAL, twilioCallbackId, twiml } from '../../../core/notify/callbacks.ts';
import { twilioRequest } from '../../../lib/twilio-request.ts';

export const prerender = false;

/** Replies to our SMS: STOP and friends suppress the number, START lifts it, HELP is answered. */
export const POST: APIRoute = async (ctx) => {
  const verified = await twilioRequest(ctx);
  if (!verified.ok) return verified.response;
  const { candor } = ctx.locals;
  const { params } = verified;
  const now = candor.now();
  let reply: string | null = null;
  const result = await applyOnce(candor.database, 'twilio-inbound', twilioCallbackId('inbound', params), now, async (tx) => {
    const answer = await applyInboundSms(tx, candor.keys, params, candor.content.site.organisation.name, now);
    reply = answer.reply;
    return answer.result;
  });
  if (result.status === 'refused')
    return new Response(TWILIO_REFUSAL, { status: 400, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  return new Response(twiml(reply), { headers: { 'Content-Type': 'text/xml; charset=utf-8' } });
};
