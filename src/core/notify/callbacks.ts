/**
 * What providers tell us after a send: delivered, bounced, complained,
 * failed (Resend); sent/delivered/undelivered (Twilio); and people texting
 * STOP, START or HELP. Each updates the delivery and, where the address must
 * not be written to again, suppresses the recipient. Signatures are checked
 * by the caller before anything here runs.
 */
import { Resend } from 'resend';
import twilio from 'twilio';
import type { Db } from '../../../db/client.ts';
import { databaseOf } from '../../../db/engine/sqlite.ts';
import { hitLimit } from '../auth/rate-limit.ts';
import { escapeXml, XML_DECLARATION } from '../text/escape.ts';
import { findRecipient, type Keys, suppressRecipient, unsuppressRecipient } from './recipients.ts';

/** `refused`: the callback itself is malformed (the caller answers 400) and nothing was applied. */
export type CallbackResult = { status: 'applied' | 'ignored' | 'refused'; detail: string };

/** How long a provider's message id is remembered (Svix refuses timestamps over 5 minutes old; Twilio signs no time at all). */
export const REPLAY_WINDOW_MS = 24 * 3_600_000;

/**
 * Applies a verified callback once per provider message id within the window. A valid signature proves
 * who sent a request, not that it is new: a captured bounce replayed after staff lifted the suppression,
 * or an old STOP replayed after the person texted START, would otherwise silence them again. The id is
 * recorded in the transaction that applies the event, so a failure leaves the provider's retry welcome.
 * A callback without an id cannot be told from its replay, so it is refused, not applied: providers
 * always send one (Twilio's MessageSid, Svix's id).
 * The id is a rate-limit counter (the store's), counted in a transaction of `databaseOf(db)`; `apply`,
 * still synchronous code on `db`, runs inside that transaction's callback without an await, so it
 * is part of the transaction (db/engine/sqlite.ts: the transition rule) and a failure undoes both.
 */
export async function applyOnce(
  db: Db,
  source: string,
  messageId: string | null | undefined,
  now: Date,
  apply: () => CallbackResult,
): Promise<CallbackResult> {
  if (!messageId?.trim()) return { status: 'refused', detail: 'no message id' };
  const seen = { bucket: `callback:${source}`, max: 1, windowMs: REPLAY_WINDOW_MS };
  return databaseOf(db).transaction(async (tx) =>
    (await hitLimit(tx, seen, messageId.slice(0, 200), now)).limited ? { status: 'ignored' as const, detail: 'already received' } : apply(),
  );
}

const deliveryByProviderId = (db: Db, providerId: string) =>
  db.$client.prepare('SELECT id, recipient_id, status FROM deliveries WHERE provider_message_id = ?').get(providerId) as
    | { id: number; recipient_id: number | null; status: string }
    | undefined;

function finish(db: Db, deliveryId: number, status: 'delivered' | 'failed', error: string | null, now: Date): void {
  db.$client
    .prepare(
      `UPDATE deliveries SET status = ?, finished_at = ?, last_error = COALESCE(?, last_error)
       WHERE id = ? AND status IN ('sent', 'delivered', 'sending')`,
    )
    .run(status, now.getTime(), error, deliveryId);
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
  data?: { email_id?: string; bounce?: { type?: string; message?: string }; failed?: { reason?: string } };
}

export function applyResendEvent(db: Db, payload: unknown, now: Date): CallbackResult {
  const event = payload as ResendEvent;
  const emailId = event.data?.email_id;
  if (!event.type || !emailId) return { status: 'ignored', detail: 'no event type or email id' };
  const delivery = deliveryByProviderId(db, emailId);
  if (!delivery) return { status: 'ignored', detail: `no delivery for email ${emailId}` };
  switch (event.type) {
    case 'email.delivered':
      finish(db, delivery.id, 'delivered', null, now);
      return { status: 'applied', detail: 'delivered' };
    case 'email.bounced': {
      const reason = `bounced${event.data?.bounce?.type ? ` (${event.data.bounce.type})` : ''}`;
      finish(db, delivery.id, 'failed', reason, now);
      // A soft bounce (mailbox full, temporary) is not a reason to stop writing to the address.
      if (delivery.recipient_id !== null && event.data?.bounce?.type !== 'Transient')
        suppressRecipient(db, delivery.recipient_id, `email ${reason}`, now);
      return { status: 'applied', detail: reason };
    }
    case 'email.complained':
      if (delivery.recipient_id !== null) suppressRecipient(db, delivery.recipient_id, 'marked as spam (complaint)', now);
      return { status: 'applied', detail: 'complaint' };
    case 'email.failed':
      finish(db, delivery.id, 'failed', event.data?.failed?.reason ?? 'failed at the provider', now);
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

export function applyTwilioStatus(db: Db, params: Record<string, string>, now: Date): CallbackResult {
  const sid = params.MessageSid;
  const status = params.MessageStatus;
  if (!sid || !status) return { status: 'ignored', detail: 'no MessageSid or MessageStatus' };
  const delivery = deliveryByProviderId(db, sid);
  if (!delivery) return { status: 'ignored', detail: `no delivery for ${sid}` };
  if (status === 'delivered') {
    finish(db, delivery.id, 'delivered', null, now);
    return { status: 'applied', detail: 'delivered' };
  }
  if (status === 'undelivered' || status === 'failed') {
    const code = params.ErrorCode ?? '';
    finish(db, delivery.id, 'failed', `${status}${code ? ` (Twilio error ${code})` : ''}`, now);
    if (delivery.recipient_id !== null && SUPPRESSING_CODES.has(code))
      suppressRecipient(db, delivery.recipient_id, `SMS ${status} (Twilio error ${code})`, now);
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

export function applyInboundSms(db: Db, keys: Keys, params: Record<string, string>, organisation: string, now: Date): InboundReply {
  const from = params.From?.trim();
  const word = (params.Body ?? '')
    .trim()
    .toUpperCase()
    .replace(/[^A-Z]/g, '');
  if (!from) return { result: { status: 'ignored', detail: 'no sender' }, reply: null };
  const recipient = findRecipient(db, keys, 'sms', from);
  if (STOP_WORDS.has(word)) {
    if (recipient) suppressRecipient(db, recipient.id, `replied ${word}`, now);
    // Twilio itself confirms STOP to the sender; a second message would be noise.
    return { result: { status: recipient ? 'applied' : 'ignored', detail: 'stop' }, reply: null };
  }
  if (START_WORDS.has(word)) {
    if (recipient) unsuppressRecipient(db, recipient.id);
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
