/**
 * SMS through Twilio's Messages API. The body stays within two segments and
 * ends with the link to the page (src/core/notify/sms.ts). Twilio has no
 * idempotency key: a retry after a lost answer can send twice, so only
 * answers that prove nothing was sent are retried blindly; a lost answer is
 * retried too (a duplicate is better than silence during an incident), and
 * counted in the attempts log.
 */
import twilio from 'twilio';
import { parseRetryAfter } from '../backoff.ts';
import { fitSms } from '../sms.ts';
import type { Channel, LimitSettings, SendJob, SendResult } from '../types.ts';
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
}

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
    const body = fitSms(sms.body, sms.link);
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
    return {
      deliveryId: job.deliveryId,
      outcome: classifyTwilioError(status, code),
      httpStatus: status,
      providerCode: code !== null ? String(code) : typeof error.code === 'string' ? error.code : null,
      error: error.message ?? 'Twilio request failed',
      retryAfterMs: last ? parseRetryAfter(last.headers['retry-after'], Date.now()) : null,
      durationMs,
    };
  }
}
