/**
 * The contract between the outbox, the dispatcher and the channels. A
 * notification is rendered once per channel when it is created; a channel
 * adds what differs per recipient (unsubscribe link, thread) when it sends.
 */
import type { KnownBlock } from '@slack/web-api';
import { type ChannelName, channels, type DeliveryStatus, deliveryStatuses } from '../../../db/schema/notify.ts';

/** The channels and delivery states, for pages and actions (which never import the schema). */
export { type ChannelName, channels, type DeliveryStatus, deliveryStatuses };

export interface EmailContent {
  subject: string;
  html: string;
  text: string;
}
export interface SmsContent {
  body: string;
  /** the page with the whole story; every SMS ends with it */
  link: string;
}
export interface SlackContent {
  /** the fallback text notifications and screen readers use */
  text: string;
  blocks: KnownBlock[];
  /** what the thread's first message is edited to show (the current state), when a thread exists */
  root?: { text: string; blocks: KnownBlock[] };
}
export interface WebhookContent {
  type: string;
  data: Record<string, unknown>;
}

export interface NotificationContent {
  email?: EmailContent;
  sms?: SmsContent;
  slack?: SlackContent;
  webhook?: WebhookContent;
}

/** One delivery handed to a channel: who, what, and how to make a retry the same request. */
export interface SendJob {
  deliveryId: number;
  notificationId: number;
  recipientId: number;
  address: string;
  /** webhook signing secret or Slack token, opened */
  secret: string | null;
  content: NotificationContent;
  threadKey: string | null;
  /** when set (batched channels), the provider request carrying this delivery: same key, same request */
  batchKey: string | null;
  attempt: number;
  /**
   * set when an earlier send of this delivery may have reached the provider without its outcome being
   * recorded (a sender crashed mid-request, or the answer was lost): when that send began. The
   * dispatcher asks the channel's `reconcile` before sending again.
   */
  unknownSince: Date | null;
  /** signed per-recipient links, built by the engine */
  links: { unsubscribe: string | null; manage: string | null };
}

/**
 * `deferred`: not sent and not tried, because the channel waits for something another dispatcher is
 * doing (a Slack thread root being posted); the delivery returns to the queue after `deferMs`, and
 * it counts as no attempt.
 */
export type Outcome = 'sent' | 'retry' | 'failed' | 'suppressed' | 'deferred';

export interface SendResult {
  deliveryId: number;
  outcome: Outcome;
  providerMessageId?: string | null;
  httpStatus?: number | null;
  providerCode?: string | null;
  error?: string | null;
  /** from Retry-After: no new request to this provider before then */
  retryAfterMs?: number | null;
  /** `deferred`: when to try again */
  deferMs?: number;
  /**
   * `retry` only: the provider may have acted on the request (timeout, connection lost after sending,
   * 5xx): the next attempt reconciles before it sends. False or absent when the answer proves nothing was sent.
   */
  mayHaveSent?: boolean;
  durationMs: number;
}

export interface LimitSettings {
  /** requests per second, across all deliveries of the channel (or per `key`) */
  ratePerSecond: number;
  burst: number;
  /** requests in flight at once */
  concurrency: number;
}

export interface Channel {
  readonly name: ChannelName;
  /** `live` sends through a provider; `log` records in the database */
  readonly mode: 'live' | 'log';
  /** how many deliveries one provider request carries (email batches: 100) */
  readonly batchSize: number;
  readonly limits: LimitSettings;
  /** the token-bucket key of a job: Slack limits per channel, Twilio per sender; default one bucket */
  limitKey?(job: SendJob): string;
  /** sends; never throws: every job gets a result */
  send(jobs: SendJob[]): Promise<SendResult[]>;
  /**
   * Asks the provider whether a send of this job that began at or after `job.unknownSince` reached it
   * (SMS: Twilio's message list for that recipient and sender; Slack: the channel's history, by the
   * message metadata carrying the delivery id). Channels without it are sent again (email: same
   * idempotency key; webhooks: same `webhook-id`). Never throws.
   */
  reconcile?(job: SendJob): Promise<Reconciliation>;
}

/**
 * What a provider said about a send whose outcome was unknown.
 * - `found`: it has the message; the delivery is recorded sent with the provider's id, not sent again.
 * - `absent`: it certainly has no such message (asked again after the provider's listing delay); send.
 * - `unknown`: it could not say (lookup failed, or still inside the listing delay); ask again later,
 *   after `retryAfterMs`, without sending.
 */
export type Reconciliation =
  | { outcome: 'found'; providerMessageId: string | null; durationMs: number }
  | {
      outcome: 'absent';
      durationMs: number;
      /** set when the provider could not be asked (or not long enough) and the send goes again unverified: why; it may duplicate */
      unverified?: string;
    }
  | { outcome: 'unknown'; error: string; retryAfterMs: number; durationMs: number };
