import type { APIRoute } from 'astro';
import { applyOnce, applyTwilioStatus } from '../../../core/notify/callbacks.ts';
import { twilioRequest } from '../../../lib/twilio-request.ts';

export const prerender = false;

/** Twilio's message status callbacks, after X-Twilio-Signature verifies. */
export const POST: APIRoute = async (ctx) => {
  const verified = await twilioRequest(ctx);
  if (!verified.ok) return verified.response;
  const { candor } = ctx.locals;
  const { params } = verified;
  const now = candor.now();
  // Twilio calls back once per status of a message: the id of a callback is the pair.
  const callbackId = params.MessageSid && params.MessageStatus ? `${params.MessageSid}:${params.MessageStatus}` : null;
  return Response.json(applyOnce(candor.db, 'twilio-status', callbackId, now, () => applyTwilioStatus(candor.db, params, now)));
};
