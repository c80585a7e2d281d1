/**
 * SMS through Twilio's Messages API. The body stays within two segments and
 * ends with the link to the page (src/core/notify/sms.ts), which carries the
 * delivery's marker (`?d=<delivery id in base 36>`, ignored by the site).
 *
 * Twilio has no idempotency key, so a send whose answer was lost (timeout,
 * connection dropped after the request went out, 5xx) is a retry with
 * `mayHaveSent`, and before sending again the dispatcher calls `reconcile`:
 * it reads Twilio's message list for that recipient (and sender) since the
 * send began and looks for the marker. Found: the delivery is sent, with the
 * message's SID. Not found: Twilio may list a new message late, so the answer
 * is `unknown` until `reconcileSettleMs` has passed since the send began, and
 * `absent` (send again) only after that.
 */
import twilio from 'twilio';
import { parseRetryAfter } from '../backoff.ts';
import { answerMayHaveSent, errorMayHaveSent } from '../may-have-sent.ts';
import { fitSms } from '../sms.ts';
import type { Channel, LimitSettings, Reconciliation, SendJob, SendResult } from '../types.ts';
import { captureTwilioResponses, TwilioBaseUrlHttpClient } from './twilio-http-client.ts';

export interface TwilioSettings {
  accountSid: string;
  authToken: string;
  from?: string | undefined;
  messagingServiceSid?: string | undefined;
  /** TWILIO_API_BASE_URL; default Twilio itself */
  apiBaseUrl?: string | undefined;
  /** where Twilio posts delivery status: `${CANDOR_PUBLIC_URL}/webhooks/twilio/status` */
  statusCallbackUrl: string;
  limits?: Partial<LimitSettings>;
  /** how long after a send began a missing message proves it absent; default TWILIO_LIST_SETTLE_MS (tests shorten it) */
  reconcileSettleMs?: number | undefined;
}

/**
 * How long Twilio's message list may lag behind a create: until then, a message not listed may still
 * exist. Twilio promises no bound; users report lags of minutes (twilio/twilio-java#442,
 * twilio/twilio-node#647). Two minutes, paid only by deliveries whose outcome was lost.
 */
export const TWILIO_LIST_SETTLE_MS = 120_000;
/** Twilio's clock and ours may differ: the list is read from this long before the send began. */
export const TWILIO_CLOCK_SKEW_MS = 5 * 60_000;
/** A failed lookup is asked again after this (or Twilio's Retry-After). */
export const TWILIO_LOOKUP_RETRY_MS = 15_000;
/** One page of Twilio's message list, as the SDK's pages give it. */
interface ListPage {
  instances: { sid: string; body: string; dateSent: Date }[];
  nextPageUrl?: string | undefined;
  nextPage(): Promise<ListPage> | undefined;
}
/** One recipient's messages from one sender in a day fit easily: 5 pages of 100, newest first. */
const LIST_PAGE_SIZE = 100;
const LIST_MAX_PAGES = 5;

/** Twilio's limit for a long-code sender: one message per second. */
export const TWILIO_DEFAULT_LIMITS: LimitSettings = { ratePerSecond: 1, burst: 1, concurrency: 1 };

/** Error codes that mean the address must not be written to again (STOP). */
const SUPPRESS = new Set([21610]);
/** Codes that will not change by retrying: invalid, unreachable or unsupported numbers, bad bodies. */
const PERMANENT = new Set([21211, 21214, 21217, 21219, 21408, 21602, 21603, 21604, 21606, 21612, 21614, 21617, 21635, 30006]);

export function classifyTwilioError(status: number | null, code: number | null): 'retry' | 'failed' | 'suppressed' {
  if (code !== null && SUPPRESS.has(code)) return 'suppressed';
  if (code !== null && PERMANENT.has(code)) return 'failed';
  if (status === null || status === 429 || status >= 500 || status === 401) return 'retry';
  return status >= 400 ? 'failed' : 'retry';
}

