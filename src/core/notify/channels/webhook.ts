/**
 * Signed webhooks (Standard Webhooks): a JSON body, `webhook-id`,
 * `webhook-timestamp` and `webhook-signature` headers made with the
 * endpoint's own secret. The id is the delivery's, the same on every retry,
 * so a receiver can drop a repeat. 10 s timeout; no redirects followed.
 * A retry says whether the endpoint may have acted on the request
 * (`mayHaveSent`): after a timeout, a connection lost once the request was
 * written, or a 5xx, it may; when the connection was never made (refused,
 * name not found, private address) or the answer was 408/429, it did not.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Webhook } from 'standardwebhooks';
import { parseRetryAfter } from '../backoff.ts';
import { answerMayHaveSent, errorMayHaveSent } from '../may-have-sent.ts';
import { checkUrlShape, guardedLookup, type UrlPolicy } from '../safe-url.ts';
import type { Channel, LimitSettings, SendJob, SendResult, WebhookContent } from '../types.ts';

export const WEBHOOK_TIMEOUT_MS = 10_000;

interface PostResult {
  status: number | null;
  retryAfter: string | null;
  error: string | null;
  code: string | null;
  /** the whole request was handed to the connection before the error: the endpoint may have acted on it */
  written: boolean;
}

export class WebhookChannel implements Channel {
  readonly name = 'webhook' as const;
  readonly mode = 'live' as const;
  readonly batchSize = 1;
  readonly limits: LimitSettings;
  private readonly policy: UrlPolicy;
  private readonly userAgent: string;

  constructor(policy: UrlPolicy, limits: Partial<LimitSettings> = {}, userAgent = 'Candor-Webhooks/1') {
    this.policy = policy;
    this.limits = { ratePerSecond: 50, burst: 50, concurrency: 8, ...limits };
    this.userAgent = userAgent;
  }

  limitKey(job: SendJob): string {
    try {
      return new URL(job.address).host;
    } catch {
      return 'invalid';
    }
  }

  async send(jobs: SendJob[]): Promise<SendResult[]> {
    return Promise.all(jobs.map((job) => this.sendOne(job)));
  }

  private async sendOne(job: SendJob): Promise<SendResult> {
    const started = performance.now();
    const done = (r: Omit<SendResult, 'deliveryId' | 'durationMs'>): SendResult => ({
      deliveryId: job.deliveryId,
      durationMs: performance.now() - started,
      ...r,
    });
    const content = job.content.webhook;
    if (!content) return done({ outcome: 'failed', error: 'no webhook content' });
    if (!job.secret) return done({ outcome: 'failed', error: 'endpoint has no signing secret' });
    const shape = checkUrlShape(job.address, this.policy);
    if (!shape.ok) return done({ outcome: 'suppressed', providerCode: 'unsafe_url', error: `endpoint URL ${shape.reason}` });
    const id = `msg_candor_${job.deliveryId}`;
    const result = await signedPost(this.policy, shape.url, job.secret, id, content, this.userAgent);
    if (result.error) {
      const permanent = result.code === 'ECANDORPRIVATE';
      const mayHaveSent = result.written && errorMayHaveSent(result.code);
      return done({ outcome: permanent ? 'suppressed' : 'retry', providerCode: result.code, error: result.error, mayHaveSent });
    }
    const status = result.status ?? 0;
    if (status >= 200 && status < 300) return done({ outcome: 'sent', httpStatus: status, providerMessageId: id });
    const retryAfterMs = parseRetryAfter(result.retryAfter, Date.now());
    if (status === 408 || status === 429 || status >= 500)
      return done({
        outcome: 'retry',
        httpStatus: status,
        retryAfterMs,
        error: `endpoint answered ${status}`,
        mayHaveSent: answerMayHaveSent(status),
      });
    // 410 Gone: the receiver says this endpoint will never take a message again.
    if (status === 410) return done({ outcome: 'suppressed', httpStatus: status, error: 'endpoint answered 410 Gone' });
    return done({ outcome: 'failed', httpStatus: status, error: `endpoint answered ${status}` });
  }
}

/** Signs and POSTs one event; never throws. */
export function signedPost(
  policy: UrlPolicy,
  url: URL,
  secret: string,
  id: string,
  content: WebhookContent,
  userAgent = 'Candor-Webhooks/1',
): Promise<PostResult> {
  const timestamp = new Date();
  const body = JSON.stringify({ type: content.type, timestamp: timestamp.toISOString(), data: content.data });
  const headers = {
    'content-type': 'application/json',
    'user-agent': userAgent,
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, timestamp, body),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let written = false;
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        lookup: guardedLookup(policy),
        timeout: WEBHOOK_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? null,
            retryAfter: (res.headers['retry-after'] as string | undefined) ?? null,
            error: null,
            code: null,
            written: true,
          }),
        );
        res.on('error', (err: NodeJS.ErrnoException) =>
          resolve({ status: null, retryAfter: null, error: err.message, code: err.code ?? null, written: true }),
        );
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${WEBHOOK_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })),
    );
    // 'finish': the whole request went to the connection (after it was made, TLS included)
    req.on('finish', () => {
      written = true;
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ status: null, retryAfter: null, error: err.message, code: err.code ?? null, written }),
    );
    req.end(body);
  });
}

/** Why a sign-up's event did not get through, as the person who gave the URL is told it. */
export const UNREACHABLE = 'it is not allowed or could not be reached (webhooks go only to https endpoints on public addresses)';

/**
 * A synchronous, one-off delivery (the event at sign-up): did the endpoint answer 2xx? The message is
 * for whoever typed the URL, who may be probing the network: it never says how the name resolved
 * (a socket error names the address; "resolves to a private address" maps internal names), only that
 * the endpoint is not allowed or could not be reached, or the status it answered. `detail` is for the
 * server's log.
 */
export async function deliverWebhookNow(
  policy: UrlPolicy,
  rawUrl: string,
  secret: string,
  id: string,
  content: WebhookContent,
): Promise<{ ok: true } | { ok: false; message: string; detail: string }> {
  const shape = checkUrlShape(rawUrl, policy);
  if (!shape.ok) return { ok: false, message: `the URL ${shape.reason}`, detail: shape.reason };
  const result = await signedPost(policy, shape.url, secret, id, content);
  if (result.error) return { ok: false, message: UNREACHABLE, detail: `${result.code ?? 'error'}: ${result.error}` };
  const status = result.status ?? 0;
  return status >= 200 && status < 300
    ? { ok: true }
    : { ok: false, message: `it answered HTTP ${status}`, detail: `answered HTTP ${status}` };
}
