/**
 * Email through Resend's batch API: up to 100 messages per request, each
 * request under an Idempotency-Key derived from its deliveries, so a retry
 * after a crash or a timeout is recognised by Resend and not sent again.
 */
import { Resend } from 'resend';
import { parseRetryAfter } from '../backoff.ts';
import { answerMayHaveSent } from '../may-have-sent.ts';
import type { Channel, LimitSettings, SendJob, SendResult } from '../types.ts';
import { renderEmail } from './email-render.ts';

export interface ResendSettings {
  apiKey: string;
  from: string;
  baseUrl?: string | undefined;
  limits?: Partial<LimitSettings>;
}

/**
 * Resend's documented limit is 2 requests per second per team. Burst 1: a bucket of 2 refilled at
 * 2/s lets 3 requests into one second. 1.9/s: Resend counts arrivals, and a millisecond of network
 * jitter would otherwise put a third request into a second now and then, costing a 1 s Retry-After.
 */
export const RESEND_DEFAULT_LIMITS: LimitSettings = { ratePerSecond: 1.9, burst: 1, concurrency: 2 };

interface ResendError {
  name: string;
  message: string;
  statusCode: number | null;
}

/** retryable: the same request may succeed later; failed: it never will. */
export function classifyResendError(error: ResendError): 'retry' | 'failed' {
  const status = error.statusCode;
  if (status === null || status >= 500 || status === 429) return 'retry';
  if (error.name === 'concurrent_idempotent_requests') return 'retry';
  // A bad or revoked key is an operator's mistake: keep the messages until it is fixed (or attempts run out).
  if (status === 401 || status === 403) return 'retry';
  return 'failed';
}

export class ResendEmailChannel implements Channel {
  readonly name = 'email' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 100;
  readonly limits: LimitSettings;
  private readonly client: Resend;
  private readonly from: string;

  constructor(settings: ResendSettings) {
    this.client = new Resend(settings.apiKey, settings.baseUrl ? { baseUrl: settings.baseUrl.replace(/\/$/, '') } : undefined);
    this.from = settings.from;
    this.limits = { ...RESEND_DEFAULT_LIMITS, ...settings.limits };
  }

  async send(jobs: SendJob[]): Promise<SendResult[]> {
    const started = performance.now();
    const emails = jobs.map((job) => {
      if (!job.content.email) throw new Error(`delivery ${job.deliveryId} has no email content`);
      const rendered = renderEmail(job.content.email, job.links);
      return {
        from: this.from,
        to: [job.address],
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: rendered.headers,
      };
    });
    const key = jobs[0]?.batchKey;
    const response = await this.client.batch.send(emails, {
      batchValidation: 'permissive',
      ...(key ? { idempotencyKey: `candor-email-${key}` } : {}),
    });
    const durationMs = performance.now() - started;
    if (response.error && response.error.name === 'invalid_idempotent_request') {
      const code = response.error.name;
      // Resend keeps a key only for a request it accepted: this batch went out before (a crash or lost answer),
      // and a member removed since then changed the request. Sending again would be a second email.
      return jobs.map((job) => ({
        deliveryId: job.deliveryId,
        outcome: 'sent',
        httpStatus: 409,
        providerCode: code,
        error: 'sent earlier under the same idempotency key',
        durationMs,
      }));
    }
    if (response.error) {
      const outcome = classifyResendError(response.error);
      const retryAfterMs = parseRetryAfter(response.headers?.['retry-after'], Date.now());
      return jobs.map((job) => ({
        deliveryId: job.deliveryId,
        outcome,
        httpStatus: response.error.statusCode,
        providerCode: response.error.name,
        error: response.error.message,
        retryAfterMs,
        // no answer, or a 5xx: Resend may have accepted the batch (a resend carries the same idempotency key)
        mayHaveSent: outcome === 'retry' && (response.error.statusCode === null || answerMayHaveSent(response.error.statusCode)),
        durationMs,
      }));
    }
    // Permissive validation: refused messages are listed by index; the ids of the others follow in order.
    const refused = new Map((('errors' in response.data ? response.data.errors : undefined) ?? []).map((e) => [e.index, e.message]));
    const ids = response.data.data.map((d) => d.id);
    let next = 0;
    return jobs.map((job, index) => {
      const reason = refused.get(index);
      if (reason !== undefined)
        return {
          deliveryId: job.deliveryId,
          outcome: 'failed',
          httpStatus: 200,
          providerCode: 'validation_error',
          error: reason,
          durationMs,
        };
      return { deliveryId: job.deliveryId, outcome: 'sent', providerMessageId: ids[next++] ?? null, httpStatus: 200, durationMs };
    });
  }
}
