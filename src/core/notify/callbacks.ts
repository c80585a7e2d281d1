/**
 * What providers tell us after a send: delivered, bounced, complained,
 * failed (Resend); sent/delivered/undelivered (Twilio); and people texting
 * STOP, START or HELP. Each updates the delivery and, where the address must
 * not be written to again, suppresses the recipient. Signatures are checked
 * by the caller before anything here runs.
 */
import { Resend } from 'resend';
import twilio from 'twilio';
import type { Database, Tx } from '../../../db/engine/types.ts';
import { deliveryByProviderId, finishReported, sendUnrecordedTo } from '../../stores/delivery-outcomes.ts';
import { hitLimit } from '../auth/rate-limit.ts';
import { escapeXml, XML_DECLARATION } from '../text/escape.ts';
import { findRecipient, type Keys, suppressRecipient, unsuppressRecipient } from './recipients.ts';

/** `refused`: the callback itself is malformed (the caller answers 400) and nothing was applied. */
/**
 * `early`: the report names a message whose send is not recorded yet (the provider answered, the
 * dispatcher has not written it down): nothing is applied or remembered, and the provider is asked to
 * send the report again later (503), so the report is not lost.
 */
export type CallbackResult = { status: 'applied' | 'ignored' | 'refused' | 'early'; detail: string };

/** Rolls back the transaction of a report that came too early (its id must not be remembered as received). */
class TooEarly extends Error {
  readonly result: CallbackResult;
  constructor(result: CallbackResult) {
    super(result.detail);
    this.result = result;
  }
}

/** How long a provider's message id is remembered (Svix refuses timestamps over 5 minutes old; Twilio signs no time at all). */
export const REPLAY_WINDOW_MS = 24 * 3_600_000;

/**
 * Applies a verified callback once per provider message id within the window. A valid signature proves
 * who sent a request, not that it is new: a captured bounce replayed after staff lifted the suppression,
 * or an old STOP replayed after the person texted START, would otherwise silence them again. The id is
 * recorded in the transaction that applies the event, so a failure leaves the provider's retry welcome.
 * A callback without an id cannot be told from its replay, so it is refused, not applied: providers
 * always send one (Twilio's MessageSid, Svix's id).
 * The id is a rate-limit counter (src/stores/rate-limits.ts) counted in the transaction `apply` writes
 * in, so two nodes receiving the same callback at once apply it once (the counter's upsert orders them).
 */
export async function applyOnce(
  database: Database,
  source: string,
  messageId: string | null | undefined,
  now: Date,
  apply: (tx: Tx) => Promise<CallbackResult>,
): Promise<CallbackResult> {
  if (!messageId?.trim()) return { status: 'refused', detail: 'no message id' };
  const seen = { bucket: `callback:${source}`, max: 1, windowMs: REPLAY_WINDOW_MS };
  try {
    return await database.transaction(async (tx) => {
      if ((await hitLimit(tx, seen, messageId.slice(0, 200), now)).limited)
        return { status: 'ignored' as const, detail: 'already received' };
      const result = await apply(tx);
      if (result.status === 'early') throw new TooEarly(result);
      return result;
    });
  } catch (error) {
    if (error instanceof TooEarly) return error.result;
    throw error;
  }
}

/** Verifies a Resend (Svix) webhook on its raw body; null when it does not verify. */
export function verifyResendWebhook(secret: string, rawBody: string, headers: Headers): unknown | null {
  const id = headers.get('svix-id') ?? headers.get('webhook-id');
  const timestamp = headers.get('svix-timestamp') ?? headers.get('webhook-timestamp');
  const signature = headers.get('svix-signature') ?? headers.get('webhook-signature');
  if (!id || !timestamp || !signature) return null;
  try {
    // Verification needs no API key; the SDK insists on one being present.
    return new Resend('re_verify_only').webhooks.verify({ payload: rawBody, headers: { id, timestamp, signature }, webhookSecret: secret });
  } catch {
    return null;
  }
}

interface ResendEvent {
  type?: string;
  data?: { email_id?: string; to?: unknown; bounce?: { type?: string; message?: string }; failed?: { reason?: string } };
}

/** The recipients of a channel at these addresses (a report names whom its message went to). */
async function recipientsAt(tx: Tx, keys: Keys, channel: 'email' | 'sms', addresses: readonly string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const address of addresses.slice(0, 50)) {
    const recipient = await findRecipient(tx, keys, channel, address);
    if (recipient) ids.push(recipient.id);
  }
  return ids;
}