/**
 * Whether a failed create may have made a message (src/core/notify/may-have-sent.ts). Twilio's 4xx
 * answers (429, 401, error codes) mean it made none.
 */
export function twilioMayHaveSent(status: number | null, networkCode: string | null): boolean {
  if (status !== null) return answerMayHaveSent(status);
  return networkCode === null || errorMayHaveSent(networkCode);
}

/** The delivery's marker: its id in base 36, short enough for the SMS budget. */
export function deliveryMarker(deliveryId: number): string {
  return deliveryId.toString(36);
}

/** The page link with the delivery marker as query parameter `d` (before any `#fragment`). */
export function markedLink(link: string, deliveryId: number): string {
  const hash = link.indexOf('#');
  const base = hash < 0 ? link : link.slice(0, hash);
  const fragment = hash < 0 ? '' : link.slice(hash);
  return `${base}${base.includes('?') ? '&' : '?'}d=${deliveryMarker(deliveryId)}${fragment}`;
}

/** The SMS body Candor sends for this delivery: text fitted to two segments, ending with the marked link. */
export function smsBodyFor(job: Pick<SendJob, 'deliveryId' | 'content'>): string | null {
  const sms = job.content.sms;
  return sms ? fitSms(sms.body, markedLink(sms.link, job.deliveryId)) : null;
}

/**
 * Whether a listed message is this delivery's: its body ends with the marked link. The body text alone
 * is not enough (two notices can read the same), and the marker alone could appear in a quoted URL.
 */
export function isMessageOf(body: string, job: Pick<SendJob, 'deliveryId' | 'content'>): boolean {
  const sms = job.content.sms;
  return sms !== undefined && body.trimEnd().endsWith(markedLink(sms.link, job.deliveryId));
}

export class TwilioSmsChannel implements Channel {
  readonly name = 'sms' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits: LimitSettings;
  private readonly client: twilio.Twilio;
  private readonly settings: TwilioSettings;

  constructor(settings: TwilioSettings) {
    this.settings = settings;
    this.limits = { ...TWILIO_DEFAULT_LIMITS, ...settings.limits };
    const httpClient = new TwilioBaseUrlHttpClient({ baseUrl: settings.apiBaseUrl ?? 'https://api.twilio.com', timeout: 15_000 });
    this.client = twilio(settings.accountSid, settings.authToken, { httpClient });
  }

  /** One bucket per sender, as Twilio rate-limits per number. */
  limitKey(): string {
    return this.settings.from ?? this.settings.messagingServiceSid ?? 'default';
  }

  async send(jobs: SendJob[]): Promise<SendResult[]> {
    return Promise.all(jobs.map((job) => this.sendOne(job)));
  }

  private async sendOne(job: SendJob): Promise<SendResult> {
    const started = performance.now();
    const sms = job.content.sms;
    if (!sms) return { deliveryId: job.deliveryId, outcome: 'failed', error: 'no SMS content', durationMs: 0 };
    const body = fitSms(sms.body, markedLink(sms.link, job.deliveryId));
    const sender = this.settings.messagingServiceSid
      ? { messagingServiceSid: this.settings.messagingServiceSid }
      : { from: this.settings.from ?? '' };
    const result = await captureTwilioResponses(() =>
      this.client.messages.create({ to: job.address, body, statusCallback: this.settings.statusCallbackUrl, ...sender }),
    );
    const durationMs = performance.now() - started;
    if (result.ok) return { deliveryId: job.deliveryId, outcome: 'sent', providerMessageId: result.value.sid, httpStatus: 201, durationMs };
    const error = result.error as { status?: number; code?: number | string; message?: string };
    const status = typeof error.status === 'number' ? error.status : null;
    const code = typeof error.code === 'number' ? error.code : null;
    const last = result.responses.at(-1);
    const outcome = classifyTwilioError(status, code);
    const networkCode = status === null && typeof error.code === 'string' ? error.code : null;
    return {
      deliveryId: job.deliveryId,
      outcome,
      httpStatus: status,
      providerCode: code !== null ? String(code) : typeof error.code === 'string' ? error.code : null,
      error: error.message ?? 'Twilio request failed',
      retryAfterMs: last ? parseRetryAfter(last.headers['retry-after'], Date.now()) : null,
      ...(outcome === 'retry' ? { mayHaveSent: twilioMayHaveSent(status, networkCode) } : {}),
      durationMs,
    };
  }

