import type { APIRoute } from 'astro';
import { applyOnce, applyTwilioStatus, TWILIO_REFUSAL, twilioCallbackId } from '../../../core/notify/callbacks.ts';
import { twilioRequest } from '../../../lib/twilio-request.ts';

export const prerender = false;

/** Twilio's message status callbacks, after X-Twilio-Signature verifies. */
export const POST: APIRoute = async (ctx) => {
  const verified = await twilioRequest(ctx);
  if (!verified.ok) return verified.response;
  const { candor } = ctx.locals;
  const { params } = verified;
  const now = candor.now();
  const result = await applyOnce(candor.database, 'twilio-status', twilioCallbackId('status', params), now, (tx) =>
    applyTwilioStatus(tx, candor.keys, params, now),
  );
  if (result.status === 'refused') return Response.json({ ...result, detail: TWILIO_REFUSAL }, { status: 400 });
  return Response.json(result);
};
