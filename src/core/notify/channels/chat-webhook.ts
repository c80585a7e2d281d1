/**
 * What Teams and Discord webhooks share with Slack's incoming webhooks: one POST of JSON to a URL that
 * is itself the credential, and what its answer means. 2xx sent; 429 and 5xx retried, obeying
 * Retry-After; 401, 403, 404 and 410 mean the webhook was deleted or its token revoked, so the address
 * is suppressed; any other 4xx is a message the provider refuses, failed without retry. The answer's
 * body is kept short in the attempt (it may echo the message, never the URL).
 */
import { parseRetryAfter } from '../backoff.ts';
import type { SendResult } from '../types.ts';

export type Answer = Omit<SendResult, 'deliveryId' | 'durationMs'>;

const GONE = new Set([401, 403, 404, 410]);

export async function postChatWebhook(
  url: string,
  payload: unknown,
  provider: string,
  readId?: (body: string) => string | null,
  retryAfterFromBody?: (body: string) => number | null,
): Promise<Answer> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      redirect: 'error',
      signal: AbortSignal.timeout(15_000),
    });
    const body = await res.text();
    const short = body.slice(0, 200);
    if (res.ok) return { outcome: 'sent', httpStatus: res.status, providerMessageId: readId?.(body) ?? null };
    if (res.status === 429 || res.status >= 500) {
      return {
        outcome: 'retry',
        httpStatus: res.status,
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), Date.now()) ?? retryAfterFromBody?.(body) ?? null,
        error: `${provider} answered ${res.status} ${short}`,
      };
    }
    return {
      outcome: GONE.has(res.status) ? 'suppressed' : 'failed',
      httpStatus: res.status,
      providerCode: short.slice(0, 100) || null,
      error: `${provider} webhook answered ${res.status} ${short}`,
    };
  } catch (err) {
    return { outcome: 'retry', error: `${provider} request failed: ${(err as Error).message}` };
  }
}

/** The token-bucket key of a webhook: its host and path hashed by the limiter, never stored as is. */
export const webhookLimitKey = (address: string) => {
  try {
    const u = new URL(address);
    return `${u.host}${u.pathname}`;
  } catch {
    return address;
  }
};
