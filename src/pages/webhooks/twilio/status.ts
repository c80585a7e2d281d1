import type { APIRoute } from 'astro';
import { applyTwilioStatus } from '../../../core/notify/callbacks.ts';
import { twilioRequest } from '../../../lib/twilio-request.ts';

export const prerender = false;

/** Twilio's message status callbacks, after X-Twilio-Signature verifies. */
export const POST: APIRoute = async (ctx) => {
  const verified = await twilioRequest(ctx);
  if (!verified.ok) return verified.response;
  const { candor } = ctx.locals;
  return Response.json(applyTwilioStatus(candor.db, verified.params, candor.now()));
};