  /**
   * Looks for this delivery's message in Twilio's list: to the recipient (and from the sender, when
   * not a Messaging Service, whose sender Twilio picks), sent since `unknownSince` less the clock skew.
   * `DateSent>` is read by Twilio as a date, so the list holds that whole day; the marker decides.
   */
  async reconcile(job: SendJob): Promise<Reconciliation> {
    const started = performance.now();
    const since = job.unknownSince;
    if (!since || !job.content.sms) return { outcome: 'absent', durationMs: 0, unverified: 'nothing to look for' };
    const askedAt = Date.now();
    const cutoff = new Date(since.getTime() - TWILIO_CLOCK_SKEW_MS);
    const lookup = await captureTwilioResponses(() => this.findMessage(job, cutoff));
    const durationMs = performance.now() - started;
    if (!lookup.ok) {
      const error = lookup.error as { status?: number; message?: string };
      const last = lookup.responses.at(-1);
      const retryAfter = last ? parseRetryAfter(last.headers['retry-after'], Date.now()) : null;
      return {
        outcome: 'unknown',
        error: `Twilio message lookup failed${typeof error.status === 'number' ? ` (${error.status})` : ''}: ${error.message ?? 'no answer'}`,
        retryAfterMs: Math.max(retryAfter ?? 0, TWILIO_LOOKUP_RETRY_MS),
        durationMs,
      };
    }
    const found = lookup.value;
    if (found.sid) return { outcome: 'found', providerMessageId: found.sid, durationMs };
    if (found.incomplete) {
      return {
        outcome: 'unknown',
        error: `more than ${LIST_PAGE_SIZE * LIST_MAX_PAGES} messages to the recipient since the send began; not all were read`,
        retryAfterMs: TWILIO_LOOKUP_RETRY_MS,
        durationMs,
      };
    }
    const settleMs = this.settings.reconcileSettleMs ?? TWILIO_LIST_SETTLE_MS;
    const waited = askedAt - since.getTime();
    if (waited < settleMs) {
      return {
        outcome: 'unknown',
        error: 'not listed yet; Twilio may list a new message late',
        retryAfterMs: Math.max(1, settleMs - waited),
        durationMs,
      };
    }
    return { outcome: 'absent', durationMs };
  }

  /** Pages through the list, newest first, until the message, a message sent before `cutoff`, or the page bound. */
  private async findMessage(job: SendJob, cutoff: Date): Promise<{ sid: string | null; incomplete: boolean }> {
    const sender = this.settings.messagingServiceSid ? {} : { from: this.settings.from ?? '' };
    let page: ListPage = await this.client.messages.page({ to: job.address, ...sender, dateSentAfter: cutoff, pageSize: LIST_PAGE_SIZE });
    for (let read = 1; ; read += 1) {
      for (const message of page.instances) {
        if (typeof message.body === 'string' && isMessageOf(message.body, job)) return { sid: message.sid, incomplete: false };
      }
      const oldest = page.instances.at(-1)?.dateSent;
      // the list is newest date_sent first: past the cutoff, nothing older can be this delivery's
      if (oldest instanceof Date && oldest.getTime() < cutoff.getTime()) return { sid: null, incomplete: false };
      if (!page.nextPageUrl) return { sid: null, incomplete: false };
      if (read >= LIST_MAX_PAGES) return { sid: null, incomplete: true };
      const next = await page.nextPage();
      if (!next) return { sid: null, incomplete: false };
      page = next;
    }
  }
}