export async function applyResendEvent(tx: Tx, keys: Keys, payload: unknown, now: Date): Promise<CallbackResult> {
  const event = payload as ResendEvent;
  const emailId = event.data?.email_id;
  if (!event.type || !emailId) return { status: 'ignored', detail: 'no event type or email id' };
  const to = event.data?.to;
  const addresses = (Array.isArray(to) ? to : [to]).filter((a): a is string => typeof a === 'string');
  const recipientIds = await recipientsAt(tx, keys, 'email', addresses);
  const delivery = await deliveryByProviderId(tx, recipientIds, emailId);
  if (!delivery) {
    // Resend (Svix) sends the report again after a non-2xx answer: once the send is recorded it applies
    if (await sendUnrecordedTo(tx, recipientIds)) return { status: 'early', detail: `email ${emailId} is not recorded yet` };
    return { status: 'ignored', detail: `no delivery for email ${emailId}` };
  }
  switch (event.type) {
    case 'email.delivered':
      await finishReported(tx, delivery.id, 'delivered', null, now);
      return { status: 'applied', detail: 'delivered' };
    case 'email.bounced': {
      const reason = `bounced${event.data?.bounce?.type ? ` (${event.data.bounce.type})` : ''}`;
      await finishReported(tx, delivery.id, 'failed', reason, now);
      // A soft bounce (mailbox full, temporary) is not a reason to stop writing to the address.
      if (delivery.recipientId !== null && event.data?.bounce?.type !== 'Transient')
        await suppressRecipient(tx, delivery.recipientId, `email ${reason}`, now);
      return { status: 'applied', detail: reason };
    }
    case 'email.complained':
      if (delivery.recipientId !== null) await suppressRecipient(tx, delivery.recipientId, 'marked as spam (complaint)', now);
      return { status: 'applied', detail: 'complaint' };
    case 'email.failed':
      await finishReported(tx, delivery.id, 'failed', event.data?.failed?.reason ?? 'failed at the provider', now);
      return { status: 'applied', detail: 'failed' };
    default:
      return { status: 'ignored', detail: `event ${event.type} not used` };
  }
}

/** X-Twilio-Signature over the public URL Twilio called and the form parameters. */
export function verifyTwilioSignature(authToken: string, signature: string | null, url: string, params: Record<string, string>): boolean {
  return Boolean(signature) && twilio.validateRequest(authToken, signature ?? '', url, params);
}

/**
 * The id of a Twilio callback, or null when it has none. Twilio calls back once per status of a
 * message, so a status callback is the pair; an inbound message is its MessageSid.
 */
export function twilioCallbackId(kind: 'status' | 'inbound', params: Record<string, string>): string | null {
  const sid = params.MessageSid?.trim();
  if (!sid) return null;
  if (kind === 'inbound') return sid;
  const status = params.MessageStatus?.trim();
  return status ? `${sid}:${status}` : null;
}

/** The answer to a Twilio callback refused for its content (the signature verified). */
export const TWILIO_REFUSAL = 'A Twilio callback needs a MessageSid (and a status callback its MessageStatus).';

/** Twilio error codes after which a number must not be written to again. */
const SUPPRESSING_CODES = new Set(['21610', '30004', '30005', '30006']);

export async function applyTwilioStatus(tx: Tx, keys: Keys, params: Record<string, string>, now: Date): Promise<CallbackResult> {
  const sid = params.MessageSid;
  const status = params.MessageStatus;
  if (!sid || !status) return { status: 'ignored', detail: 'no MessageSid or MessageStatus' };
  const delivery = await deliveryByProviderId(tx, await recipientsAt(tx, keys, 'sms', params.To ? [params.To] : []), sid);
  if (!delivery) return { status: 'ignored', detail: `no delivery for ${sid}` };
  if (status === 'delivered') {
    await finishReported(tx, delivery.id, 'delivered', null, now);
    return { status: 'applied', detail: 'delivered' };
  }
  if (status === 'undelivered' || status === 'failed') {
    const code = params.ErrorCode ?? '';
    await finishReported(tx, delivery.id, 'failed', `${status}${code ? ` (Twilio error ${code})` : ''}`, now);
    if (delivery.recipientId !== null && SUPPRESSING_CODES.has(code))
      await suppressRecipient(tx, delivery.recipientId, `SMS ${status} (Twilio error ${code})`, now);
    return { status: 'applied', detail: status };
  }
  return { status: 'ignored', detail: `status ${status} needs no change` };
}

const STOP_WORDS = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT']);
const START_WORDS = new Set(['START', 'YES', 'UNSTOP']);

export interface InboundReply {
  result: CallbackResult;
  /** the SMS to answer with, or null for none */
  reply: string | null;
}

export async function applyInboundSms(
  tx: Tx,
  keys: Keys,
  params: Record<string, string>,
  organisation: string,
  now: Date,
): Promise<InboundReply> {
  const from = params.From?.trim();
  const word = (params.Body ?? '')
    .trim()
    .toUpperCase()
    .replace(/[^A-Z]/g, '');
  if (!from) return { result: { status: 'ignored', detail: 'no sender' }, reply: null };
  const recipient = await findRecipient(tx, keys, 'sms', from);
  if (STOP_WORDS.has(word)) {
    if (recipient) await suppressRecipient(tx, recipient.id, `replied ${word}`, now);
    // Twilio itself confirms STOP to the sender; a second message would be noise.
    return { result: { status: recipient ? 'applied' : 'ignored', detail: 'stop' }, reply: null };
  }
  if (START_WORDS.has(word)) {
    if (recipient) await unsuppressRecipient(tx, recipient.id);
    return { result: { status: recipient ? 'applied' : 'ignored', detail: 'start' }, reply: null };
  }
  if (word === 'HELP' || word === 'INFO') {
    return {
      result: { status: 'applied', detail: 'help' },
      reply: `${organisation} status alerts. Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply.`,
    };
  }
  return { result: { status: 'ignored', detail: 'not a keyword' }, reply: null };
}

export function twiml(message: string | null): string {
  return `${XML_DECLARATION}<Response>${message ? `<Message>${escapeXml(message)}</Message>` : ''}</Response>`;
}
